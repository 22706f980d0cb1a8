"""Every setting is declared once (smsgw/config/settings.json): Settings, the template and the README are
held to it."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest

from devstack.docs import between_markers
from smsgw.config import (
    SETTINGS_FIELDS,
    STACK,
    Setting,
    Settings,
    declared,
    markdown_table,
    other_parameters,
    powertools,
)
from smsgw.config.kinds import Choice, Flag, Number, Parsed, Text

ROOT = Path(__file__).resolve().parents[2]


def variables(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Globals"]["Function"]["Environment"]["Variables"])


def test_every_attribute_of_settings_is_declared_and_nothing_else() -> None:
    assert tuple(declared()) == SETTINGS_FIELDS


@pytest.mark.parametrize("name", SETTINGS_FIELDS)
def test_a_declarations_kind_gives_its_attributes_type(name: str) -> None:
    declaration = declared()[name]
    hint = typing.get_type_hints(Settings)[name]
    value = declaration.read({declaration.variable: declaration.default or "x"}) if not declaration.required else "x"
    if isinstance(declaration.kind, Number):
        assert hint is (int if declaration.kind.whole else float)
        assert isinstance(value, hint)
    elif isinstance(declaration.kind, Flag):
        assert hint is bool
    elif isinstance(declaration.kind, Choice):
        assert set(typing.get_args(hint)) == set(declaration.kind.options)
    elif isinstance(declaration.kind, Text | Parsed):
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        assert any(isinstance(value, typing.get_origin(option) or option) for option in options)


def test_the_template_sets_exactly_the_declared_variables(template: dict[str, Any]) -> None:
    declared_variables = {d.variable for d in declared().values()} | {d.variable for d in powertools()}
    assert set(variables(template)) == declared_variables


@pytest.mark.parametrize("declaration", list(declared().values()), ids=lambda d: d.variable)
def test_each_variable_is_set_as_declared(template: dict[str, Any], declaration: Setting) -> None:
    value = variables(template)[declaration.variable]
    parameters = template["Parameters"]
    if declaration.parameter == STACK:  # a resource of the stack, or a name built from its parameters
        assert not (isinstance(value, dict) and value.get("Ref") in parameters), value
    elif declaration.parameter is not None:
        assert value == {"Ref": declaration.parameter}
        parameter_default = str(parameters[declaration.parameter]["Default"])
        assert declaration.read({declaration.variable: parameter_default}) == declaration.read({})
    else:  # no parameter: the template writes the declared default itself
        assert isinstance(value, str)
        assert declaration.read({declaration.variable: value}) == declaration.read({})


def test_every_parameter_sets_a_setting_or_is_the_stacks_own(template: dict[str, Any]) -> None:
    setting_parameters = {d.parameter for d in (*declared().values(), *powertools())}
    assert set(template["Parameters"]) == (setting_parameters - {None, STACK}) | set(other_parameters())


def test_the_readmes_table_is_the_declarations() -> None:
    """`make docs` writes it; this fails when a declaration changed and the README was not rewritten."""
    readme = (ROOT / "README.md").read_text()
    assert between_markers(readme, "settings").strip() == markdown_table().strip()
