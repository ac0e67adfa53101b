"""The load suite's judgement and plots read Locust's output as it really is."""

from __future__ import annotations

import csv
from pathlib import Path

from loadtests.shapes import load_targets
from loadtests.verdict import judge, plot, read_history

STATS = ["Type", "Name", "Request Count", "Failure Count", "Requests/s", "50%", "95%", "99%"]
HISTORY = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "95%", "Total Request Count"]


def write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_a_name_seen_once_is_reported_not_judged_but_its_errors_count(tmp_path: Path) -> None:
    write(
        tmp_path / "locust_stats.csv",
        STATS,
        [
            ["GET", "GET /dossiers (list)", 200, 0, 5.0, 40, 90, 150],
            ["POST", "POST /auth/login", 1, 0, 0.1, 9000, 9000, 9000],  # one slow sign-in
            ["GET", "GET /audit", 2, 1, 0.1, 10, 10, 10],
            ["", "Aggregated", 203, 1, 5.2, 40, 100, 9000],
        ],
    )
    checks, _ = judge(tmp_path, "smoke")
    lines = [c.line for c in checks if "auth/login" in c.line]
    assert lines[0] == "(too few to judge: 1 requests) login POST /auth/login: p95 9000 ms (limit 1000)"
    assert not any("p99" in line for line in lines)
    assert all(c.ok for c in checks if "auth/login" in c.line)
    assert any(not c.ok and "GET /audit: 1 errors in 2" in c.line for c in checks), "errors are judged at any count"


def test_the_reset_at_the_end_of_the_ramp_is_no_outage(tmp_path: Path) -> None:
    rows: list[list[object]] = []
    for t in range(100, 130):
        reset = t == 115
        total = 0 if reset else (t - 100) * 10 if t < 115 else (t - 115) * 10
        rows.append([t, 50, "", "Aggregated", 0.0 if reset else 10.0, "N/A" if reset else 80, total])
        rows.append([t, 50, "GET", "GET /dossiers (list)", 0.0, "N/A" if reset else 80, total])
    write(tmp_path / "locust_stats_history.csv", HISTORY, rows)
    history = read_history(tmp_path / "locust_stats_history.csv", load_targets())
    assert history.resets == [115]
    assert 115 not in history.rps and min(history.rps.values()) == 10.0, "no false drop to zero"
    assert all(v == 80 for series in history.p95.values() for v in series.values())
    plot(tmp_path, shape="communes")
    assert (tmp_path / "latency.png").stat().st_size > 0 and (tmp_path / "throughput.png").stat().st_size > 0


def test_the_rollout_shape_brings_everyone_in_within_five_minutes_and_judges_the_arrival() -> None:
    from loadtests.shapes import POPULATION, Plan, plan_for

    class Runner:
        resets = 0

        class stats:
            @staticmethod
            def reset_all() -> None:
                Runner.resets += 1

    plan = plan_for("rollout", 3600, None)
    assert isinstance(plan, Plan)
    everyone = sum(POPULATION.values())
    assert plan.users == everyone and abs(everyone / plan.ramp_rate - 300) < 1e-6
    assert plan.step(10, Runner()) == (everyone, plan.ramp_rate, plan.classes)
    assert plan.step(400, Runner()) is not None and Runner.resets == 0, "the sign-ins are judged, not reset away"
    assert plan.step(300 + 3600 + 1, Runner()) is None
    communes = plan_for("communes", 120, None)
    assert isinstance(communes, Plan)
    communes.step(100, Runner())
    assert Runner.resets == 1, "other shapes judge the held load only"
