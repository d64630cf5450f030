"""Helpers for launch tests: write small launch files into tmp_path."""

import textwrap

import pytest


@pytest.fixture
def write(tmp_path):
    """write(name, yaml_text) -> Path of a launch file in tmp_path (text is dedented)."""

    def _write(name: str, text: str):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write
