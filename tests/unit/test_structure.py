"""The shipped package stays in small rooms: modules of at most 400 lines, functions of at most 60.

ruff's C90 rule (pyproject.toml) keeps every function's branches to 12.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "sms_common" / "smsgw"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_small() -> None:
    lines = {module.relative_to(PACKAGE).as_posix(): len(module.read_text().splitlines()) for module in modules()}
    assert {name: n for name, n in lines.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for module in modules():
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append((module.name, node.name, length))
    assert long == []


def test_the_large_concerns_are_packages_of_rooms() -> None:
    rooms = {package: {m.stem for m in (PACKAGE / package).glob("*.py")} for package in ("sending", "store", "limiter")}
    assert {"inbound", "admission", "record", "calls", "bulk", "sender", "batch", "results"} <= rooms["sending"]
    assert {"base", "attempts", "work", "bulk", "cancel"} <= rooms["store"]
    assert {"state", "rules", "limiter"} <= rooms["limiter"]
