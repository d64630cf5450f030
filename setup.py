"""colcon (ament_python) entry point; metadata, dependencies and scripts live in pyproject.toml."""

from glob import glob

from setuptools import setup

PACKAGE = "meldbot"

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.yaml")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/calibration", glob("calibration/*.yaml")),
    ],
)
