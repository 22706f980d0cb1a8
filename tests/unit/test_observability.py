"""Tracing is off outside Lambda without loading the X-Ray SDK, and on inside Lambda as Powertools sets it."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys; from smsgw.observability import tracer; "
    "print(tracer.disabled, type(tracer.provider).__name__, 'aws_xray_sdk.core' in sys.modules)"
)


def _probe(**env: str) -> str:
    switches = ("LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL", "POWERTOOLS_TRACE_DISABLED")
    clean = {k: v for k, v in os.environ.items() if k not in switches}
    command = [sys.executable, "-c", PROBE]
    result = subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, check=True)  # noqa: S603
    return result.stdout.strip()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
    ],
    ids=["outside-lambda", "disabled-by-env", "sam-local"],
)
def test_tracing_off_never_imports_the_xray_sdk(env: dict[str, str]) -> None:
    assert _probe(**env) == "True Untraced False"


def test_tracing_on_in_lambda_uses_the_xray_recorder() -> None:
    assert _probe(LAMBDA_TASK_ROOT="/var/task") == "False AsyncAWSXRayRecorder True"


def test_the_untraced_provider_runs_the_handler_decorator() -> None:
    from smsgw.observability import tracer

    @tracer.capture_lambda_handler
    def handler(event: dict, context: object) -> dict:
        return {"seen": event["n"]}

    assert handler({"n": 3}, None) == {"seen": 3}
