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


def test_ruff_format_decides_the_layout() -> None:
    """`ruff format --check` runs in `make lint`; a `# fmt: skip` or `# fmt: off` must say why on its line."""
    root = PACKAGE.parents[2]
    tracked = [p for d in ("layers", "functions", "local", "tests") for p in (root / d).rglob("*.py")]
    unexplained = [
        f"{path.relative_to(root)}:{n}"
        for path in tracked
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if (marker := line.partition("# fmt: ")[2]) and not marker.partition("#")[2].strip()
    ]
    assert unexplained == []


def imports_runtime(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name == "smsgw.runtime" for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        named = {alias.name for alias in node.names}
        return node.module == "smsgw.runtime" or (node.module == "smsgw" and "runtime" in named)
    return False


def test_only_the_handlers_import_the_composition_root() -> None:
    """The logic gets what it needs passed in; `runtime` wires it, and the handlers call runtime."""
    importers = [
        module.relative_to(PACKAGE).as_posix()
        for module in modules()
        if module.name != "runtime.py" and any(imports_runtime(n) for n in ast.walk(ast.parse(module.read_text())))
    ]
    assert importers == []
