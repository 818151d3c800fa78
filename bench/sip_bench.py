"""Outbound calls through the SIP trunk (issue 6) against sipp as the carrier. Run by hand from
the repository root (needs sipp: apt-get install sip-tester):

    .venv/bin/python -m bench.sip_bench [--rate 100] [--seconds 20] [--hold 1] [--concurrent 1000]
        [--ramp] [--profile] [--smoke]

Calls go through the API and the call service, as an app's would: ``POST voip/calls`` with
``type: "pstn"`` (relay offer, trunk INVITE, sipp's 200, ACK), after ``--hold`` seconds one
``GET`` (the call must be ``hookoff``), then ``DELETE`` (BYE, sipp's 200, relay delete). sipp
runs ``bench/sipp_uas.xml``: it answers at once and accepts our BYE. No media. The callers are
credited through the billing service first, as ``lwork boss credit`` does: calls to phone
numbers are charged, and an account without a balance may not dial one.

Prints one JSON line per figure, each with the reference measured in the same run:

* ``pstn_cps``: calls started per second, open loop at ``--rate`` for ``--seconds``, and how
  many failed (sipp's count and ours). Reference: sipp (``bench/sipp_uac.xml``) calling another
  sipp UAS at the same rate, hold and number of calls.
* ``pstn_concurrent``: ``--concurrent`` calls established at ``--rate`` and held together;
  established calls counted by lwork (every status ``hookoff``) and by sipp (peak current
  calls). Reference: sipp calling sipp with the same count and hold.
* ``webhook_under_calls`` (``--webhook``): the CPS run's call records sent by the CDR webhook
  to a BOSS failing every third request; every closed record must arrive, none twice after
  removing duplicates by ``id`` (``bench._sip_webhook``). ``--webhook --only cps --seconds 100``
  is the 10,000-call run of issue 15.
* ``pstn_ramp`` (``--ramp``): the offered rate raised step by step until calls fail or lwork
  falls behind; the highest rate carried with zero failures, the rate where failures begin and
  the rate where lwork fell behind (``bench._sip_ramp``).

Exits 1, saying why on stderr, when any call failed in ``pstn_cps`` or ``pstn_concurrent``, when
the ramp found no rate carried without failures, or when a figure is missing. ``--smoke``: a few
seconds at 20 calls/s (and a two-step ramp) on the same code path, for CI.

Placement: the server (one uvicorn worker) on core 0, its relay child process on core 1, sipp
and this script (asyncio, raw keep-alive sockets) on core 1. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _calls_sipp as sipp
from bench._calls_common import (
    caller_phone,
    context,
    cpu_seconds,
    populate,
    rss_mib,
    server,
    write_settings,
)
from bench._calls_profile import find_pyspy, record, summarise
from bench._load import percentile
from bench._sip_drive import (
    TOP_UP_COINS,
    callers_for,
    carrier_wait_s,
    drive,
    for_each,
    free_udp_port,
    rate_of,
    top_up,
    trunk_overrides,
)
from bench._sip_ramp import ramp
from bench._sip_webhook import WebhookReceiver, drain, flaky_boss, webhook_overrides
from bench._verdict import Verdict
from bench.http_bench import can_pin, free_port, pinned, run_async
from lwork.settings import Settings

CPS_TARGET = 100.0
CONCURRENT_TARGET = 1000
verdict = Verdict("sip")


def reference(tmp: Path, name: str, count: int, rate: float, hold: float) -> dict[str, Any]:
    """sipp UAC -> sipp UAS at the same rate, count and hold."""
    uas_port, uac_port = free_udp_port(), free_udp_port()
    timeout = count / rate + hold + 60
    uas = sipp.start(sipp.UAS, ["-p", str(uas_port), "-m", str(count)], tmp, f"{name}_uas",
                     timeout)  # fmt: skip
    time.sleep(0.5)
    began = time.perf_counter()
    uac = sipp.start(
        sipp.UAC,
        ["-s", "442079460000", f"127.0.0.1:{uas_port}", "-p", str(uac_port), "-r", f"{rate:g}",
         "-m", str(count), "-l", str(count), "-d", str(int(hold * 1000))],
        tmp, f"{name}_uac", timeout,
    )  # fmt: skip
    uac_rc = sipp.finish(uac, timeout + 10)
    elapsed = time.perf_counter() - began
    uas_rc = sipp.finish(uas, 20)
    uac_stats, uas_stats = sipp.summary(tmp, f"{name}_uac"), sipp.summary(tmp, f"{name}_uas")
    return {
        "calls_per_s": sipp.median_rate(tmp, f"{name}_uac", "OutgoingCall(P)"),
        "elapsed_s": round(elapsed, 2),
        "uac": uac_stats,
        "uas": uas_stats,
        "exit_codes": [uac_rc, uas_rc],
    }


def cps_figure(
    port: int, pid: int, carrier_port: int, tmp: Path, args: argparse.Namespace,
    extra: dict[str, Any],
) -> None:  # fmt: skip
    count = int(args.rate * args.seconds)
    ref = reference(tmp, "ref_cps", count, args.rate, args.hold)
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, "cps_uas",
                     args.seconds + args.hold + 60)  # fmt: skip
    time.sleep(0.5)
    cpu_before = cpu_seconds(pid)
    out, elapsed = run_async(drive(port, count, args.rate, args.hold, args.callers))
    server_cpu = (cpu_seconds(pid) - cpu_before) / elapsed
    uas_rc = sipp.finish(uas, carrier_wait_s(out.failures))
    carrier = sipp.summary(tmp, "cps_uas")
    failed = carrier["failed"] + sum(out.failures.values()) + out.not_up
    achieved = rate_of(out.answered_at)
    verdict.emit(
        {
            "figure": "pstn_cps",
            "driven": "through the API: POST voip/calls type pstn, GET after hold, DELETE",
            "offered_rate": args.rate,
            "calls": count,
            "hold_s": args.hold,
            "value": round(achieved, 1),
            "unit": "calls started/s (POST answered ok, first to last)",
            "offered_rate_measured": round(rate_of(out.started_at), 1),
            "carrier_invites_per_s_median": sipp.median_rate(tmp, "cps_uas", "IncomingCall(P)"),
            "completed_per_s": round(count / (elapsed - args.hold), 1),
            "target": CPS_TARGET,
            "failed_calls": failed,
            "met": achieved >= CPS_TARGET * 0.98 and failed == 0,
            "statuses_after_hold": out.statuses,
            "api_failures": out.failures,
            "carrier_sipp": carrier,
            "carrier_exit_code": uas_rc,
            "start_p50_ms": round(percentile(out.start_ms, 50), 1),
            "start_p99_ms": round(percentile(out.start_ms, 99), 1),
            "server_cpu_share": round(server_cpu, 2),
            "server_cpu_ms_per_call": round(server_cpu * elapsed / count * 1e3, 2),
            "reference": "sipp_uac.xml -> sipp_uas.xml, same rate, calls and hold, same run",
            "reference_value": ref["calls_per_s"],
            "reference_detail": ref,
            **extra,
        }
    )
    verdict.none_failed("pstn_cps", "calls", failed)
    verdict.require(
        out.statuses.get("hookoff", 0) == count and carrier["successful"] == count,
        "pstn_cps",
        f"{out.statuses.get('hookoff', 0)} of {count} calls established, "
        f"{carrier['successful']} completed at the carrier; failures {out.failures}",
    )
    verdict.require(ref["exit_codes"] == [0, 0], "pstn_cps", f"reference sipp failed: {ref}")
    # a smoke run is too short for sipp's per-second medians
    verdict.require(
        args.smoke or ref["calls_per_s"] is not None, "pstn_cps", f"no reference rate: {ref}"
    )


def webhook_figure(tmp: Path, boss: WebhookReceiver, calls: int) -> None:
    figure = drain(tmp / "lwork.db", boss, calls, wait_s=60 + calls / 20)
    verdict.emit(figure)
    name = "webhook_under_calls"
    verdict.require(figure["records_closed"] >= calls, name, f"{figure['records_closed']} "
                    f"records closed for {calls} calls")  # fmt: skip
    verdict.none_failed(name, "records never delivered", figure["missing"])
    verdict.none_failed(name, "records the database never closed", figure["unknown"])
    verdict.none_failed(name, "bad signatures", figure["bad_signatures"])
    verdict.require(figure["outbox_depth_after"] == 0, name, "the outbox did not drain")


def profile_cps(
    port: int, pid: int, carrier_port: int, tmp: Path, args: argparse.Namespace
) -> None:
    """A separate, shorter run at the same rate under py-spy (the sampler takes CPU of its own,
    so the measured run is not profiled)."""
    pyspy = find_pyspy()
    if pyspy is None:
        verdict.emit(
            {"figure": "pstn_cps_profile", "error": "py-spy not found (pip install py-spy)"}
        )
        return
    seconds = min(args.seconds, 10.0)
    count = int(args.rate * seconds)
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, "prof_uas",
                     seconds + args.hold + 60)  # fmt: skip
    time.sleep(0.5)
    profile = tmp / "cps.collapsed"
    recorder = record(pyspy, pid, seconds, profile)
    out, _ = run_async(drive(port, count, args.rate, args.hold, args.callers))
    recorder.wait(60)
    sipp.finish(uas, carrier_wait_s(out.failures))
    verdict.emit(
        {
            "figure": "pstn_cps_profile",
            "tool": "py-spy record --nonblocking --threads --rate 250, server process, "
            "a separate run at the same rate",
            "calls": count,
            "statuses_after_hold": out.statuses,
            **summarise(profile, top=25),
        }
    )


def concurrent_figure(
    port: int, pid: int, carrier_port: int, tmp: Path, args: argparse.Namespace,
    extra: dict[str, Any],
) -> None:  # fmt: skip
    count = args.concurrent
    hold = count / args.rate + args.plateau
    ref = reference(tmp, "ref_conc", count, args.rate, hold)
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, "conc_uas",
                     hold + 120)  # fmt: skip
    time.sleep(0.5)
    began = time.perf_counter()
    # every call is read once ``plateau`` seconds after the last one started
    out, _ = run_async(drive(port, count, args.rate, 0.0, args.callers, hang_up=False))
    established_in = time.perf_counter() - began
    time.sleep(max(0.0, args.plateau - 2))
    recheck = run_async(for_each(port, "GET", out.sids))
    rss = rss_mib(pid)
    hung_up = run_async(for_each(port, "DELETE", out.sids))
    uas_rc = sipp.finish(uas, carrier_wait_s(out.failures))
    carrier = sipp.summary(tmp, "conc_uas")
    held = recheck.get("hookoff", 0)
    verdict.emit(
        {
            "figure": "pstn_concurrent",
            "driven": "through the API: POST voip/calls type pstn at the rate, all held, "
            "then every status read and every call DELETEd",
            "offered": count,
            "rate": args.rate,
            "value": held,
            "unit": "established calls held at once (status hookoff)",
            "target": CONCURRENT_TARGET,
            "met": held >= CONCURRENT_TARGET and carrier["failed"] == 0,
            "carrier_sipp": carrier,
            "carrier_exit_code": uas_rc,
            "statuses_held": recheck,
            "api_failures": out.failures,
            "hangups": hung_up,
            "all_started_in_s": round(established_in, 2),
            "start_p99_ms": round(percentile(out.start_ms, 99), 1),
            "server_rss_mib_while_held": round(rss, 1),
            "reference": "sipp_uac.xml -> sipp_uas.xml, same count, rate and hold, same run",
            "reference_value": ref["uas"]["peak_current"],
            "reference_detail": ref,
            **extra,
        }
    )
    verdict.none_failed("pstn_concurrent", "calls", out.failures)
    verdict.none_failed("pstn_concurrent", "carrier calls", carrier["failed"])
    verdict.require(held == count, "pstn_concurrent", f"{held} of {count} held: {recheck}")
    verdict.require(hung_up == {"ok": count}, "pstn_concurrent", f"hang-ups: {hung_up}")
    verdict.require(ref["exit_codes"] == [0, 0], "pstn_concurrent", f"reference sipp failed: {ref}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="offered calls per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the CPS run")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each CPS call lasts")
    parser.add_argument("--concurrent", type=int, default=1000, help="calls held at once")
    parser.add_argument("--plateau", type=float, default=5.0, help="seconds all are held")
    parser.add_argument("--only", choices=["cps", "concurrent"], help="run one part only")
    parser.add_argument("--profile", action="store_true", help="py-spy the server (extra CPS run)")
    parser.add_argument("--ramp", action="store_true", help="also raise the rate until failures")
    parser.add_argument("--ramp-from", type=float, default=100.0, help="first rate of the ramp")
    parser.add_argument("--ramp-step", type=float, default=20.0, help="rate added each step")
    parser.add_argument("--ramp-to", type=float, default=1000.0, help="last rate tried")
    parser.add_argument("--ramp-seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="send the CPS run's records to a BOSS failing every third request",
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.webhook = True
        args.rate, args.seconds, args.hold, args.concurrent, args.plateau = 20.0, 1.0, 0.5, 20, 3.0
        args.ramp, args.ramp_from, args.ramp_step, args.ramp_to = True, 10.0, 10.0, 20.0
        args.ramp_seconds = 1.0
    return args


def main() -> None:
    args = arguments()
    if not sipp.have_sipp():
        raise SystemExit("sipp not installed: apt-get install sip-tester")
    if can_pin():
        os.sched_setaffinity(0, {1})
    extra = context(
        {
            "db": "sqlite",
            "server": "1 uvicorn worker, uvloop, httptools"
            + (", core 0" if pinned(0) else ", unpinned"),
            "relay": "built-in, child process" + (", moved to core 1" if can_pin() else ""),
            "sipp_and_client": "core 1" if can_pin() else "unpinned",
            "smoke": args.smoke,
        }
    )
    expected: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lwork-sip-bench-")))
        carrier_port = free_udp_port()
        overrides = trunk_overrides(tmp, carrier_port, args.concurrent)
        boss = stack.enter_context(flaky_boss()) if args.webhook else None
        if boss is not None:
            overrides.update(webhook_overrides(boss.url))
        peak = max(args.concurrent, args.rate * args.hold, args.ramp_to * args.hold * args.ramp)
        args.callers = callers_for(peak, Settings(**overrides))
        extra["callers"] = args.callers
        callers = [caller_phone(i) for i in range(args.callers)]
        # Online, as an app is before it pays for a call: its long poll's address (this
        # machine's) vouches for its calls (CONTRACT §3).
        asyncio.run(populate(Settings(**overrides), callers, set(callers)))
        asyncio.run(top_up(Settings(**overrides), callers, TOP_UP_COINS))
        port = free_port()
        with server(write_settings(tmp, overrides), port) as proc:
            if args.only != "concurrent":
                expected.append("pstn_cps")
                cps_figure(port, proc.pid, carrier_port, tmp, args, extra)
            if boss is not None and args.only != "concurrent":
                expected.append("webhook_under_calls")
                webhook_figure(tmp, boss, int(args.rate * args.seconds))
            if args.profile and args.only != "concurrent":
                profile_cps(port, proc.pid, carrier_port, tmp, args)
            if args.only != "cps":
                expected.append("pstn_concurrent")
                concurrent_figure(port, proc.pid, carrier_port, tmp, args, extra)
            if args.ramp:
                expected.append("pstn_ramp")
                ramp(port, proc.pid, carrier_port, tmp, args, extra, verdict)
    verdict.conclude(expected)


if __name__ == "__main__":
    main()
