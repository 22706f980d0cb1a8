"""Settings read once from the environment into a frozen object, every setting declared once (settings.py)."""

from smsgw.config.kinds import (
    OFFICIAL_BASE_URL,
    ConfigError,
    RateLimit,
    TrackingPolicy,
    parse_rate_limits,
    parse_tracking_policy,
    validate_base_url,
)
from smsgw.config.settings import (
    DIALECTS,
    SETTINGS_FIELDS,
    STACK,
    Dialect,
    Setting,
    Settings,
    declared,
    get_settings,
    load_settings,
    markdown_table,
    other_parameters,
    powertools,
)

__all__ = [
    "DIALECTS",
    "OFFICIAL_BASE_URL",
    "SETTINGS_FIELDS",
    "STACK",
    "ConfigError",
    "Dialect",
    "RateLimit",
    "Setting",
    "Settings",
    "TrackingPolicy",
    "declared",
    "get_settings",
    "load_settings",
    "markdown_table",
    "other_parameters",
    "parse_rate_limits",
    "parse_tracking_policy",
    "powertools",
    "validate_base_url",
]
