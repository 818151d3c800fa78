"""``bench.sip_bench --ramp``: the offered call rate raised step by step against the sipp
carrier until lwork no longer carries it.

Each step starts ``rate x --ramp-seconds`` calls open-loop (each held ``--hold`` seconds, its
status read, then hung up), with a fresh sipp UAS as the carrier. A step holds when no call
failed (refused or timed out at the API, not established after the hold, failed at the
carrier) and lwork kept up: the calls were started (``POST`` answered ok) at no less than
KEPT_UP of the rate, or the last one at most MAX_END_LAG_S after it was due (a handful of calls
give no steady rate). Beyond that rate the requests queue: nothing fails in a few seconds, but
each call waits longer to start the longer the rate is offered, so the rate is not carried.
A step that does not hold is run once more before the climb stops (one run on a shared machine
can be unlucky); the climb also stops when this script could not offer the rate (its own limit,
not lwork's). The figure: the highest rate that held, the rate where calls began to fail, and
the rate where lwork fell behind.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _calls_sipp as sipp
from bench._calls_common import cpu_seconds
from bench._load import percentile
from bench._sip_drive import carrier_wait_s, drive, rate_of
from bench._verdict import Verdict
from bench.http_bench import run_async

OFFERED_SHORTFALL = 0.95
"""A step whose calls were offered at less than this share of the rate did not test it."""
KEPT_UP = 0.95
"""lwork kept up with a step when it started its calls at least at this share of the rate..."""
MAX_END_LAG_S = 0.25
"""... or answered the last call's start at most this long after the call was due."""
SETTLE_S = 2.0
"""Pause between steps: the last calls' BYEs and relay deletes are over before the next (0.5 s
in ``--smoke``, whose steps have a handful of calls)."""


@dataclass(frozen=True)
class Step:
    rate: float
    calls: int
    failed: int
    offered_measured: float
    started_ok_per_s: float
    end_lag_s: float
    detail: dict[str, Any]

    @property
    def offered(self) -> bool:
        return self.offered_measured >= self.rate * OFFERED_SHORTFALL

    @property
    def kept_up(self) -> bool:
        return self.started_ok_per_s >= self.rate * KEPT_UP or self.end_lag_s <= MAX_END_LAG_S

    @property
    def held(self) -> bool:
        return self.failed == 0 and self.offered and self.kept_up


def outcome(steps: list[Step]) -> dict[str, Any]:
    """The ramp's figure from its steps (the last attempt of each rate counts)."""
    last: dict[float, Step] = {}
    for step in steps:
        last[step.rate] = step
    first_miss = min((s.rate for s in last.values() if not s.held), default=None)
    return {
        "value": max(
            (
                s.rate
                for s in last.values()
                if s.held and (first_miss is None or s.rate < first_miss)
            ),
            default=None,
        ),
        "failures_begin_at": min((s.rate for s in last.values() if s.failed), default=None),
        "fell_behind_at": min(
            (s.rate for s in last.values() if s.offered and not s.failed and not s.kept_up),
            default=None,
        ),
        "driver_fell_behind_at": min(
            (s.rate for s in last.values() if not s.offered), default=None
        ),
    }


def run_step(
    port: int, pid: int, carrier_port: int, tmp: Path, rate: float, args: argparse.Namespace
) -> Step:
    count = max(2, int(rate * args.ramp_seconds))
    name = f"ramp_{rate:g}"
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, name,
                     args.ramp_seconds + args.hold + 60)  # fmt: skip
    time.sleep(0.5)
    cpu_before = cpu_seconds(pid)
    out, elapsed = run_async(drive(port, count, rate, args.hold, args.callers))
    due = min(out.started_at, default=0.0) + (count - 1) / rate
    server_cpu = (cpu_seconds(pid) - cpu_before) / elapsed
    uas_rc = sipp.finish(uas, carrier_wait_s(out.failures))
    carrier = sipp.summary(tmp, name)
    failed = carrier["failed"] + sum(out.failures.values()) + out.not_up
    if not out.failures and carrier["successful"] < count:
        failed += count - carrier["successful"]  # never completed at the carrier
    detail = {
        "rate": rate,
        "calls": count,
        "failed": failed,
        "offered_measured": round(rate_of(out.started_at), 1),
        "started_ok_per_s": round(rate_of(out.answered_at), 1),
        # when the last call was started ok, after the open loop had it due
        "end_lag_s": round(max(out.answered_at) - due, 3) if out.answered_at else None,
        "api_failures": out.failures,
        "statuses_after_hold": out.statuses,
        "carrier": carrier,
        "carrier_exit_code": uas_rc,
        "start_p50_ms": round(percentile(out.start_ms, 50), 1),
        "start_p99_ms": round(percentile(out.start_ms, 99), 1),
        "server_cpu_share": round(server_cpu, 2),
    }
    return Step(rate, count, failed, detail["offered_measured"], detail["started_ok_per_s"],
                detail["end_lag_s"] if out.answered_at else float("inf"), detail)  # fmt: skip


def ramp(
    port: int, pid: int, carrier_port: int, tmp: Path, args: argparse.Namespace,
    extra: dict[str, Any], verdict: Verdict,
) -> None:  # fmt: skip
    steps: list[Step] = []
    rate = args.ramp_from
    while rate <= args.ramp_to:
        step = run_step(port, pid, carrier_port, tmp, rate, args)
        steps.append(step)
        time.sleep(0.5 if args.smoke else SETTLE_S)
        if step.offered and not step.held:
            step = run_step(port, pid, carrier_port, tmp, rate, args)
            steps.append(step)
            time.sleep(0.5 if args.smoke else SETTLE_S)
        if not step.held:
            break
        rate += args.ramp_step
    found = outcome(steps)
    verdict.emit(
        {
            "figure": "pstn_ramp",
            "driven": "through the API: POST voip/calls type pstn, GET after hold, DELETE; "
            "open loop at each rate, a fresh sipp UAS per step",
            **found,
            "unit": "calls/s offered and carried with zero failed calls",
            "held_means": f"no failed call, calls started ok at >= {KEPT_UP:.0%} of the rate",
            "hold_s": args.hold,
            "seconds_per_step": args.ramp_seconds,
            "step_rate": args.ramp_step,
            "tried_up_to": args.ramp_to,
            "steps": [s.detail for s in steps],
            **extra,
        }
    )
    verdict.require(
        found["value"] is not None,
        "pstn_ramp",
        f"no rate carried without failures from {args.ramp_from:g} calls/s: {steps[0].detail}",
    )
