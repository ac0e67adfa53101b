"""Turning Locust's CSV output into verdicts against targets.toml, a summary and plots."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.shapes import group_of, load_targets

_SIZE = re.compile(r"\(([\d.]+) MB\)")


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    name: str
    count: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float

    @property
    def error_ratio(self) -> float:
        return self.failures / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    line: str


def _ms(value: str) -> float:
    return 0.0 if value in ("", "N/A") else float(value)


def read_stats(path: Path) -> tuple[list[Row], Row | None]:
    rows, total = [], None
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            row = Row(
                kind=r["Type"],
                name=r["Name"],
                count=int(r["Request Count"]),
                failures=int(r["Failure Count"]),
                rps=float(r["Requests/s"]),
                p50=_ms(r["50%"]),
                p95=_ms(r["95%"]),
                p99=_ms(r["99%"]),
            )
            if r["Name"] == "Aggregated":
                total = row
            else:
                rows.append(row)
    return rows, total


def judge(report_dir: Path, shape: str, targets: dict[str, Any] | None = None) -> tuple[list[Check], dict[str, Any]]:
    targets = targets or load_targets()
    rows, total = read_stats(report_dir / "locust_stats.csv")
    checks: list[Check] = []
    facts: dict[str, Any] = {}
    # A capacity run ends at the step that broke: its per-endpoint figures are in the table, and the
    # verdict is the knee against the goal (each step was judged against the capacity limits).
    judged = rows if shape != "capacity" else []
    for row in judged:
        if row.count == 0:  # made only during the ramp, which is not judged
            continue
        group = group_of(row.name, targets)
        spec = targets["groups"].get(group)
        if spec is None:
            checks.append(Check(True, f"(no target) {row.kind} {row.name}: p95 {row.p95:.0f} ms"))
            continue
        scale = 1.0
        size = _SIZE.search(row.name)
        if size and spec.get("reference_mb"):
            scale = max(1.0, float(size.group(1)) / float(spec["reference_mb"]))
        p95_limit, p99_limit = spec["p95_ms"] * scale, spec["p99_ms"] * scale
        if row.count < targets.get("min_requests", 10):
            checks.append(
                Check(
                    True,
                    f"(too few to judge: {row.count} requests) {group} {row.name}: p95 {row.p95:.0f} ms "
                    f"(limit {p95_limit:.0f})",
                )
            )
        else:
            checks.append(
                _check(row.p95 <= p95_limit, f"{group} {row.name}: p95 {row.p95:.0f} ms (limit {p95_limit:.0f})")
            )
            checks.append(
                _check(row.p99 <= p99_limit, f"{group} {row.name}: p99 {row.p99:.0f} ms (limit {p99_limit:.0f})")
            )
        checks.append(
            _check(
                row.error_ratio <= spec["max_error_ratio"],
                f"{group} {row.name}: {row.failures} errors in {row.count} ({row.error_ratio:.2%}, "
                f"limit {spec['max_error_ratio']:.2%})",
            )
        )
    shape_targets = targets["shapes"].get(shape, {})
    if total is not None and total.rps > 0:
        held_seconds = total.count / total.rps
        uploaded_mb = sum(
            row.count * float(m.group(1)) for row in rows if (m := _SIZE.search(row.name)) and row.failures < row.count
        )
        facts.update(
            held_seconds=round(held_seconds),
            requests=total.count,
            rps=round(total.rps, 1),
            upload_mb_s=round(uploaded_mb / held_seconds, 2),
        )
        if "min_rps" in shape_targets:
            checks.append(
                _check(
                    total.rps >= shape_targets["min_rps"],
                    f"throughput: {total.rps:.1f} requests/s (at least {shape_targets['min_rps']})",
                )
            )
        if "min_upload_mb_s" in shape_targets:
            mb_s = uploaded_mb / held_seconds
            checks.append(
                _check(
                    mb_s >= shape_targets["min_upload_mb_s"],
                    f"throughput: {mb_s:.2f} MB/s uploaded (at least {shape_targets['min_upload_mb_s']})",
                )
            )
    else:
        checks.append(Check(False, "FAIL no request was made"))
    capacity = report_dir / "capacity.json"
    if shape == "capacity" and capacity.exists():
        data = json.loads(capacity.read_text())
        knee = data.get("knee")
        goal = targets["capacity"]["goal_users"]
        users = knee["users"] if knee else 0
        facts["capacity_knee_users"] = users
        facts["capacity_knee_rps"] = knee["rps"] if knee else 0
        facts["capacity_steps"] = data["steps"]
        checks.append(_check(users >= goal, f"capacity: knee at {users} users (goal {goal})"))
    return checks, facts


def _check(ok: bool, text: str) -> Check:
    return Check(ok, f"{'PASS' if ok else 'FAIL'} {text}")


def write_summary(report_dir: Path, shape: str, host: str, checks: list[Check], facts: dict[str, Any]) -> bool:
    passed = all(c.ok for c in checks)
    rows, total = read_stats(report_dir / "locust_stats.csv")
    lines = [
        f"# Load run: {shape}",
        "",
        f"- host: {host}",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in facts.items() if k != "capacity_steps"),
        "",
        "| type | name | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.kind} | {r.name} | {r.count} | {r.failures} | {r.rps:.2f} | {r.p50:.0f} | {r.p95:.0f} "
            f"| {r.p99:.0f} |"
            for r in [*rows, *([total] if total else [])]
        ),
        "",
    ]
    if facts.get("capacity_steps"):
        lines += ["| users | req/s | errors | p95 by group (ms) | held |", "|---:|---:|---:|---|---|"]
        lines += [
            f"| {s['users']} | {s['rps']} | {s['fail_ratio']:.2%} | {s['p95_ms']} | {'yes' if s['held'] else 'no'} |"
            for s in facts["capacity_steps"]
        ]
        lines.append("")
    lines += ["## Verdicts", "", *(c.line for c in checks), "", f"Verdict: {'PASS' if passed else 'FAIL'}", ""]
    (report_dir / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return passed


@dataclass
class History:
    p95: dict[str, dict[int, float]]  # per group, per second: the worst p95 of its requests
    users: dict[int, int]
    rps: dict[int, float]
    resets: list[int]  # when the statistics were reset (the end of the ramp)

    def __iter__(self) -> Any:
        return iter((self.p95, self.users, self.rps, self.resets))


def read_history(history: Path, targets: dict[str, Any]) -> History:
    """Locust's history, without the empty samples of a statistics reset (which are no outage)."""
    p95: dict[str, dict[int, float]] = {}
    users: dict[int, int] = {}
    rps: dict[int, float] = {}
    resets: list[int] = []
    last_total = 0
    with history.open(newline="") as fh:
        for r in csv.DictReader(fh):
            stamp = int(r["Timestamp"])
            count = int(r.get("Total Request Count") or 0)
            if r["Name"] == "Aggregated":
                if count < last_total:
                    resets.append(stamp)
                last_total = count
                if count == 0:  # nothing counted yet, or just reset: no sample, not a zero
                    continue
                users[stamp] = int(r["User Count"])
                rps[stamp] = float(r["Requests/s"])
                continue
            if count == 0 or r["95%"] in ("", "N/A"):
                continue
            group = group_of(r["Name"], targets)
            series = p95.setdefault(group, {})
            series[stamp] = max(series.get(stamp, 0.0), _ms(r["95%"]))
    return History(p95, users, rps, resets)


