"""Provider credentials from Secrets Manager, cached through Powertools parameters.

The secret is JSON: `username`, `api_key`, `password` (generic dialect only) and `sender_id`.
After an authentication failure the caller asks once for a fresh copy (`refresh()`), so a rotated
key takes effect without a redeploy and without waiting for the cache to expire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

PLACEHOLDER = "REPLACE_ME"


class CredentialsError(RuntimeError):
    """The secret cannot be read or lacks a field. Messages name fields, never values."""


@dataclass(frozen=True)
class Credentials:
    """The MiM account from the secret; the key and password never reach a repr, a log or an exception."""

    username: str
    api_key: str = field(repr=False)
    password: str = field(default="", repr=False)
    sender_id: str = ""

    @classmethod
    def from_secret(cls, value: Any) -> Credentials:
        if not isinstance(value, dict):
            raise CredentialsError("the credentials secret must be a JSON object")
        missing = [key for key in ("username", "api_key") if not isinstance(value.get(key), str) or not value[key]]
        if missing:
            raise CredentialsError(f"the credentials secret lacks {', '.join(missing)}")
        if PLACEHOLDER in (value["username"], value["api_key"]):
            raise CredentialsError(
                "the credentials secret still holds the placeholder; put the real MiM credentials in it"
            )
        return cls(
            username=value["username"],
            api_key=value["api_key"],
            password=str(value.get("password") or ""),
            sender_id=str(value.get("sender_id") or ""),
        )


class CredentialSource:
    def __init__(self, secret_id: str, max_age: int, provider: SecretsProvider | None = None) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._provider = provider or SecretsProvider()

    def _fetch(self, force: bool) -> Credentials:
        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age, transform="json", force_fetch=force)
        except Exception as exc:  # GetParameterError, TransformParameterError, botocore errors
            # The exception text may quote the secret's content on a transform error: keep only its type.
            raise CredentialsError(f"could not read the credentials secret ({type(exc).__name__})") from None
        return Credentials.from_secret(value)

    def get(self) -> Credentials:
        return self._fetch(force=False)

    def refresh(self) -> Credentials:
        return self._fetch(force=True)
