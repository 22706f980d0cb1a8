"""The repository stands on its own: every file the README, the docs and the code point at exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
NAMED_FILE = re.compile(r"[\w./-]+\.md\b")
SOURCES = [
    path
    for folder in ("layers", "functions", "local", "tests")
    for path in (ROOT / folder).rglob("*")
    if path.suffix in (".py", ".json", ".yaml") and "__pycache__" not in path.parts
] + [ROOT / "template.yaml", ROOT / "Makefile"]


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda p: p.name)
def test_every_relative_link_resolves(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{document.name} links to {target}, which is not in the repository"


def test_the_code_names_only_documents_that_exist() -> None:
    documents = {path.name for path in ROOT.rglob("*.md") if ".venv" not in path.parts}
    for source in SOURCES:
        for name in NAMED_FILE.findall(source.read_text(errors="replace")):
            assert Path(name).name in documents, f"{source.relative_to(ROOT)} names {name}, which does not exist"
