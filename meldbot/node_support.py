"""Glue shared by every meldbot node: typed-dataclass parameters, diagnostics, and a clean main().

A node file stays thin: it declares a config dataclass, builds the plain-Python core from it, and
wires topics from `meldbot.topics`. Parameters are declared with the dataclass defaults, so a node runs
with no YAML at all and a YAML (``--params-file``) or launch ``param`` overrides any field.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

C = TypeVar("C")


def declare_config(node, config_cls: type[C], prefix: str = "") -> C:
    """Declare one ROS parameter per dataclass field (default = field default) and build the config.

    Values are checked against the field's type here rather than by rclpy, so ``rate_hz:=10`` is
    accepted for a float field and a wrong type ends start-up with a message naming the parameter.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    hints = get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            raise TypeError(f"{config_cls.__name__}.{f.name} needs a default to be a ROS parameter")
        name = prefix + f.name
        initial = (list(default) or None) if isinstance(default, (list, tuple)) else default
        got = node.declare_parameter(name, initial, ParameterDescriptor(dynamic_typing=True)).value
        if got is None:
            values[f.name] = list(default) if isinstance(default, (list, tuple)) else default
            continue
        try:
            values[f.name] = _coerce(got, hints.get(f.name, type(default)), default)
        except TypeError as exc:
            raise SystemExit(f"{node.get_name()}: parameter '{name}' {exc}") from exc
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"{node.get_name()}: invalid parameters: {exc}") from exc


def _coerce(value, hint, default):
    """`value` as the field type `hint` (float accepts int; list elements likewise), else TypeError."""
    import typing

    origin = typing.get_origin(hint)
    if origin in (list, tuple) or isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else (type(default[0]) if default else str)
        return [_coerce(v, item, None) for v in value]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"must be a number, got {value!r}")
        return float(value)
    if hint in (int, bool, str) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise TypeError(f"must be {hint.__name__}, got {value!r}")
    return value


def config_from_dict(config_cls: type[C], data: dict, source: str = "config") -> C:
    """Build a typed config from a dict (YAML), naming unknown keys instead of ignoring them."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} for {config_cls.__name__} (known: {sorted(known)})")
    return config_cls(**data)


def diagnostic_status(name: str, level: str, message: str, values: dict[str, Any] | None = None,
                      hardware_id: str = ""):
    """diagnostic_msgs/DiagnosticStatus; level is 'ok', 'warn', 'error' or 'stale'."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    levels = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN,
              "error": DiagnosticStatus.ERROR, "stale": DiagnosticStatus.STALE}
    status = DiagnosticStatus()
    status.level = levels[level]
    status.name = name
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in (values or {}).items()]
    return status


def diagnostic_array(node, statuses):
    from diagnostic_msgs.msg import DiagnosticArray

    msg = DiagnosticArray()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.status = list(statuses)
    return msg


SHUTDOWN_ACK_TIMEOUT_S = 1.0


def _wait_for_acks(node, timeout_s: float) -> None:
    """Block until subscribers acknowledged what the node published last (e.g. the final zero command).

    Destroying a reliable writer right after publishing can drop the sample before the reader has it,
    which for the final zero velocity would leave the arm on its last command."""
    from rclpy.duration import Duration

    for pub in node.publishers:
        if not pub.wait_for_all_acked(Duration(seconds=timeout_s)):
            print(f"[WARN] {pub.topic_name}: final messages not acknowledged within {timeout_s} s",
                  file=sys.stderr, flush=True)


def run_node(make_node: Callable[[], Any], executor_threads: int = 1, args=None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C/SIGTERM or `node.done`, then shut down cleanly.

    A node may define ``shutdown_hook()`` (called before destruction: e.g. send zero velocity) and set
    ``exit_code``. A SystemExit raised while building the node (bad parameters, wrong model) is
    printed as one clear line and ends the process with code 2.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    # rclpy's own SIGINT handler would invalidate the context before shutdown_hook could publish a
    # final zero command; Python's KeyboardInterrupt lets the hook run first.
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    # A process started with SIGINT ignored (by nohup, or as a script's background job) inherits that,
    # and Python then installs no KeyboardInterrupt: the node would sit out Ctrl-C and ros2 launch's
    # SIGINT until killed. Take SIGINT back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # SIGTERM from a launcher should stop as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    node = None
    code = 0
    try:
        node = make_node()
        executor = MultiThreadedExecutor(executor_threads) if executor_threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        # From here a signal only asks the loop to stop: raised as KeyboardInterrupt, it can land inside a
        # finalizer (rclpy's Future.__del__), where Python prints "Exception ignored" and the node spins on.
        # Restored after the loop: a caller's process (a test's) keeps its Ctrl-C.
        stop = threading.Event()
        interrupts = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while rclpy.ok() and not stop.is_set() and not getattr(node, "done", False):
                executor.spin_once(timeout_sec=0.1)
        finally:
            for sig, handler in interrupts.items():
                signal.signal(sig, handler)
        code = int(getattr(node, "exit_code", 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(f"[ERROR] {exc.code}", file=sys.stderr, flush=True)
            code = 2
        else:
            code = int(exc.code or 0)
    finally:
        if node is not None:
            hook = getattr(node, "shutdown_hook", None)
            if hook is not None:
                try:
                    hook()
                    _wait_for_acks(node, SHUTDOWN_ACK_TIMEOUT_S)
                except Exception as exc:  # the process is ending; report, do not mask the exit
                    print(f"[WARN] shutdown hook failed: {exc}", file=sys.stderr, flush=True)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
