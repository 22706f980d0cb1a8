import pytest

from smsgw.config import (
    ConfigError,
    RateLimit,
    get_settings,
    load_settings,
    parse_rate_limits,
    parse_tracking_policy,
)

BASE = {
    "MESSAGES_TABLE": "messages",
    "MIMSMS_SECRET_ID": "mimsms/creds",
    "SEND_QUEUE_URL": "https://sqs.ap-southeast-1.amazonaws.com/123456789012/send",
    "CONTROL_TABLE": "control",
}


def test_defaults_are_safe() -> None:
    settings = load_settings(BASE)
    assert settings.dialect == "official"
    assert settings.base_url == "https://api.mimsms.com"
    assert settings.rate_limits == (RateLimit(100, 60), RateLimit(1000, 3600), RateLimit(10000, 86400))
    assert settings.price_per_part == 0.50
    assert settings.send_concurrency == 10


def test_every_setting_is_read() -> None:
    env = {
        **BASE,
        "MIMSMS_API": "generic",
        "MIMSMS_BASE_URL": "https://sms.example.com/api/",
        "MIMSMS_RATE_LIMITS": "1000/3600, 50/60",
        "PRICE_PER_PART_BDT": "0.35",
        "SEND_CONCURRENCY": "4",
        "HTTP_CONNECT_TIMEOUT_SECONDS": "1.5",
        "HTTP_READ_TIMEOUT_SECONDS": "7",
        "SECRET_CACHE_SECONDS": "60",
        "RECORD_RETENTION_DAYS": "30",
    }
    settings = load_settings(env)
    assert settings.dialect == "generic"
    assert settings.base_url == "https://sms.example.com/api"
    assert settings.rate_limits == (RateLimit(50, 60), RateLimit(1000, 3600))
    assert (settings.price_per_part, settings.send_concurrency) == (0.35, 4)
    assert (settings.connect_timeout, settings.read_timeout) == (1.5, 7.0)
    assert (settings.secret_max_age, settings.record_retention_days) == (60, 30)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MIMSMS_SECRET_ID": "x"}, "MESSAGES_TABLE"),
        ({"MESSAGES_TABLE": "x"}, "MIMSMS_SECRET_ID"),
        ({**BASE, "MIMSMS_API": "v2"}, "MIMSMS_API"),
        ({**BASE, "MIMSMS_API": "generic"}, "MIMSMS_BASE_URL"),
        ({**BASE, "MIMSMS_BASE_URL": "http://api.mimsms.com"}, "MIMSMS_BASE_URL"),
        ({**BASE, "MIMSMS_BASE_URL": "api.mimsms.com"}, "MIMSMS_BASE_URL"),
        ({**BASE, "MIMSMS_RATE_LIMITS": "100 per minute"}, "MIMSMS_RATE_LIMITS"),
        ({**BASE, "MIMSMS_RATE_LIMITS": "0/60"}, "MIMSMS_RATE_LIMITS"),
        ({**BASE, "PRICE_PER_PART_BDT": "cheap"}, "PRICE_PER_PART_BDT"),
        ({**BASE, "SEND_CONCURRENCY": "0"}, "SEND_CONCURRENCY"),
        ({**BASE, "SEND_CONCURRENCY": "-3"}, "SEND_CONCURRENCY"),
        ({**BASE, "HTTP_READ_TIMEOUT_SECONDS": "1000"}, "HTTP_READ_TIMEOUT_SECONDS"),
        ({k: v for k, v in BASE.items() if k != "SEND_QUEUE_URL"}, "SEND_QUEUE_URL"),
        ({k: v for k, v in BASE.items() if k != "CONTROL_TABLE"}, "CONTROL_TABLE"),
        ({**BASE, "OTP_RESERVED_SHARE": "0.95"}, "OTP_RESERVED_SHARE"),
        ({**BASE, "MAX_DEFER_SECONDS": "901"}, "MAX_DEFER_SECONDS"),
    ],
)
def test_a_bad_setting_is_a_clear_error_naming_it(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_settings(env)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8900", "http://localhost:8900", "http://[::1]:8900"])
def test_plain_http_is_allowed_only_on_loopback(url: str) -> None:
    assert load_settings({**BASE, "MIMSMS_BASE_URL": url}).base_url == url


def test_rate_limits_sorted_shortest_window_first() -> None:
    assert parse_rate_limits("10000/86400,100/60") == (RateLimit(100, 60), RateLimit(10000, 86400))


def test_settings_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    first = get_settings()
    monkeypatch.setenv("MESSAGES_TABLE", "other")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().messages_table == "other"


@pytest.mark.parametrize(
    ("raw", "otp", "share_of_bulk"),
    [("", True, 1.0), ("all", True, 1.0), ("high", True, 0.0), ("none", False, 0.0), ("sample:4", True, 0.25)],
)
def test_tracking_policies(raw: str, otp: bool, share_of_bulk: float) -> None:
    policy = parse_tracking_policy(raw)
    assert policy.tracks("otp-1", "high") is otp
    tracked = sum(policy.tracks(f"r-{n}", "normal") for n in range(4000))
    assert abs(tracked / 4000 - share_of_bulk) < 0.03
    assert load_settings({**BASE, "TRACKING_POLICY": raw}).tracking == policy


@pytest.mark.parametrize("raw", ["some", "sample:0", "sample:x", "sample"])
def test_a_bad_tracking_policy_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="TRACKING_POLICY"):
        parse_tracking_policy(raw)
