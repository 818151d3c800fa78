"""Call benchmarks (issues 5 and 6). Run by hand from the repository root:

    .venv/bin/python -m bench.calls_bench [--calls 1000] [--seconds 5] [--rounds 3]
        [--pairs 16] [--setup-seconds 15] [--relay process|inline] [--profile] [--smoke]

Prints one JSON line per figure, each with the reference measured in the same run:

* ``status_polls``: ``GET /lwork/mobile/voip/calls?session_id=…`` per second with ``--calls``
  answered app-to-app calls up (created through the API, one RTP packet each way so the relay
  has statistics), wrk cycling over their session ids; as a ratio to the bare Starlette endpoint
  of the same process, runs interleaved. ``--profile`` (or a missed target) adds a py-spy
  summary of the server during an extra status-poll run (``status_polls_profile``).
* ``status_polls_mostly_cached``: the same over only 100 of the calls, in the same rounds, so
  the relay is asked at most 100 times a second (a diagnosis: the status path without the
  relay query).
* ``p2p_setups``: app-to-app call set-ups per second with ``--pairs`` caller/callee pairs in a
  closed loop: start → invitation delivered to the callee's held long poll → ringing → answer →
  one RTP packet each way observed through the relay; then the caller hangs up. Reference: the
  same pairs doing the same number of HTTP round trips (5) against ``/bare``. ``--profile``
  adds a py-spy summary of the server during an extra set-up run (``p2p_setups_profile``).

Exits 1, saying why on stderr, when a request failed (wrk errors, a call not up after the
polls, a set-up that failed), a run served nothing, or a figure is missing. ``--smoke``: 20 calls,
2 pairs, one-second runs on the same code path, for CI.

Placement: the server (``bench.http_server``, one uvicorn worker, uvloop, httptools) on core 0;
its built-in relay runs as a child process (``media.relay_mode: process``) moved to core 1, or
with ``--relay inline`` in the server's own event loop; the load generators (wrk, this script)
on core 1. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._calls_common import (
    CALLS,
    base_overrides,
    callee_phone,
    caller_phone,
    context,
    populate,
    rss_mib,
    server,
    write_settings,
)
from bench._calls_profile import find_pyspy, record, summarise
from bench._calls_setups import bare_cycles, setups
from bench._calls_status import WRK_CONNECTIONS, CpuMeter, create_calls, cycling_script, sweep, wrk
from bench._load import percentile
from bench._verdict import Verdict
from bench.http_bench import WRK_SCRIPT, can_pin, free_port, pinned, run_async
from bench.http_server import BARE_PATH
from lwork.settings import Settings

STATUS_TARGET = 0.6
HOT = 100
verdict = Verdict("calls")
emit = verdict.emit


def status_figures(
    port: int, pid: int, args: argparse.Namespace, tmp: Path, extra: dict[str, Any]
) -> None:
    t0 = time.monotonic()
    sids, media = run_async(create_calls(port, args.calls))
    created_s = time.monotonic() - t0
    script = cycling_script(sids, tmp)
    path = f"{CALLS}?session_id={sids[0]}"
    wrk(port, WRK_SCRIPT, BARE_PATH, 1.0)  # warm-up
    wrk(port, script, path, 1.0)
    hot = sids[:HOT]
    hot_script = cycling_script(hot, tmp, "hot")
    bare_runs = [wrk(port, WRK_SCRIPT, BARE_PATH, args.seconds)]
    runs, ratios, hot_runs, hot_ratios = [], [], [], []
    cpu, hot_cpu = CpuMeter(pid), CpuMeter(pid)

    def between_bares(script: Path, meter: CpuMeter) -> tuple[dict[str, Any], float]:
        with meter:
            run = wrk(port, script, path, args.seconds)
        bare_runs.append(wrk(port, WRK_SCRIPT, BARE_PATH, args.seconds))
        return run, run["rps"] / ((bare_runs[-2]["rps"] + bare_runs[-1]["rps"]) / 2)

    for _ in range(args.rounds):
        run, ratio = between_bares(script, cpu)
        runs.append(run)
        ratios.append(ratio)
        run, ratio = between_bares(hot_script, hot_cpu)
        hot_runs.append(run)
        hot_ratios.append(ratio)
    after = run_async(sweep(port, sids, "GET"))
    met = statistics.median(ratios) >= STATUS_TARGET
    emit(
        {
            "figure": "status_polls",
            "path": f"GET {CALLS}?session_id=… (cycling over {len(sids)} ids)",
            "active_calls": len(sids),
            "value": round(statistics.median(r["rps"] for r in runs)),
            "unit": "requests/s",
            "reference": "bare Starlette JSON endpoint, same process, runs before and after",
            "reference_value": round(statistics.median(r["rps"] for r in bare_runs)),
            "ratio": round(statistics.median(ratios), 3),
            "target_ratio": STATUS_TARGET,
            "met": met,
            "round_ratios": [round(r, 3) for r in ratios],
            "runs_rps": [round(r["rps"]) for r in runs],
            "bare_runs_rps": [round(r["rps"]) for r in bare_runs],
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
            "bare_p50_ms": round(statistics.median(r["p50_ms"] for r in bare_runs), 2),
            "errors": sum(r["errors"] for r in runs),
            "statuses_after": after,
            "calls_created_in_s": round(created_s, 1),
            "rtp_relayed_at_setup": media,
            **cpu.shares(),
            "server_rss_mib": round(rss_mib(pid), 1),
            "seconds_per_run": args.seconds,
            "load": f"wrk -t1 -c{WRK_CONNECTIONS}, lua cycling over the session ids, core 1",
            **extra,
        }
    )
    emit(
        {
            "figure": "status_polls_mostly_cached",
            "diagnosis": "the status path with few relay queries (no target): each of these "
            "calls is read many times a second, so most polls hit the one-second stats cache",
            "path": f"GET {CALLS}?session_id=… (cycling over {len(hot)} of {len(sids)} calls)",
            "relay_queries_per_s_at_most": len(hot),
            "value": round(statistics.median(r["rps"] for r in hot_runs)),
            "unit": "requests/s",
            "reference": "bare Starlette JSON endpoint, same process, runs before and after",
            "ratio": round(statistics.median(hot_ratios), 3),
            "round_ratios": [round(r, 3) for r in hot_ratios],
            "runs_rps": [round(r["rps"]) for r in hot_runs],
            "p50_ms": round(statistics.median(r["p50_ms"] for r in hot_runs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in hot_runs), 2),
            "errors": sum(r["errors"] for r in hot_runs),
            **hot_cpu.shares(),
            **extra,
        }
    )
    for figure, measured in (("status_polls", runs), ("status_polls_mostly_cached", hot_runs)):
        verdict.none_failed(figure, "requests", sum(r["errors"] for r in measured))
        verdict.some(figure, "requests served", min(r["rps"] for r in measured))
    verdict.some("status_polls", "bare requests served", min(r["rps"] for r in bare_runs))
    verdict.require(
        after == {"p2p_hookoff": len(sids)},
        "status_polls",
        f"of {len(sids)} calls, after the polls: {after}",
    )
    pyspy = find_pyspy()
    if (args.profile or not (met or args.smoke)) and pyspy:
        out = tmp / "status.collapsed"
        recorder = record(pyspy, pid, args.seconds + 2, out)
        time.sleep(0.5)
        wrk(port, script, path, args.seconds)
        recorder.wait(60)
        emit(
            {
                "figure": "status_polls_profile",
                "tool": "py-spy record --nonblocking --threads --rate 250, server process, "
                "a separate run",
                **summarise(out, top=20),
            }
        )
    hung_up = run_async(sweep(port, sids, "DELETE"))
    verdict.require(hung_up == {"ok": len(sids)}, "status_polls", f"hang-ups: {hung_up}")


def setup_figures(port: int, pid: int, args: argparse.Namespace, extra: dict[str, Any]) -> None:
    run_async(setups(port, args.pairs, 2.0))  # warm-up
    ref_before = run_async(bare_cycles(port, args.pairs, args.setup_seconds / 2))
    cpu = CpuMeter(pid)
    with cpu:
        group, elapsed = run_async(setups(port, args.pairs, args.setup_seconds))
    ref_after = run_async(bare_cycles(port, args.pairs, args.setup_seconds / 2))
    times = [t for p in group for t in p.setups]
    failures: dict[str, int] = {}
    for p in group:
        for why, n in p.failures.items():
            failures[why] = failures.get(why, 0) + n
    ref_times = ref_before[0] + ref_after[0]
    ref_rate = len(ref_times) / (ref_before[1] + ref_after[1])
    rate = len(times) / elapsed
    emit(
        {
            "figure": "p2p_setups",
            "flow": "start -> invitation on the callee's held long poll -> ringing -> answer -> "
            "1 RTP packet each way seen through the relay; then DELETE (5 HTTP requests)",
            "pairs": args.pairs,
            "seconds": round(elapsed, 2),
            "value": round(rate, 1),
            "unit": "set-ups/s",
            "setups": len(times),
            "failures": failures,
            "p50_ms": round(percentile(times, 50) * 1e3, 1),
            "p99_ms": round(percentile(times, 99) * 1e3, 1),
            "reference": "same pairs, 5 sequential GET /bare round trips per cycle, same process,"
            " runs before and after",
            "reference_value": round(ref_rate, 1),
            "reference_p50_ms": round(percentile(ref_times, 50) * 1e3, 2),
            "reference_p99_ms": round(percentile(ref_times, 99) * 1e3, 2),
            "ratio": round(rate / ref_rate, 3),
            **cpu.shares(),
            "load": "this script (asyncio, raw keep-alive sockets), core 1",
            **extra,
        }
    )
    verdict.none_failed("p2p_setups", "set-ups", failures)
    verdict.some("p2p_setups", "set-ups", len(times))
    verdict.some("p2p_setups", "reference round trips", len(ref_times))
    pyspy = find_pyspy()
    if args.profile and pyspy:
        seconds = min(args.setup_seconds, 10.0)
        profile = Path(tempfile.gettempdir()) / f"lwork-setups-{os.getpid()}.collapsed"
        recorder = record(pyspy, pid, seconds - 1, profile)
        run_async(setups(port, args.pairs, seconds))
        recorder.wait(60)
        emit(
            {
                "figure": "p2p_setups_profile",
                "tool": "py-spy record --nonblocking --threads --rate 250, server process, "
                "a separate set-up run",
                **summarise(profile, top=20),
            }
        )
        profile.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="active calls during polls")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved status-poll rounds")
    parser.add_argument("--pairs", type=int, default=16, help="concurrent caller/callee pairs")
    parser.add_argument("--setup-seconds", type=float, default=15.0, help="set-up run length")
    parser.add_argument("--profile", action="store_true", help="py-spy the status polls")
    parser.add_argument("--only", choices=["status", "setup"], help="run one part only")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    parser.add_argument(
        "--relay",
        choices=["process", "inline"],
        default="process",
        help="built-in relay as a child process (moved to core 1) or in the server's loop",
    )
    args = parser.parse_args()
    if args.smoke:
        args.calls, args.seconds, args.rounds, args.pairs, args.setup_seconds = 20, 1.0, 1, 2, 2.0
        args.profile = False
    if not shutil.which("wrk"):
        raise SystemExit("wrk not installed: apt-get install wrk")
    if can_pin():
        os.sched_setaffinity(0, {1})
    extra = context(
        {
            "db": "sqlite",
            "server": "1 uvicorn worker, uvloop, httptools, access log off"
            + (", core 0" if pinned(0) else ", unpinned"),
            "relay": "built-in, child process (media.relay_mode=process)"
            + (", moved to core 1" if can_pin() else "")
            if args.relay == "process"
            else "built-in, inline in the server's event loop (media.relay_mode=inline)",
            "smoke": args.smoke,
        }
    )
    expected = []
    n = max(args.calls, args.pairs)
    with tempfile.TemporaryDirectory(prefix="lwork-calls-bench-") as name:
        tmp = Path(name)
        overrides = base_overrides(tmp)
        overrides["media"]["relay_mode"] = args.relay
        phones = [caller_phone(i) for i in range(n)] + [callee_phone(i) for i in range(n)]
        t0 = time.monotonic()
        asyncio.run(populate(Settings(**overrides), phones, set(phones[n:])))
        extra["accounts"] = len(phones)
        extra["populate_s"] = round(time.monotonic() - t0, 1)
        port = free_port()
        with server(write_settings(tmp, overrides), port) as proc:
            if args.only != "setup":
                expected += ["status_polls", "status_polls_mostly_cached"]
                status_figures(port, proc.pid, args, tmp, extra)
            if args.only != "status":
                expected.append("p2p_setups")
                setup_figures(port, proc.pid, args, extra)
    verdict.conclude(expected)


if __name__ == "__main__":
    main()