def plot(report_dir: Path, targets: dict[str, Any] | None = None, shape: str | None = None) -> None:
    """p95 per endpoint group with each group's limit as a dashed line, and requests per second with
    the shape's minimum and users over time (PNG), from Locust's history. The statistics are reset when
    the ramp ends: the instant of the reset is marked, and its empty samples are left out rather than
    drawn as an outage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = targets or load_targets()
    history = report_dir / "locust_stats_history.csv"
    if not history.exists():
        return
    p95, users, rps, resets = read_history(history, targets)
    if not users:
        return
    start = min(users)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, (group, series) in enumerate(sorted(p95.items())):
        colour = colours[i % len(colours)]
        stamps = sorted(series)
        ax.plot([t - start for t in stamps], [series[t] / 1000 for t in stamps], label=group, color=colour)
        limit = targets["groups"].get(group, {}).get("p95_ms")
        if limit:
            ax.axhline(limit / 1000, color=colour, linestyle="--", linewidth=0.8)
    for t in resets:
        ax.axvline(t - start, color="black", linestyle=":", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("seconds" + (" (dotted: statistics reset at the end of the ramp)" if resets else ""))
    ax.set_ylabel("p95, seconds (log)")
    ax.set_title("p95 response time by endpoint group (dashed: each group's p95 limit)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(report_dir / "latency.png")
    plt.close(fig)
    stamps = sorted(users)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot([t - start for t in stamps], [rps[t] for t in stamps], label="requests/s", color="tab:green")
    minimum = targets["shapes"].get(shape or "", {}).get("min_rps")
    if minimum:
        ax.axhline(minimum, color="tab:green", linestyle="--", linewidth=0.8, label="required requests/s")
    for t in resets:
        ax.axvline(t - start, color="black", linestyle=":", linewidth=0.8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests/s")
    ax.legend(loc="upper left", fontsize="small")
    ax2 = ax.twinx()
    ax2.plot([t - start for t in stamps], [users[t] for t in stamps], color="tab:gray", linestyle="--")
    ax2.set_ylabel("users (grey dashed)")
    ax.set_title("Throughput and users")
    fig.tight_layout()
    fig.savefig(report_dir / "throughput.png")
    plt.close(fig)
