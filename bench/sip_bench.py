"""Outbound calls through the SIP trunk (issue 6) against sipp as the carrier. Run by hand from
the repository root (needs sipp: apt-get install sip-tester):

    .venv/bin/python -m bench.sip_bench [--rate 100] [--seconds 20] [--hold 1] [--concurrent 1000]
        [--profile]

Calls go through the API and the call service, as an app's would: ``POST voip/calls`` with
``type: "pstn"`` (relay offer, trunk INVITE, sipp's 200, ACK), after ``--hold`` seconds one
``GET`` (the call must be ``hookoff``), then ``DELETE`` (BYE, sipp's 200, relay delete). sipp
runs ``bench/sipp_uas.xml``: it answers at once and accepts our BYE. No media.

Prints one JSON line per figure, each with the reference measured in the same run:

* ``pstn_cps``: calls started per second, open loop at ``--rate`` for ``--seconds``, and how
  many failed (sipp's count and ours). Reference: sipp (``bench/sipp_uac.xml``) calling another
  sipp UAS at the same rate, hold and number of calls.
* ``pstn_concurrent``: ``--concurrent`` calls established at ``--rate`` and held together;
  established calls counted by lwork (every status ``hookoff``) and by sipp (peak current
  calls). Reference: sipp calling sipp with the same count and hold.

Placement: the server (one uvicorn worker) on core 0, its relay child process on core 1, sipp
and this script (asyncio, raw keep-alive sockets) on core 1. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _calls_sipp as sipp
from bench._calls_common import (
    CALLS,
    Pool,
    base_overrides,
    caller_phone,
    context,
    cpu_seconds,
    populate,
    rss_mib,
    server,
    start_body,
    write_settings,
)
from bench._calls_profile import find_pyspy, record, summarise
from bench._load import percentile
from bench.http_bench import can_pin, free_port, pinned, run_async
from lwork.settings import Settings

CALLERS = 50
CPS_TARGET = 100.0
CONCURRENT_TARGET = 1000


def emit(figure: dict[str, Any]) -> None:
    print(json.dumps({"bench": "sip", **figure}), flush=True)


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def trunk_overrides(tmp: Path, carrier_port: int, concurrent: int) -> dict[str, Any]:
    overrides = base_overrides(tmp)
    overrides["sip"] = {
        "enabled": True, "proxy_port": carrier_port, "listen_port": 0, "options_interval_s": 0,
        "trusted_sources": ["127.0.0.1"], "number_rules": [["00", "+"], ["0", "+44"]],
        "default_country_code": "44", "max_concurrent_calls": concurrent + 500,
        "calls_per_second": 5000.0,
    }  # fmt: skip
    # Concurrent calls take this many relay port pairs at once (two legs each).
    overrides["media"] = {**overrides["media"], "port_min": 20000, "port_max": 40000}
    return overrides


class Outcomes:
    def __init__(self) -> None:
        self.start_ms: list[float] = []
        self.started_at: list[float] = []
        self.answered_at: list[float] = []
        self.statuses: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.sids: list[str] = []

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1

    def seen(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def drive(
    port: int, count: int, rate: float, hold: float, hang_up: bool = True
) -> tuple[Outcomes, float]:
    """``count`` phone calls started open-loop at ``rate``; each held ``hold`` seconds, its
    status read, then (if ``hang_up``) ended. Returns when all are done."""
    pool = Pool(port, 48)
    out = Outcomes()

    async def one(i: int) -> None:
        caller = caller_phone(i % CALLERS)
        callee = f"020794{i % 100000:05d}"
        sent = time.perf_counter()
        out.started_at.append(sent)
        try:
            _, started = await pool.request("POST", CALLS, start_body(caller, callee, 4000, "pstn"))
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            return out.fail(f"start:{type(exc).__name__}")
        out.answered_at.append(time.perf_counter())
        out.start_ms.append((out.answered_at[-1] - sent) * 1e3)
        if started.get("status") != "ok":
            return out.fail(f"start:{started.get('reason')}")
        sid = started["session_id"]
        out.sids.append(sid)
        await asyncio.sleep(hold)
        _, status = await pool.request("GET", f"{CALLS}?session_id={sid}")
        out.seen(status.get("peer_status", "?"))
        if hang_up:
            _, ended = await pool.request("DELETE", f"{CALLS}?session_id={sid}")
            if ended.get("status") != "ok":
                out.fail("hangup")
        return None

    began = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    pool.close()
    return out, time.perf_counter() - began


async def hang_up_all(port: int, sids: list[str]) -> dict[str, int]:
    pool = Pool(port, 32)
    seen: dict[str, int] = {}

    async def one(sid: str) -> None:
        code, ended = await pool.request("DELETE", f"{CALLS}?session_id={sid}")
        key = f"{code} {ended.get('status', '?')} {ended.get('reason', '')}".strip()
        seen[key] = seen.get(key, 0) + 1

    await asyncio.gather(*(one(s) for s in sids))
    pool.close()
    return seen


def rate_of(times: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (max(times) - min(times))


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
    out, elapsed = run_async(drive(port, count, args.rate, args.hold))
    server_cpu = (cpu_seconds(pid) - cpu_before) / elapsed
    uas_rc = sipp.finish(uas, 30)
    carrier = sipp.summary(tmp, "cps_uas")
    not_up = sum(n for status, n in out.statuses.items() if status != "hookoff")
    failed = carrier["failed"] + sum(out.failures.values()) + not_up
    achieved = rate_of(out.answered_at)
    emit(
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


def profile_cps(
    port: int, pid: int, carrier_port: int, tmp: Path, args: argparse.Namespace
) -> None:
    """A separate, shorter run at the same rate under py-spy (the sampler takes CPU of its own,
    so the measured run is not profiled)."""
    pyspy = find_pyspy()
    if pyspy is None:
        emit({"figure": "pstn_cps_profile", "error": "py-spy not found (pip install py-spy)"})
        return
    seconds = min(args.seconds, 10.0)
    count = int(args.rate * seconds)
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, "prof_uas",
                     seconds + args.hold + 60)  # fmt: skip
    time.sleep(0.5)
    profile = tmp / "cps.collapsed"
    recorder = record(pyspy, pid, seconds, profile)
    out, _ = run_async(drive(port, count, args.rate, args.hold))
    recorder.wait(60)
    sipp.finish(uas, 30)
    emit(
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
    plateau = 5.0
    hold = count / args.rate + plateau
    ref = reference(tmp, "ref_conc", count, args.rate, hold)
    uas = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(count)], tmp, "conc_uas",
                     hold + 120)  # fmt: skip
    time.sleep(0.5)
    began = time.perf_counter()
    # every call is read once ``plateau`` seconds after the last one started
    out, _ = run_async(drive(port, count, args.rate, 0.0, hang_up=False))
    established_in = time.perf_counter() - began
    time.sleep(max(0.0, plateau - 2))
    recheck, _ = run_async(statuses(port, out.sids))
    rss = rss_mib(pid)
    hung_up = run_async(hang_up_all(port, out.sids))
    uas_rc = sipp.finish(uas, 60)
    carrier = sipp.summary(tmp, "conc_uas")
    held = recheck.get("hookoff", 0)
    emit(
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


async def statuses(port: int, sids: list[str]) -> tuple[dict[str, int], float]:
    pool = Pool(port, 32)
    seen: dict[str, int] = {}
    began = time.perf_counter()

    async def one(sid: str) -> None:
        _, status = await pool.request("GET", f"{CALLS}?session_id={sid}")
        key = status.get("peer_status", "?")
        seen[key] = seen.get(key, 0) + 1

    await asyncio.gather(*(one(s) for s in sids))
    pool.close()
    return seen, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="offered calls per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the CPS run")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each CPS call lasts")
    parser.add_argument("--concurrent", type=int, default=1000, help="calls held at once")
    parser.add_argument("--only", choices=["cps", "concurrent"], help="run one part only")
    parser.add_argument("--profile", action="store_true", help="py-spy the server (extra CPS run)")
    args = parser.parse_args()
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
        }
    )
    with tempfile.TemporaryDirectory(prefix="lwork-sip-bench-") as name:
        tmp = Path(name)
        carrier_port = free_udp_port()
        overrides = trunk_overrides(tmp, carrier_port, args.concurrent)
        asyncio.run(
            populate(Settings(**overrides), [caller_phone(i) for i in range(CALLERS)], set())
        )
        port = free_port()
        with server(write_settings(tmp, overrides), port) as proc:
            if args.only != "concurrent":
                cps_figure(port, proc.pid, carrier_port, tmp, args, extra)
            if args.profile and args.only != "concurrent":
                profile_cps(port, proc.pid, carrier_port, tmp, args)
            if args.only != "cps":
                concurrent_figure(port, proc.pid, carrier_port, tmp, args, extra)


if __name__ == "__main__":
    main()
