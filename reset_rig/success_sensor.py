"""Insertion-success sensor: the Ethernet link of the cable's far end, and/or GRBL's probe input.

The robot holds an Ethernet plug whose cable runs to a NIC on the rig computer; when the plug seats
in a live router port, that NIC's PHY negotiates a link and ``/sys/class/net/<if>/carrier`` reads 1.
With one NIC per router port (``port_interfaces``), only a link on the *current task's* port counts:
a plug in the wrong port is a failure, not a success. The probe input (``Pn:P`` in GRBL's status)
can carry a contact switch in the port instead, or as well.

Raw readings flap (autonegotiation takes ~1-3 s and can bounce; a plug wiggling in the jack makes
contact for milliseconds), so the published value is debounced: it turns on only after the raw
value has been true for ``debounce_on_s`` and off after false for ``debounce_off_s``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path


class SensorError(RuntimeError):
    """The sensor cannot be read as configured (missing interface, bad config)."""


@dataclass
class SuccessSensorConfig:
    """Success sensor parameters (config/success_sensor.yaml)."""

    interface: str = ""  # NIC that sees the link when the plug is seated ("" = not used)
    port_interfaces: str = ""  # "port0=enx0050b6000001,port1=...": one NIC per router port ("" = not used)
    tasks_file: str = ""  # task -> correct port (for port_interfaces); "" = calibration/rig_tasks.yaml
    sysfs_net: str = "/sys/class/net"  # a fake root in tests
    use_probe: bool = False  # also (or only) GRBL's probe pin, as published by the rig node
    combine: str = "any"  # any | all: how carrier and probe combine when both are used
    debounce_on_s: float = 0.3
    debounce_off_s: float = 0.5
    poll_period_s: float = 0.02

    def __post_init__(self):
        if self.combine not in ("any", "all"):
            raise ValueError(f"combine must be 'any' or 'all', not {self.combine!r}")
        if self.debounce_on_s < 0 or self.debounce_off_s < 0:
            raise ValueError("debounce times must be >= 0")
        if self.interface and self.port_interfaces:
            raise ValueError("set either interface or port_interfaces, not both")
        if not (self.interface or self.port_interfaces or self.use_probe):
            raise ValueError("no success source: set interface, port_interfaces or use_probe")
        self.port_map  # noqa: B018 - validates the entries

    @property
    def port_map(self) -> dict[str, str]:
        """{port: interface} from "port0=enx0,port1=enx1"."""
        mapping = {}
        for item in filter(None, (x.strip() for x in self.port_interfaces.split(","))):
            port, sep, ifname = (x.strip() for x in item.partition("="))
            if not sep or not port or not ifname:
                raise ValueError(f"port_interfaces entry {item!r} is not 'port=interface'")
            mapping[port] = ifname
        return mapping


def read_carrier(interface: str, sysfs_net: str | Path = "/sys/class/net") -> bool:
    """Link state of a NIC from sysfs. An administratively-down NIC (EINVAL) reads as no link."""
    root = Path(sysfs_net)
    path = root / interface / "carrier"
    try:
        return path.read_text().strip() == "1"
    except FileNotFoundError:
        known = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise SensorError(f"network interface '{interface}' not found in {root} (have: {', '.join(known)})") \
            from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # the kernel refuses to read carrier of a NIC that is down
            return False
        raise SensorError(f"cannot read {path}: {exc}") from exc


class Debouncer:
    """Turns on after the input has been true for `on_s`, off after false for `off_s` (times in seconds)."""

    def __init__(self, on_s: float, off_s: float, initial: bool = False):
        self.on_s, self.off_s = on_s, off_s
        self.value = initial
        self._since: float | None = None  # when the raw input started disagreeing with `value`

    def update(self, raw: bool, now: float) -> bool:
        if raw == self.value:
            self._since = None
            return self.value
        if self._since is None:
            self._since = now
        if now - self._since >= (self.on_s if raw else self.off_s):
            self.value, self._since = raw, None
        return self.value


@dataclass(frozen=True)
class SuccessReading:
    success: bool  # debounced
    raw: bool
    sources: dict  # source name -> raw value (None: not available now)
    note: str = ""


class SuccessSensor:
    """Combines carrier and probe readings and debounces them. Time is passed in: testable without sleeping."""

    def __init__(self, config: SuccessSensorConfig, task_ports: dict[str, str] | None = None):
        self.config = config
        self.task_ports = task_ports or {}
        self.task_id: str | None = None
        self.probe: bool | None = None
        self.debouncer = Debouncer(config.debounce_on_s, config.debounce_off_s)
        if config.port_interfaces:
            missing = sorted({p for p in self.task_ports.values()} - set(config.port_map))
            if missing:
                raise SensorError(f"port_interfaces lacks an interface for port(s) {missing} used by the tasks")

    def set_task(self, task_id: str | None):
        """The task in place (from /task/current); picks the correct port in port_interfaces mode."""
        self.task_id = task_id or None

    def set_probe(self, closed: bool | None):
        self.probe = closed

    def read_raw(self) -> tuple[bool, dict, str]:
        cfg = self.config
        sources: dict[str, bool | None] = {}
        note = ""
        if cfg.interface:
            sources["carrier"] = read_carrier(cfg.interface, cfg.sysfs_net)
        elif cfg.port_interfaces:
            links = {port: read_carrier(ifname, cfg.sysfs_net) for port, ifname in cfg.port_map.items()}
            port = self.task_ports.get(self.task_id or "")
            sources["carrier"] = links.get(port) if port else None
            live = [p for p, up in links.items() if up]
            if port is None:
                note = "no current task: carrier ignored" + (f" (link on {', '.join(live)})" if live else "")
            elif any(p != port for p in live):
                note = f"link on wrong port(s) {', '.join(p for p in live if p != port)} (task wants {port})"
        if cfg.use_probe:
            sources["probe"] = self.probe
        known = [v for v in sources.values() if v is not None]
        if not known:
            return False, sources, note or "no source available"
        raw = any(known) if cfg.combine == "any" else (all(known) and len(known) == len(sources))
        return raw, sources, note

    def sample(self, now: float) -> SuccessReading:
        raw, sources, note = self.read_raw()
        return SuccessReading(self.debouncer.update(raw, now), raw, sources, note)


def task_ports_from_table(tasks_file: str = "") -> dict[str, str]:
    from reset_rig.rig import load_task_table

    return {t.task_id: t.port for t in load_task_table(tasks_file or None).values()}
