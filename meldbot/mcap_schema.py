"""ROS 2 message definitions for MCAP schemas (``ros2msg`` encoding), read from the installed .msg files.

MCAP readers (Foxglove, mcap-ros2-support) need the full definition: the message's own text followed by
each nested type's text under a ``MSG: pkg/msg/Type`` separator line.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from pathlib import Path

SEPARATOR = "=" * 80
PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
              "uint32", "int64", "uint64", "string", "wstring"}


def _share_dirs() -> list[Path]:
    dirs = [Path(p) / "share" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return dirs + [Path(sys.prefix) / "share"]


@cache
def msg_text(type_name: str) -> str:
    """The .msg text of "pkg/msg/Type" (or "pkg/Type")."""
    pkg, name = type_name.split("/")[0], type_name.split("/")[-1]
    for share in _share_dirs():
        path = share / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"no .msg definition for {type_name} under {[str(d) for d in _share_dirs()]}")


def _dependencies(type_name: str) -> list[str]:
    pkg = type_name.split("/")[0]
    deps = []
    for line in msg_text(type_name).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line.split()[0]:
            continue
        field_type = re.sub(r"\[.*\]$", "", line.split()[0])
        field_type = re.sub(r"<=\d+$", "", field_type)
        if field_type in PRIMITIVES or field_type.startswith(("string<", "wstring<")):
            continue
        if len(line.split()) > 2 and "=" in line:  # a constant
            continue
        if "/" in field_type:
            dep_pkg, dep_name = field_type.split("/")[0], field_type.split("/")[-1]
        else:
            dep_pkg, dep_name = pkg, field_type
        deps.append(f"{dep_pkg}/msg/{dep_name}")
    return deps


def full_definition(type_name: str) -> str:
    """Concatenated definition of `type_name` and, transitively, every type it uses."""
    order, seen, stack = [], {type_name}, list(reversed(_dependencies(type_name)))
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        order.append(dep)
        stack.extend(reversed(_dependencies(dep)))
    parts = [msg_text(type_name).rstrip()]
    for dep in order:
        parts.append(f"{SEPARATOR}\nMSG: {dep.replace('/msg/', '/')}\n{msg_text(dep).rstrip()}")
    return "\n".join(parts) + "\n"


def recorded_topic_counts(path) -> dict[str, int]:
    """{topic: message count} of an MCAP file, from its summary (or a full scan if it has none)."""
    from mcap.reader import make_reader

    with open(path, "rb") as fh:
        reader = make_reader(fh)
        summary = reader.get_summary()
        if summary is not None and summary.statistics is not None:
            return {summary.channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
        counts: dict[str, int] = {}
        for _schema, channel, _message in reader.iter_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
        return counts
