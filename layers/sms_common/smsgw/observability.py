"""The one Logger, Tracer and Metrics of the service, and the masking rules for what they may see.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in template.yaml); the defaults keep tests and local runs quiet and consistent.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from smsgw.phone import mask as mask_phone

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sms-gateway")
# AWS calls and the provider's HTTP requests (urllib3 sits on http.client). Naming them, rather than
# patching every library X-Ray knows, keeps unrelated imports out of the cold start.
TRACED_LIBRARIES = ("botocore", "httplib")


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class Untraced(BaseProvider):
    """The provider when tracing is off. Powertools' default would import the X-Ray SDK regardless,
    and outside Lambda the SDK builds two sampling clients at import: a third of a local cold start."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


def tracing_enabled() -> bool:
    """Powertools' own rule: only inside Lambda, not under `sam local`, unless POWERTOOLS_TRACE_DISABLED."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in (
        "1",
        "y",
        "yes",
        "t",
        "true",
        "on",
    )
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL") and not disabled


# A whole Bangladesh number inside a log value: a bulk request's numbers are keyed `<request_id>:<number>`.
WHOLE_NUMBER = re.compile(r"(?<!\d)8801[3-9]\d{8}(?!\d)")


def mask_numbers(text: str) -> str:
    """Every whole number in `text` masked as mask_phone masks it (request_ids of bulk requests' numbers)."""
    return WHOLE_NUMBER.sub(lambda match: mask_phone(match.group()), text) if "8801" in text else text


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, with any whole phone number in a top-level value masked on the way out."""

    def serialize(self, log: LogRecord) -> str:
        masked = {key: mask_numbers(value) if isinstance(value, str) else value for key, value in log.items()}
        return super().serialize(masked)


logger = Logger(service=SERVICE, logger_formatter=MaskingFormatter())
tracer = (
    Tracer(service=SERVICE, patch_modules=TRACED_LIBRARIES)
    if tracing_enabled()
    else Tracer(service=SERVICE, disabled=True, provider=Untraced())
)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SmsGateway"), service=SERVICE)

__all__ = ["logger", "mask_phone", "metrics", "tracer"]
