"""The benchmarks' verdict (bench/_verdict.py) and sip_bench's ramp outcome (bench/_sip_ramp.py):
a run with failed calls or a missing figure exits 1 and says why; the ramp reports the highest
rate without failures and where failures begin."""

from __future__ import annotations

import json

import pytest
from bench._sip_ramp import Step, outcome
from bench._verdict import Verdict


def test_a_clean_run_prints_its_figures_and_returns(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = Verdict("sip")
    verdict.emit({"figure": "pstn_cps", "value": 100.0})
    verdict.none_failed("pstn_cps", "calls", {})
    verdict.some("pstn_cps", "calls", 2000)
    verdict.conclude(["pstn_cps"])
    out, err = capsys.readouterr()
    assert json.loads(out) == {"bench": "sip", "figure": "pstn_cps", "value": 100.0}
    assert err == ""


def test_failed_calls_exit_1_with_the_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = Verdict("sip")
    verdict.emit({"figure": "pstn_cps", "value": 20.0})
    verdict.none_failed("pstn_cps", "calls", {"start:balance_not_enough": 20})
    with pytest.raises(SystemExit) as exited:
        verdict.conclude(["pstn_cps"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "bench sip FAILED: pstn_cps: 20 calls failed" in err
    assert "balance_not_enough" in err


@pytest.mark.parametrize("count", [0, None])
def test_no_successes_fail(count: int | None) -> None:
    verdict = Verdict("calls")
    verdict.emit({"figure": "p2p_setups"})
    verdict.some("p2p_setups", "set-ups", count)
    with pytest.raises(SystemExit):
        verdict.conclude(["p2p_setups"])


def test_a_missing_figure_fails(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = Verdict("http")
    verdict.emit({"figure": "login_steady"})
    with pytest.raises(SystemExit):
        verdict.conclude(["login_steady", "login_flood"])
    assert "login_flood: figure missing" in capsys.readouterr().err


def step(
    rate: float, failed: int, offered: float | None = None, ok: float | None = None,
    lag: float = 1.0,
) -> Step:  # fmt: skip
    offered = rate if offered is None else offered
    return Step(rate, int(rate * 5), failed, offered, offered if ok is None else ok, lag, {})


def test_ramp_reports_the_last_clean_rate_and_where_failures_begin() -> None:
    # 200 failed, and failed again when repeated: the climb stops there
    steps = [step(100, 0), step(150, 0), step(200, 3), step(200, 1)]
    assert outcome(steps) == {
        "value": 150,
        "failures_begin_at": 200,
        "fell_behind_at": None,
        "driver_fell_behind_at": None,
    }


def test_ramp_counts_a_failed_step_that_passes_when_repeated() -> None:
    steps = [step(100, 0), step(150, 2), step(150, 0), step(200, 0)]
    assert outcome(steps)["value"] == 200
    assert outcome(steps)["failures_begin_at"] is None


def test_ramp_with_failures_from_the_first_rate_has_no_value() -> None:
    assert outcome([step(100, 5), step(100, 5)])["value"] is None


def test_a_rate_lwork_did_not_keep_up_with_is_not_carried() -> None:
    # no call failed at 150/s, but lwork started them at 120/s: a queue growing, not 150/s
    steps = [step(100, 0), step(150, 0, ok=120.0), step(150, 0, ok=118.0)]
    assert outcome(steps) == {
        "value": 100,
        "failures_begin_at": None,
        "fell_behind_at": 150,
        "driver_fell_behind_at": None,
    }


def test_a_short_step_whose_last_call_started_on_time_kept_up() -> None:
    # 10 calls: one late answer moves the first-to-last rate, not the backlog
    assert outcome([step(10, 0, ok=9.0, lag=0.1)])["value"] == 10
    assert outcome([step(10, 0, ok=9.0, lag=0.5), step(10, 0, ok=9.0, lag=0.5)])["value"] is None


def test_a_rate_the_driver_could_not_offer_is_not_claimed() -> None:
    steps = [step(100, 0), step(150, 0, offered=120.0)]
    assert outcome(steps)["value"] == 100
    assert outcome(steps)["driver_fell_behind_at"] == 150
