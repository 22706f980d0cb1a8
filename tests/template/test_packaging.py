"""`pip install .` gives a producer a working sms-publish: its dependencies declared, no local tooling."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_the_wheel_ships_the_package_and_its_scripts_not_the_local_tooling(tmp_path: Path) -> None:
    built = subprocess.run(  # noqa: S603 - the project's own build, offline from pip's configured index
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "--wheel-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"smsgw", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}  # no devstack
    assert "smsgw/message.schema.json" in names  # the producer checks against it
    assert "smsgw/producer.py" in names
    assert "smsgw/provider/official.py" in names
    dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        scripts = archive.read(f"{dist_info}/entry_points.txt").decode()
    requires = {
        line.split(":", 1)[1].strip().split(">")[0]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert requires == {"boto3", "jsonschema"}  # what sms-publish and sms-redrive import
    assert "sms-publish = smsgw.producer:main" in scripts
    assert "sms-redrive = smsgw.redrive:main" in scripts
    assert "sms-status = smsgw.status:main" in scripts

    # And it works where it is installed: a fresh virtualenv, its declared dependencies, nothing else.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    installed = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    script = str(venv / "bin" / "sms-publish")
    assert "--check-only" in subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    checked = subprocess.run(  # noqa: S603
        [script, "--check-only", "--phone", "01712345678", "--message", "Hello"], capture_output=True, text=True
    )
    assert (checked.returncode, checked.stdout.strip()) == (0, "valid: 1 part(s), gsm7")


def test_the_producer_imports_nothing_the_wheel_does_not_declare() -> None:
    probe = (
        "import sys, smsgw.producer, smsgw.redrive, smsgw.status; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('aws_lambda_powertools', 'devstack', "
        "'mimsms_simulator', 'moto')); print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
    assert result.stdout.strip() == ""
