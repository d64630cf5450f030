"""Load a YAML launch file keeping the line of every mapping key and list item.

PyYAML's composer knows where each node starts; the constructors below copy those marks onto
dict/list subclasses so that later errors can name FILE:LINE. Duplicate keys are rejected (PyYAML
would silently keep the last one, hiding a typo).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from meldbot.launch.errors import LaunchError, Location


class MarkedDict(dict):
    """A mapping that remembers its own line and the line of each key."""

    file: str = "?"
    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines: dict = {}

    def where(self, key=None) -> Location:
        return Location(self.file, self.key_lines.get(key, self.line) if key is not None else self.line)


class MarkedList(list):
    """A sequence that remembers its own line and the line of each item."""

    file: str = "?"
    line: int = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.item_lines: list[int] = []

    def where(self, index: int | None = None) -> Location:
        if index is not None and index < len(self.item_lines):
            return Location(self.file, self.item_lines[index])
        return Location(self.file, self.line)


def _loader_for(file: str):
    class Loader(yaml.SafeLoader):
        pass

    def construct_map(loader, node):
        data = MarkedDict()
        data.file, data.line = file, node.start_mark.line + 1
        yield data
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in data:
                raise LaunchError(f"duplicate key '{key}'", Location(file, key_node.start_mark.line + 1))
            data[key] = loader.construct_object(value_node, deep=True)
            data.key_lines[key] = key_node.start_mark.line + 1

    def construct_seq(loader, node):
        data = MarkedList()
        data.file, data.line = file, node.start_mark.line + 1
        yield data
        for item in node.value:
            data.append(loader.construct_object(item, deep=True))
            data.item_lines.append(item.start_mark.line + 1)

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_seq)
    return Loader


def load(path: str | Path, display: str | None = None):
    """Parse `path`; errors name `display` (default: the path as given)."""
    display = display or str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LaunchError(f"launch file '{path}' does not exist") from None
    except OSError as exc:
        raise LaunchError(f"cannot read launch file '{path}': {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_loader_for(display))  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise LaunchError(f"invalid YAML: {exc.problem or exc.context}", Location(display, line)) from None
