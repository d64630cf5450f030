"""Success sensor: carrier from a fake sysfs, probe, debouncing (time passed in, never slept)."""

import pytest

from reset_rig.success_sensor import (
    Debouncer,
    SensorError,
    SuccessSensor,
    SuccessSensorConfig,
    read_carrier,
    task_ports_from_table,
)


def set_carrier(root, ifname, up: bool):
    (root / ifname).mkdir(parents=True, exist_ok=True)
    (root / ifname / "carrier").write_text("1\n" if up else "0\n")


def test_debouncer_ignores_short_flaps_and_follows_stable_changes():
    d = Debouncer(on_s=0.3, off_s=0.5)
    assert d.update(True, 0.0) is False
    assert d.update(False, 0.1) is False  # 100 ms contact bounce
    assert d.update(True, 0.2) is False
    assert d.update(True, 0.45) is False  # up for 250 ms only
    assert d.update(True, 0.5) is True  # up for 300 ms
    assert d.update(False, 0.6) is True
    assert d.update(True, 0.9) is True  # a dropout of 300 ms < off time: still seated
    assert d.update(False, 1.0) is True
    assert d.update(False, 1.49) is True
    assert d.update(False, 1.5) is False  # down for the full 500 ms


def test_carrier_from_sysfs_and_debounced_success(tmp_path):
    set_carrier(tmp_path, "eth1", False)
    sensor = SuccessSensor(SuccessSensorConfig(interface="eth1", sysfs_net=str(tmp_path),
                                               debounce_on_s=0.3, debounce_off_s=0.5))
    assert sensor.sample(0.0).success is False
    set_carrier(tmp_path, "eth1", True)
    r = sensor.sample(1.0)
    assert r.raw is True and r.success is False  # link just came up
    assert sensor.sample(1.35).success is True
    set_carrier(tmp_path, "eth1", False)
    assert sensor.sample(1.5).success is True
    assert sensor.sample(2.1).success is False


def test_missing_interface_is_a_clear_error(tmp_path):
    set_carrier(tmp_path, "eth0", True)
    with pytest.raises(SensorError, match="'eth9' not found .*have: eth0"):
        read_carrier("eth9", tmp_path)


def test_port_interfaces_only_the_current_tasks_port_counts(tmp_path):
    ports = task_ports_from_table()
    cfg = SuccessSensorConfig(port_interfaces=",".join(f"port{k}=enx{k}" for k in range(4)), sysfs_net=str(tmp_path),
                              debounce_on_s=0.0, debounce_off_s=0.0)
    for k in range(4):
        set_carrier(tmp_path, f"enx{k}", False)
    sensor = SuccessSensor(cfg, ports)
    sensor.set_task("train-00")  # correct port: port2
    assert ports["train-00"] == "port2"
    set_carrier(tmp_path, "enx1", True)  # plugged into the wrong port
    r = sensor.sample(0.0)
    assert r.success is False and "wrong port" in r.note
    set_carrier(tmp_path, "enx1", False)
    set_carrier(tmp_path, "enx2", True)
    assert sensor.sample(1.0).success is True


def test_probe_combines_with_carrier(tmp_path):
    set_carrier(tmp_path, "eth1", True)
    cfg = SuccessSensorConfig(interface="eth1", sysfs_net=str(tmp_path), use_probe=True, combine="all",
                              debounce_on_s=0.0, debounce_off_s=0.0)
    sensor = SuccessSensor(cfg)
    sensor.set_probe(None)
    assert sensor.sample(0.0).success is False  # probe unknown: "all" cannot be met
    sensor.set_probe(True)
    assert sensor.sample(0.1).success is True
    sensor.set_probe(False)
    assert sensor.sample(0.2).success is False


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="no success source"):
        SuccessSensorConfig()
    with pytest.raises(ValueError, match="not 'port=interface'"):
        SuccessSensorConfig(port_interfaces="port0")
    with pytest.raises(ValueError, match="combine"):
        SuccessSensorConfig(interface="eth0", combine="most")
