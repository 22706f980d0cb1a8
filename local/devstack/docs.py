"""`make docs`: the documents' generated parts, from their one source.

- README.md's configuration table, between `<!-- settings:start -->` and `<!-- settings:end -->`, from the
  settings' declarations (smsgw/config/settings.py);
- docs/benchmarks.md's table, between `<!-- figures:start -->` and `<!-- figures:end -->`, from the figures
  `make bench` and `make soak` wrote to bench-out/*.json (kept in git, so the table can be checked).

`python -m devstack.docs --check` fails when a document is not what its source makes (tests run the same).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsgw.config import markdown_table

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out"
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
DIALECTS = ("official", "generic")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"


def between_markers(text: str, name: str) -> str:
    start, end = _markers(name)
    if start not in text or end not in text:
        raise ValueError(f"no {name} markers in the document")
    return text.split(start, 1)[1].split(end, 1)[0]


def replace_between(text: str, name: str, content: str) -> str:
    start, end = _markers(name)
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}{content.rstrip()}\n{end}{tail}"


@dataclass(frozen=True)
class Row:
    """One figure of the benchmarks table: a key of a results file, how to print it, and its target."""

    label: str
    source: str  # the file stem: results, results-realtime, soak
    key: str
    target: str = ""
    show: Callable[[Any], str] = lambda value: f"{value:.2f}"


def _calls(value: Any) -> str:
    return ", ".join(str(n) for n in value)


def _rate(value: Any) -> str:
    return ", ".join(f"`{policy}` {n:.1f}" for policy, n in value.items())


ROWS = (
    Row("achieved / limit while a backlog waits, in real time", "results-realtime", "achieved_per_limit", ">= 0.95"),
    Row("the same / the limiter's ceiling of that run", "results-realtime", "achieved_per_ceiling_of_this_run"),
    Row("calls in each window of the real-time run", "results-realtime", "calls_per_window", show=_calls),
    Row("rate refusals by MiM, real time", "results-realtime", "rate_refusals", "0", show=str),
    Row("achieved / limit, the campaign in 4x compressed time", "results", "achieved_per_limit"),
    Row("the same / the limiter's ceiling of that run", "results", "achieved_per_ceiling_of_this_run"),
    Row("rate refusals by MiM, compressed", "results", "rate_refusals", "0", show=str),
    Row("OTP accepted after, in windows: median", "results", "otp_latency_windows_median"),
    Row("OTP accepted after, in windows: p95", "results", "otp_latency_windows_p95", "<= 1"),
    Row(
        "OTP behind 10,000 queued campaign messages, windows (slowest of 5)",
        "results",
        "otp_behind_backlog_windows_max",
        "<= 1",
    ),
    Row(
        "batch of 10 / one round trip, the store modelled at 5 ms a call",
        "results",
        "batch_of_10_per_round_trip",
        "<= 1.5",
    ),
    Row("the same on moto's server (its CPU per write, serialised)", "results", "batch_of_10_per_round_trip_on_moto"),
    Row("serial batch of 10 / pooled batch of 10", "results", "serial_per_pooled"),
    Row("a 1,000-number chunk, seconds (the function has 30)", "results", "chunk_1000_seconds"),
    Row("the same with its records written one by one, seconds", "results", "chunk_1000_seconds_writes_one_by_one"),
    Row("handler CPU per message / the irreducible work", "results", "handler_cpu_per_irreducible", "<= 1.5"),
    Row("handler CPU per message / a bare urllib3 POST", "results", "handler_cpu_per_bare_post"),
    Row("cold start / `import boto3`, X-Ray on", "results", "cold_start_per_import_boto3", "<= 1.5"),
    Row("the same, tracing off", "results", "cold_start_per_import_boto3_untraced"),
    Row("the built artifact / `import boto3`, X-Ray on", "results", "artifact_cold_start_per_import_boto3", "<= 1.5"),
    Row("the built artifact, tracing off", "results", "artifact_cold_start_per_import_boto3_untraced"),
    Row(
        "the built artifact / `import boto3` with the collector paused too",
        "results",
        "artifact_cold_start_per_import_boto3_paused_too",
    ),
    Row(
        "the built artifact without the layers' bytecode",
        "results",
        "artifact_cold_start_without_bytecode_per_import_boto3",
    ),
    Row(
        "the built artifact with AWS's published Powertools layer",
        "results",
        "artifact_cold_start_with_published_layer_per_import_boto3",
    ),
    Row(
        "items read per poll run / reports looked up, beside 10,000 final records",
        "results",
        "items_read_per_report",
        "<= 1.1",
    ),
    Row(
        "DynamoDB writes per message end to end, the limiter included", "results", "dynamodb_writes_per_message", "<= 4"
    ),
    Row("report look-ups per tracked message", "results", "lookups_per_tracked_message"),
    Row(
        "sustainable messages a minute at MiM's default limits, by tracking policy",
        "results",
        "sustainable_messages_per_minute",
        show=_rate,
    ),
    Row("SMS parts saved by smart encoding (the corpus)", "results", "parts_saved_share"),
    Row("... English alone", "results", "english_parts_saved_share"),
    Row(
        "soak: no duplicate, loss, dead letter or rate refusal",
        "soak",
        "ok",
        "yes",
        show=lambda ok: "yes" if ok else "**no**",
    ),
    Row("soak: messages", "soak", "messages", show=str),
    Row("soak: OTP accepted after, in windows: median", "soak", "otp_latency_windows_median"),
    Row("soak: OTP accepted after, in windows: p95", "soak", "otp_latency_windows_p95", "<= 1"),
    Row("soak: busiest window / limit", "soak", "busiest_per_limit", "<= 1"),
)


def _load(source: str, dialect: str) -> dict[str, Any] | None:
    path = OUT / (f"{source}.json" if dialect == "official" else f"{source}-{dialect}.json")
    return json.loads(path.read_text()) if path.exists() else None


def figures_table(load: Callable[[str, str], dict[str, Any] | None] = _load) -> str:
    """The benchmarks table: every figure from a results file; `not measured` where none was written."""
    lines = ["| measure | official | generic | target |", "|---|---|---|---|"]
    for row in ROWS:
        cells = []
        for dialect in DIALECTS:
            results = load(row.source, dialect)
            value = None if results is None else results.get(row.key)
            cells.append("not measured" if value is None else row.show(value))
        lines.append(f"| {row.label} | {cells[0]} | {cells[1]} | {row.target} |")
    return "\n".join(lines) + "\n"


def documents() -> dict[Path, str]:
    """Each generated document as its source makes it."""
    readme = README.read_text()
    return {
        README: replace_between(readme, "settings", markdown_table()),
        BENCHMARKS: replace_between(BENCHMARKS.read_text(), "figures", figures_table()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make docs", description="Write the documents' generated parts.")
    parser.add_argument("--check", action="store_true", help="only say which documents are out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in documents().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not what `make docs` writes", file=sys.stderr)
        return 1 if stale else 0
    for path, text in documents().items():
        path.write_text(text)
    print("written: " + ", ".join(str(path.relative_to(ROOT)) for path in stale) if stale else "up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
