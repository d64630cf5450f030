"""Typed-dataclass parameters: defaults declared, overrides applied, empty lists allowed."""

from dataclasses import dataclass, field

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from meldbot.node_support import config_from_dict, declare_config


@dataclass
class ExampleConfig:
    rate_hz: float = 5.0
    name: str = "arm"
    joints: list[str] = field(default_factory=lambda: ["a", "b"])
    gains: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


@pytest.fixture
def make_node():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=0)
    nodes = []

    def make(overrides=None):
        node = rclpy.create_node("cfg_test", context=ctx, start_parameter_services=False,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=ctx)


def test_defaults_including_empty_lists(make_node):
    config = declare_config(make_node(), ExampleConfig)
    assert config == ExampleConfig()


def test_overrides_and_int_to_float_coercion(make_node):
    config = declare_config(make_node({"rate_hz": 10, "joints": ["x"], "gains": [1.0, 2.0]}), ExampleConfig)
    assert config.rate_hz == 10.0 and isinstance(config.rate_hz, float)
    assert config.joints == ["x"] and config.gains == [1.0, 2.0] and config.ids == []


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['rat_hz'\]"):
        config_from_dict(ExampleConfig, {"rat_hz": 3.0}, "robot.yaml")


def test_wrong_type_names_the_parameter(make_node):
    with pytest.raises(SystemExit, match=r"parameter 'rate_hz' must be a number, got 'fast'"):
        declare_config(make_node({"rate_hz": "fast"}), ExampleConfig)
