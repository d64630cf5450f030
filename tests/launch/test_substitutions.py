"""Substitution syntax and evaluation, as ros2/launch's frontend grammar and Substitution classes define them."""

from pathlib import Path

import pytest

from meldbot.launch import substitutions as subs


def ctx(**configs):
    return subs.EvalContext(configs=dict(configs), env={"HOME_X": "/home/x"}, launch_file=Path("/pkg/launch/a.launch.yaml"),
                            package_share=lambda pkg: Path(f"/share/{pkg}") if pkg == "meldbot" else
                            (_ for _ in ()).throw(LookupError(f"package '{pkg}' not found")))


def ev(text, **configs):
    return subs.expand(text, ctx(**configs))


def test_plain_text_and_escapes_are_literal():
    assert ev("hello world") == "hello world"
    assert ev("it's \"quoted\"") == "it's \"quoted\""
    assert ev(r"cost \$(var x)") == "cost $(var x)"
    assert ev("$ alone and (parens)") == "$ alone and (parens)"


def test_var_env_and_defaults():
    assert ev("$(var a)/b", a="x") == "x/b"
    assert ev("$(var missing fallback)") == "fallback"
    assert ev("$(env HOME_X)") == "/home/x"
    assert ev("$(env NOPE_NOT_SET dflt)") == "dflt"
    assert ev("[$(optenv NOPE_NOT_SET)]") == "[]"
    with pytest.raises(subs.SubstitutionError, match="launch configuration 'missing' does not exist"):
        ev("$(var missing)")
    with pytest.raises(subs.SubstitutionError, match="environment variable 'NOPE_NOT_SET' is not set"):
        ev("$(env NOPE_NOT_SET)")


def test_nested_and_quoted_arguments():
    assert ev("$(var $(var which))", which="a", a="A") == "A"
    assert ev("$(var b 'has spaces (and parens)')") == "has spaces (and parens)"
    assert ev('$(var b "x $(var a) y")', a="1") == "x 1 y"


def test_find_pkg_share_dirname_filename():
    assert ev("$(find-pkg-share meldbot)/config/a.yaml") == "/share/meldbot/config/a.yaml"
    assert ev("$(dirname)/x") == "/pkg/launch/x"
    assert ev("$(filename)") == "/pkg/launch/a.launch.yaml"
    with pytest.raises(subs.SubstitutionError, match="package 'nav2' not found"):
        ev("$(find-pkg-share nav2)")


def test_boolean_substitutions():
    assert ev("$(equals $(var a) sim)", a="sim") == "true"
    assert ev("$(equals 1 true)") == "true"  # booleans compare by truth value
    assert ev("$(equals 1.0 1)") == "true"  # numbers compare as floats
    assert ev("$(not-equals a b)") == "true"
    assert ev("$(not $(var a))", a="false") == "true"
    assert ev("$(and true 0)") == "false"
    assert ev("$(or 0 True)") == "true"
    assert ev("$(any 0 0 1)") == "true"
    assert ev("$(all 1 true on)") == "true"
    with pytest.raises(subs.SubstitutionError, match="not a boolean"):
        ev("$(not maybe)")


def test_eval_has_math_unqualified():
    assert ev("$(eval '$(var n) * 2 + 1')", n="3") == "7"
    assert ev("$(eval 'floor(2.7)')") == "2"
    assert ev("$(eval \"'$(var m)' == 'sim'\")", m="sim") == "True"
    with pytest.raises(subs.SubstitutionError, match="eval"):
        ev("$(eval '1 +')")


def test_anon_is_stable_within_a_launch():
    c = ctx()
    first = subs.expand("$(anon node)", c)
    assert first.startswith("node_") and subs.expand("$(anon node)", c) == first


@pytest.mark.parametrize("text, message", [
    ("$(var a", "missing '\\)'"),
    ("$(bogus x)", "unknown substitution '\\$\\(bogus"),
    ("$(command ls)", "does not support without a ROS install"),
    ("$(var)", "takes 1 to 2 argument"),
    ("$(equals a)", "takes 2 argument"),
    ("$(var  a)", "empty argument"),
    ("$(var 'a)", "unterminated ' quote"),
    ("$()", "expected a substitution name"),
])
def test_malformed_substitutions_are_rejected(text, message):
    with pytest.raises(subs.SubstitutionError, match=message):
        subs.parse(text)
