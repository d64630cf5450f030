"""The hardware launch file is valid ROS 2 YAML launch and starts executables that exist."""

from pathlib import Path

import yaml

from meldbot.executables import SOURCE_ROOT, executables


def test_hardware_launch_file_names_existing_executables_and_configs():
    data = yaml.safe_load((SOURCE_ROOT / "launch" / "widowx_hardware.launch.yaml").read_text())
    entries = data["launch"]
    args = {e["arg"]["name"] for e in entries if "arg" in e}
    nodes = [e["node"] for e in entries if "node" in e]
    assert {"namespace", "port", "scene", "wrist"} <= args
    assert {n["exec"] for n in nodes} == {"widowx_driver", "dual_camera"}
    for node in nodes:
        assert node["exec"] in executables() and node["namespace"] == "$(var namespace)"
        for param in node["param"]:
            if "from" in param:
                path = Path(param["from"].replace("$(find-pkg-share meldbot)", str(SOURCE_ROOT)))
                assert path.is_file(), path
                assert "ros__parameters" in yaml.safe_load(path.read_text())["/**"]
