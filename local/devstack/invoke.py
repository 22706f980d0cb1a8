"""`make invoke FUNCTION=send_sms EVENT=events/send_sms_batch.json`: the built artifact, the way Lambda runs it.

With a container runtime, this is `sam local invoke`. Without one (this machine, many CI machines), the
artifact `sam build` produced runs under the Lambda Runtime Interface Emulator that ships inside the
aws-sam-cli package, with a virtualenv of the runtime's Python that holds only what Lambda's runtime
does (awslambdaric, boto3): the function's code from .aws-sam/build/<Function>, the layers on the path
Lambda gives /opt/python. A dependency missing from the layers fails here, as it would in Lambda.
Either way the function talks to the local stack (moto's server and the simulator), started for the
invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # nosec B404  # runs sam, pip and the emulator, argument lists only
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devstack import stack as local
from devstack.motoserver import free_port
from devstack.template import load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
RUNTIME_VENV = ROOT / ".venv-lambda"
AWSLAMBDARIC = "awslambdaric==4.2.2"
# What the Lambda runtime itself provides to a function besides the standard library: boto3 and botocore.
RUNTIME_PACKAGES = (AWSLAMBDARIC, "boto3==1.44.8")


def logical_id(function: str, template: dict[str, Any]) -> str:
    """`send_sms` -> `SendSmsFunction`: the function whose CodeUri is functions/<function>/."""
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and resource["Properties"]["CodeUri"].rstrip("/").endswith(
            f"functions/{function}"
        ):
            return str(name)
    raise SystemExit(f"no function with CodeUri functions/{function}/ in template.yaml")


def runtime_python(template: dict[str, Any]) -> Path | None:
    """The interpreter of the template's runtime (python3.13 -> a python3.13 on this machine)."""
    runtime = template["Globals"]["Function"]["Runtime"]  # e.g. python3.13
    found = shutil.which(runtime)
    candidates = [Path(found)] if found else []
    candidates += sorted(Path.home().glob(f".pyenv/versions/{runtime.removeprefix('python')}*/bin/{runtime}"))
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:  # noqa: S603  # nosec B603  # a candidate interpreter, a fixed argument list
            return candidate
    return None


def rie_binary() -> Path:
    import platform

    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    sam_site = sorted((ROOT / ".venv-sam" / "lib").glob("python3*/site-packages/samcli/local/rapid"))
    for folder in sam_site:
        binary = folder / f"aws-lambda-rie-{arch}"
        if binary.exists():
            binary.chmod(0o755)
            return binary
    raise SystemExit("the Lambda Runtime Interface Emulator was not found: run `make venv` to install aws-sam-cli")


def ensure_runtime_venv(python: Path) -> Path:
    """The runtime's Python with what Lambda's runtime holds (awslambdaric, boto3) and nothing else."""
    marker = RUNTIME_VENV / ".installed"
    wanted = " ".join((str(python), *RUNTIME_PACKAGES))
    if not marker.exists() or marker.read_text().strip() != wanted:
        shutil.rmtree(RUNTIME_VENV, ignore_errors=True)
        subprocess.run([python, "-m", "venv", RUNTIME_VENV], check=True)  # noqa: S603  # nosec B603  # our own venv, a fixed argument list
        subprocess.run([RUNTIME_VENV / "bin" / "pip", "install", "--quiet", *RUNTIME_PACKAGES], check=True)  # noqa: S603  # nosec B603  # our own venv, a fixed argument list
        marker.write_text(wanted)
    return RUNTIME_VENV / "bin" / "python"


def has_container_runtime() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0  # type: ignore[list-item]  # noqa: S603  # nosec B603  # docker info, a fixed argument list


