"""`meldbot topics`: print the topic contract (names, types, QoS) as a Markdown table."""

from __future__ import annotations

from meldbot import topics


def contract_table() -> str:
    lines = ["| name | type | QoS | meaning |", "|---|---|---|---|"]
    for t in topics.ALL_TOPICS:
        lines.append(f"| `{t.name}` | `{t.msg_type}` | {t.qos.value} | {t.doc} |")
    for s in topics.ALL_SERVICES:
        lines.append(f"| `{s.name}` (service) | `{s.srv_type}` | - | {s.doc} |")
    return "\n".join(lines)


def register(subparsers):
    parser = subparsers.add_parser("topics", help="print the topic contract (every topic, type and QoS)")
    parser.set_defaults(func=lambda _args: print(contract_table()) or 0)
