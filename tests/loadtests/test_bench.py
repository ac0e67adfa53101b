"""``make bench`` measures every phase it can: a phase that fails is named, the others still run."""

from __future__ import annotations

import pytest

from loadtests import bench


def test_a_failing_phase_is_named_with_its_last_words_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[str] = []
    real = bench.run_phase

    def phase(name: str, extra: list[str]) -> bench.Outcome:
        ran.append(name)
        if name == "fairness":  # a module that is not there: the phase's process fails at once
            return real("fairness_missing", extra)
        outcome = bench.Outcome(name, figures=[f"{name}_figure=1.00"])
        return outcome

    monkeypatch.setattr(bench, "run_phase", phase)
    monkeypatch.setattr("sys.argv", ["bench"])
    assert bench.main() == 1
    out, err = capsys.readouterr()
    assert ran == list(bench.PHASES), "every phase ran although the second failed"
    assert "upload_figure=1.00" in out and "search_figure=1.00" in out
    assert "phase fairness_missing FAILED (exit 1" in err
    assert "No module named loadtests.bench_fairness_missing" in err
