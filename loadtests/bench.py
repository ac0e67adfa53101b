"""``make bench``: every benchmark phase in turn, each in its own process, so that one phase that fails
(a crash, a lost connection, a service that stopped) costs only its own figures.

Each phase prints its progress and ends with ``name=value`` lines. This runner passes them through as
they come, then prints every figure again together, and for each phase that failed, its name, its exit
status and its last words. It exits non-zero when any phase failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

PHASES = ("upload", "api", "fairness", "inspect", "search", "intake", "legal", "feed")


@dataclass
class Outcome:
    phase: str
    status: int = 0
    seconds: float = 0.0
    figures: list[str] = field(default_factory=list)
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=6))


def run_phase(phase: str, extra: list[str]) -> Outcome:
    outcome = Outcome(phase)
    print(f"== {phase} ==", flush=True)
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", f"loadtests.bench_{phase}", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            text = line.rstrip("\n")
            outcome.last_lines.append(text)
            name, eq, value = text.partition("=")
            if eq and name.isidentifier() and value and " " not in value:
                outcome.figures.append(text)
        outcome.status = proc.wait()
    outcome.seconds = time.monotonic() - started
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=PHASES, help="run only this phase (repeatable)")
    parser.add_argument("--scale", type=int, help="dossiers for the search phase (its own default otherwise)")
    args = parser.parse_args()
    outcomes = []
    for phase in args.only or PHASES:
        extra = ["--scale", str(args.scale)] if phase in ("search", "intake") and args.scale else []
        outcomes.append(run_phase(phase, extra))
    print("\n== figures ==")
    for outcome in outcomes:
        for figure in outcome.figures:
            print(figure)
    failed = [o for o in outcomes if o.status != 0]
    for outcome in failed:
        print(
            f"phase {outcome.phase} FAILED (exit {outcome.status} after {outcome.seconds:.0f} s); its last words:",
            file=sys.stderr,
        )
        for line in outcome.last_lines:
            print(f"    {line}", file=sys.stderr)
    if not failed:
        print(f"all {len(outcomes)} phases measured")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
