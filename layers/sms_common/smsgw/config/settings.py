"""Every setting, declared once in settings.json beside this module: its variable, kind (type and bounds),
default, meaning and the template parameter that sets it. `load_settings` reads them into `Settings`, the
README's table is written from them (`make docs`), and tests hold `Settings` and template.yaml to them.

Nothing reads the environment at import time: `get_settings()` does it on first use and caches the result.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from smsgw.config.kinds import (
    Choice,
    ConfigError,
    Flag,
    Kind,
    Number,
    Parsed,
    RateLimit,
    Text,
    TrackingPolicy,
    parse_rate_limits,
    parse_tracking_policy,
    sender_id,
    validate_base_url,
)

Dialect = Literal["generic", "official"]
DIALECTS: tuple[Dialect, ...] = ("generic", "official")
STACK = "(stack)"  # set by the template from a resource of the stack, not from a parameter
DECLARATIONS = Path(__file__).with_name("settings.json")
_GRAMMARS: dict[str, Callable[[str, str], Any]] = {
    "rate_limits": parse_rate_limits,
    "tracking_policy": parse_tracking_policy,
    "url": validate_base_url,
    "sender_id": sender_id,
}


@dataclass(frozen=True)
class Setting:
    """One environment variable of the functions, as declared."""

    variable: str
    meaning: str
    kind: Kind = Text()
    required: bool = False
    default: str | None = None  # as the variable would hold it; None: unset
    parameter: str | None = None  # the template parameter that sets it; STACK; None: the template writes it
    shown: str | None = None  # the default as the docs show it, where the value itself would not say it

    def read(self, env: Mapping[str, str]) -> Any:
        """The value: the variable's, else the default's; an error naming the variable when it is required."""
        raw = env.get(self.variable, "").strip() or (self.default or "")
        if not raw:
            if self.required:
                raise ConfigError(f"{self.variable} is required but not set")
            return None
        return self.kind.parse(raw, self.variable)


def _kind(entry: Mapping[str, Any]) -> Kind:
    kind = entry.get("kind", "text")
    if kind in ("number", "whole"):
        return Number(entry["minimum"], entry["maximum"], whole=kind == "whole")
    if kind == "choice":
        return Choice(tuple(entry["options"]))
    if kind == "flag":
        return Flag()
    return Parsed(_GRAMMARS[kind]) if kind in _GRAMMARS else Text()


@functools.cache
def _declared() -> dict[str, Any]:
    return dict(json.loads(DECLARATIONS.read_text()))


def declared() -> dict[str, Setting]:
    """Each Settings attribute's declaration, in declaration order."""
    own = ("variable", "meaning", "required", "default", "parameter", "shown")  # the rest describes the kind
    return {
        name: Setting(**{key: entry[key] for key in own if key in entry}, kind=_kind(entry))
        for name, entry in _declared()["settings"].items()
    }


def powertools() -> tuple[Setting, ...]:
    """Variables Powertools reads, not Settings; declared so the docs and the template checks see every one."""
    return tuple(Setting(variable, **entry) for variable, entry in _declared()["powertools"].items())


def other_parameters() -> dict[str, str]:
    """The template's parameters that set no variable of the functions (the stack's own shape)."""
    return dict(_declared()["other_parameters"])


@dataclass(frozen=True, eq=False)
class Settings:
    """The service's configuration, read once from the environment (`get_settings`); settings.json says what
    each attribute means, its variable, default and bounds."""

    messages_table: str
    secret_id: str
    dialect: Dialect
    base_url: str
    rate_limits: tuple[RateLimit, ...]
    send_concurrency: int
    price_per_part: float
    record_retention_days: int
    connect_timeout: float
    read_timeout: float
    secret_max_age: int
    default_sender_id: str | None
    bulk_chunk_size: int
    smart_encoding: bool
    event_bus: str
    event_source: str
    balance_gate_parameter: str | None
    balance_floor: float
    balance_check_seconds: int
    tracking_window_hours: float
    tracking: TrackingPolicy
    maybe_sent_grace_seconds: int
    report_delay_seconds: float
    poll_concurrency: int
    send_queue_url: str
    priority_queue_url: str | None
    control_table: str
    otp_share: float
    bulk_burst: float
    max_defer_seconds: int
    max_send_attempts: int
    max_message_age_seconds: int
    retry_base_seconds: float
    outage_failures: int
    outage_cooldown_seconds: float
    rate_slack_seconds: float
    max_clock_skew_seconds: float


SETTINGS_FIELDS = tuple(item.name for item in fields(Settings))


def load_settings(env: Mapping[str, str]) -> Settings:
    values = {name: declaration.read(env) for name, declaration in declared().items()}
    if values["dialect"] != "official" and not env.get("MIMSMS_BASE_URL", "").strip():
        raise ConfigError("MIMSMS_BASE_URL is required when MIMSMS_API is 'generic'")
    return Settings(**values)


def _row(declaration: Setting) -> str:
    parameter = {None: "", STACK: "the stack"}.get(declaration.parameter, f"`{declaration.parameter}`")
    default = declaration.shown or (f"`{declaration.default}`" if declaration.default else "")
    return f"| `{declaration.variable}` | {parameter} | {default} | {declaration.meaning} |"


def markdown_table() -> str:
    """The README's configuration tables, from the declarations (`make docs` writes them)."""
    rows = [_row(declaration) for declaration in (*declared().values(), *powertools())]
    others = [f"| `{name}` | {meaning} |" for name, meaning in other_parameters().items()]
    head = ["| variable | parameter | default | meaning |", "|---|---|---|---|"]
    tail = ["", "The template's other parameters shape the stack itself:", "", "| parameter | meaning |", "|---|---|"]
    return "\n".join([*head, *rows, *tail, *others])


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings(os.environ)
