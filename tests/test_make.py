"""What the two commands install and what `make clean` removes, read from make's own dry run."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dry_run(*targets: str) -> str:
    done = subprocess.run(["make", "-n", "-B", *targets], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def test_make_run_installs_the_server_only_from_the_lockfile() -> None:
    steps = dry_run("install")
    assert "-c requirements.lock -e '.[server,local]'" in steps
    assert "[dev]" not in steps and "kubernetes-client" not in steps, "no development tools for `make run`"


def test_make_test_installs_the_development_tools_from_the_lockfile() -> None:
    steps = dry_run("install-dev")
    assert "-c requirements.lock -e '.[dev]'" in steps and "kubernetes-client" in steps


def test_make_clean_removes_what_the_commands_made() -> None:
    steps = dry_run("clean")
    for made in (".venv", ".data", "loadtests/reports", "loadtests/.accounts", "*.egg-info", "build"):
        assert made in steps, made
    assert (ROOT / "requirements.lock").read_text().count("==") > 50, "the lockfile pins every package"
