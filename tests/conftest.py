"""Shared fixtures. DDS discovery stays on loopback for this process and every child it starts."""

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

from tests.support.fastdds_shm import clean_zombies  # noqa: E402
from tests.support.ros_graph import RosGraph  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def no_stale_fastdds_shared_memory():
    """Start from no shared memory of killed DDS processes (an earlier run's, or another program's)."""
    clean_zombies()
    yield


@pytest.fixture
def ros_graph(tmp_path):
    """A `RosGraph` on a test-unique ROS_DOMAIN_ID; every process it started is stopped afterwards."""
    graph = RosGraph(tmp_path)
    try:
        yield graph
    finally:
        graph.close()
