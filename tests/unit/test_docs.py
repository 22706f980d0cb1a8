"""The repository stands on its own: every file the README, the docs and the code point at exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
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


def test_the_generated_documents_are_what_make_docs_writes() -> None:
    """The README's settings table and docs/benchmarks.md's figures come from their sources, never by hand."""
    from devstack.docs import documents

    stale = [path.name for path, text in documents().items() if path.read_text() != text]
    assert stale == []


def test_a_figure_not_measured_says_so_and_a_measured_one_is_shown() -> None:
    from devstack.docs import figures_table

    measured = {"achieved_per_limit": 0.947, "rate_refusals": 0, "calls_per_window": [100, 92]}
    table = figures_table(
        lambda source, dialect: measured if (source, dialect) == ("results-realtime", "official") else None
    )
    first = table.splitlines()[2]
    assert first.startswith("| achieved / limit while a backlog waits, in real time | 0.95 | not measured |")
    assert "| calls in each window of the real-time run | 100, 92 |" in table


def anchors(document: Path) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation gone but hyphens, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda p: p.name)
def test_every_link_to_a_section_finds_its_heading(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:")) or "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        linked = (document.parent / path).resolve() if path else document
        if linked.suffix == ".md":
            assert anchor in anchors(linked), f"{document.name} links to {target}: no such heading"


def test_the_readme_reads_in_five_minutes() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


# Docs are for users: no dated runs, no story of earlier sessions (history goes in the CHANGELOG).
NARRATIVE = re.compile(
    r"\b20\d\d-\d\d-\d\d\b|this session|since fixed|an earlier (?:run|table|session)|one run on this machine"
    r"|the last runs?\b|earlier runs",
    re.IGNORECASE,
)


@pytest.mark.parametrize("document", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_the_docs_tell_no_story_of_earlier_runs(document: Path) -> None:
    assert NARRATIVE.findall(document.read_text()) == []
