"""Small checks the config dataclasses share."""

from __future__ import annotations


def is_whole_number(value) -> bool:
    """An int and not a bool (YAML's true/false would pass isinstance(value, int))."""
    return isinstance(value, int) and not isinstance(value, bool)
