"""Load shapes: how many of whom, over time. See loadtests/README.md for where the numbers come from.

- ``before``: departments and districts only, as in 2020-2022 before the communes had accounts.
- ``communes``: all 200 communes join with 3 operators each (the overload of the 2023 report).
- ``campaign``: the same people in a peak drive ("đợt thi đua cao điểm"): think times halved.
- ``soak``: the communes' load held for hours (default 2 h), to catch leaks and slow drift.
- ``capacity``: the province's mix stepped up until a target breaks; the last step that held is the knee.
- ``smoke``: a handful of users with short think times, to prove the suite runs.

Statistics are reset when the ramp ends, so the verdict speaks of the held load, not the ramp.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL = [
    "CommuneOperator",
    "DistrictOperator",
    "DepartmentOperator",
    "Official",
    "Admin",
    "OneStopSystem",
    "FeedConsumer",
]
BEFORE = ["DistrictOperator", "DepartmentOperator", "Official", "Admin"]
# People per class in the province: 200 communes x 3, 11 districts x 2, 20 departments x 2, officials.
POPULATION = {
    "CommuneOperator": 600,
    "DistrictOperator": 22,
    "DepartmentOperator": 40,
    "Official": 11,
    "Admin": 1,
    "OneStopSystem": 1,
    "FeedConsumer": 1,
}

# Think-time multipliers per shape.
PACE = {"campaign": 0.5, "smoke": 0.05}

TARGETS_FILE = Path(__file__).resolve().parent / "targets.toml"


def load_targets(path: Path = TARGETS_FILE) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@dataclass
class Plan:
    users: int
    classes: list[str]
    ramp_rate: float
    hold: float
    judge_ramp: bool = False  # the arrival is what is judged (rollout): statistics are not reset after it
    _reset_done: bool = False

    def step(self, run_time: float, runner: Any) -> tuple[int, float, list[str]] | None:
        ramp = self.users / self.ramp_rate
        if run_time < ramp:
            return self.users, self.ramp_rate, self.classes
        if not self._reset_done and runner is not None and not self.judge_ramp:
            runner.stats.reset_all()  # judge the held load, not the ramp
            self._reset_done = True
        if run_time < ramp + self.hold:
            return self.users, self.ramp_rate, self.classes
        return None


@dataclass
class CapacityPlan:
    """Step the province's mix up by ``step_users`` every ``step_seconds`` until a target breaks."""

    start: int
    step_users: int
    step_seconds: float
    max_users: int
    report_dir: str | None
    targets: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    _current: int = 0
    _step_started: float = 0.0
    spawn_rate: float = 10.0
    _settle: float = 20.0

    def step(self, run_time: float, runner: Any) -> tuple[int, float, list[str]] | None:
        if self._current == 0:
            self._current, self._step_started = self.start, run_time
        elapsed = run_time - self._step_started
        # People arrive over minutes, not all at once: each arrival is a login (argon2, ~40 ms of CPU),
        # and a step spawned in a few seconds measures a login storm instead of the held load.
        spawn_rate = self.spawn_rate
        ramp = self.step_users / spawn_rate if self.steps else self.start / spawn_rate
        if elapsed >= ramp + self._settle and not getattr(self, "_measuring", False):
            runner.stats.reset_all()  # measure each step after its ramp and a settling pause
            self._measuring = True
        if elapsed >= ramp + self._settle + self.step_seconds:
            held = self._judge(runner)
            self._measuring = False
            if not held or self._current + self.step_users > self.max_users:
                self._write()
                return None
            self._current += self.step_users
            self._step_started = run_time
        return self._current, spawn_rate, ALL

    def _judge(self, runner: Any) -> bool:
        stats = runner.stats
        total = stats.total
        limits = self.targets["capacity"]
        worst: dict[str, float] = {}
        held = total.num_requests > 0 and total.fail_ratio <= limits["max_error_ratio"]
        for entry in stats.entries.values():
            if entry.method == "PIPELINE" or entry.num_requests == 0:
                continue
            group = group_of(entry.name, self.targets)
            limit = limits.get(f"{group}_p95_ms")
            p95 = float(entry.get_response_time_percentile(0.95) or 0)
            worst[group] = max(worst.get(group, 0.0), p95)
            if limit is not None and p95 > limit:
                held = False
        self.steps.append(
            {
                "users": self._current,
                "rps": round(total.total_rps, 1),
                "fail_ratio": round(total.fail_ratio, 4),
                "p95_ms": {k: round(v) for k, v in worst.items()},
                "held": held,
            }
        )
        return bool(held)

    def _write(self) -> None:
        if self.report_dir:
            held = [s for s in self.steps if s["held"]]
            knee = held[-1] if held else None
            Path(self.report_dir, "capacity.json").write_text(json.dumps({"knee": knee, "steps": self.steps}, indent=1))


def group_of(name: str, targets: dict[str, Any]) -> str:
    """The endpoint group of a request name, by the prefixes in targets.toml."""
    for group, spec in targets["groups"].items():
        if any(name.startswith(prefix) for prefix in spec["names"]):
            return str(group)
    return "other"


def plan_for(shape: str, duration: float, report_dir: str | None) -> Plan | CapacityPlan:
    communes_total = sum(POPULATION.values())
    before_total = sum(POPULATION[c] for c in BEFORE)
    if shape == "before":
        return Plan(before_total, BEFORE, 5.0, duration)
    if shape in ("communes", "campaign", "soak"):
        scale = float(os.environ.get("LOAD_SCALE", "1"))  # e.g. 3 for a province three times as large
        return Plan(round(communes_total * scale), ALL, 10.0, duration)
    if shape == "rollout":
        # The first minutes of a campaign: every commune's operators sign in within five minutes
        # (LOAD_ROLLOUT_SECONDS), then a normal hour; the sign-ins are judged with the rest.
        users = round(communes_total * float(os.environ.get("LOAD_SCALE", "1")))
        arrival = float(os.environ.get("LOAD_ROLLOUT_SECONDS", "300"))
        return Plan(users, ALL, users / arrival, duration, judge_ramp=True)
    if shape == "capacity":
        return CapacityPlan(
            start=int(os.environ.get("LOAD_CAPACITY_START", "500")),
            step_users=int(os.environ.get("LOAD_CAPACITY_STEP", "500")),
            step_seconds=duration,
            max_users=int(os.environ.get("LOAD_CAPACITY_MAX", "6000")),
            report_dir=report_dir,
            targets=load_targets(),
        )
    if shape == "smoke":
        return Plan(8, ALL, 8.0, duration)
    raise ValueError(f"unknown shape {shape!r}: before, communes, campaign, soak, rollout, capacity or smoke")