def invoke_with_emulator(function: str, event: dict[str, Any], stack: local.LocalStack, timeout: float) -> Any:
    template = load_template()
    name = logical_id(function, template)
    code = BUILD / name
    layers = [BUILD / layer["Ref"] / "python" for layer in template["Globals"]["Function"]["Layers"]]
    if not (code / "app.py").exists() or not all(layer.exists() for layer in layers):
        raise SystemExit("no build artifact: run `make build` first")
    python = runtime_python(template)
    if python is None:
        raise SystemExit(
            f"{template['Globals']['Function']['Runtime']} is not installed; it is needed to run the artifact"
        )
    interpreter = ensure_runtime_venv(python)
    port, api_port = free_port(), free_port()
    handler = template["Resources"][name]["Properties"]["Handler"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", tempfile.gettempdir()),
        **stack.environment,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105  # moto accepts any key
        "AWS_REGION": stack.region,
        "AWS_LAMBDA_FUNCTION_NAME": f"{local.STACK_NAME}-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template["Globals"]["Function"]["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(timeout)),
        "LAMBDA_TASK_ROOT": str(code),
        "PYTHONPATH": os.pathsep.join(str(layer) for layer in layers),  # where Lambda mounts them: /opt/python
        "PYTHONNOUSERSITE": "1",
    }
    process = subprocess.Popen(  # noqa: S603  # nosec B603  # the emulator binary, a fixed argument list
        [
            rie_binary(),
            "--log-level",
            "error",
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{port}",
            "--runtime-api-address",
            f"127.0.0.1:{api_port}",
            interpreter,
            "-m",
            "awslambdaric",
            handler,
        ],
        cwd=code,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
                with urllib.request.urlopen(request, timeout=timeout + 5) as response:  # noqa: S310  # nosec B310  # an http URL on loopback we built
                    return json.loads(response.read() or b"null")
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def invoke_with_sam(function: str, event_path: Path, stack: local.LocalStack) -> int:
    name = logical_id(function, load_template())
    env_file = ROOT / ".aws-sam" / "local-invoke-env.json"
    variables = {**stack.environment, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105  # moto accepts any key
    env_file.write_text(json.dumps({name: variables}))
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    command = [
        str(sam),
        "local",
        "invoke",
        name,
        "--event",
        str(event_path),
        "--env-vars",
        str(env_file),
        "--docker-network",
        "host",
    ]
    return subprocess.run(command, check=False).returncode  # noqa: S603  # nosec B603  # sam local invoke, a fixed argument list


def stamp_now(event: dict[str, Any]) -> dict[str, Any]:
    """The event as SQS would deliver it now: messages just published (their maximum age counts from here)."""
    now = str(int(time.time() * 1000))
    for record in event.get("Records", []):
        attributes = record.get("attributes")
        if isinstance(attributes, dict):
            attributes.update(
                {k: now for k in ("SentTimestamp", "ApproximateFirstReceiveTimestamp") if k in attributes}
            )
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description="Invoke a built function against the local stack")
    parser.add_argument("function", help="send_sms, poll_status or status_events")
    parser.add_argument("event", type=Path, help="an event file, e.g. events/send_sms_batch.json")
    parser.add_argument("--dialect", choices=["official", "generic"], default="official")
    parser.add_argument("--emulator", action="store_true", help="use the emulator even where Docker runs")
    parser.add_argument("--output", type=Path, help="also write the handler's response to this file")
    args = parser.parse_args(argv)
    event = stamp_now(json.loads(args.event.read_text()))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "local"
    stack = local.start(args.dialect)
    try:
        if has_container_runtime() and not args.emulator:
            stamped = ROOT / ".aws-sam" / f"local-invoke-{args.event.name}"
            stamped.write_text(json.dumps(event, ensure_ascii=False))
            return invoke_with_sam(args.function, stamped, stack)
        timeout = float(
            load_template()["Resources"][logical_id(args.function, load_template())]["Properties"].get(
                "Timeout", load_template()["Globals"]["Function"]["Timeout"]
            )
        )
        result = invoke_with_emulator(args.function, event, stack, timeout)
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if args.output:
            args.output.write_text(json.dumps(result, ensure_ascii=False))
        return 0 if not (isinstance(result, dict) and "errorType" in result) else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
