"""How many AMR calls one relay serves within the latency target: built-in vs rtpengine.

The issue's target is 1,000 calls (100,000 pps) on one core with no loss and added p99 at most
2 ms. This climbs from `--from` calls in steps of `--step` and, for each relay, reports the
largest count that still met the target (each count measured against `direct`, endpoints
talking without a relay, in the same step). A count that misses is measured once more before
the climb stops, since one run on a shared VM can be unlucky. One JSON line per relay.

    python -m bench.relay_capacity [--from 300] [--to 1000] [--step 100] [--seconds 3]
                                   [--interpreted] [--skip-rtpengine] [--smoke]

Missing the target at some count is the climb's result, not a failure. Exits 1, saying why on
stderr, when a step relayed no packets at all (a broken relay or set-up) or a relay's figure is
missing. ``--smoke``: 10 calls for one second, on the same code path, for CI.
"""

from __future__ import annotations

import argparse
import os
import shutil

from bench._push_server import raise_fd_limit
from bench._verdict import Verdict
from bench.relay_bench import (
    _REALTIME,
    _WARMUP,
    PPS_PER_DIRECTION,
    SMOKE_WARMUP_S,
    TARGET_ADDED_P99_MS,
    Result,
    _figure,
    run_scenario,
)


def _within(line: dict[str, object]) -> bool:
    added = line["added_p99_ms"]
    return line["loss"] == 0.0 and isinstance(added, float) and added <= TARGET_ADDED_P99_MS


def climb(kind: str, args: argparse.Namespace) -> dict[str, object]:
    best, steps = 0, []
    for streams in range(args.start, args.to + 1, args.step):
        line: dict[str, object] = {}
        for _attempt in range(2):
            direct: Result = run_scenario("direct", streams, args, flood=False)
            result = run_scenario(kind, streams, args, flood=False)
            line = _figure(kind, streams, result, direct, "paced", args)
            if _within(line):
                break
        keys = (
            "streams",
            "loss",
            "added_p99_ms",
            "windows_within_target",
            "relay_cpu_us_per_packet",
            "relay_cpu_cores",
            "generator_skipped",
            "relayed_pps",
        )
        steps.append({k: line[k] for k in keys})
        if not _within(line):
            break
        best = streams
    return {
        "figure": "relay_capacity",
        "relay": kind.replace("builtinx", "builtin, workers="),
        "streams_within_target": best,
        "pps_within_target": best * 2 * args.pps,
        "target": {"loss": 0, "added_p99_ms": TARGET_ADDED_P99_MS, "streams": 1000},
        "steps": steps,
        "realtime_priority": args.realtime,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="start", type=int, default=300)
    parser.add_argument("--to", type=int, default=1000)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--skip-rtpengine", action="store_true")
    parser.add_argument(
        "--interpreted", action="store_true", help="also climb with the relay run from source"
    )
    parser.add_argument("--realtime", type=int, default=0, metavar="PRIORITY")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.start, args.to, args.step, args.seconds = 10, 10, 10, 1.0
        _WARMUP[0] = SMOKE_WARMUP_S
    raise_fd_limit()
    verdict = Verdict("relay_capacity")
    args.generators, args.pps = 1, PPS_PER_DIRECTION
    _REALTIME[0] = args.realtime
    relays = ["builtin"]
    if args.interpreted:
        relays.append("builtin-interpreted")
    if not args.skip_rtpengine and shutil.which("rtpengine"):
        relays.append("rtpengine")
    for kind in relays:
        figure = climb(kind, args)
        verdict.emit(figure)
        for step in figure["steps"]:  # type: ignore[attr-defined]
            verdict.some(f"relay_capacity {kind} x{step['streams']}", "packets relayed",
                         step["relayed_pps"])  # fmt: skip
    verdict.conclude(["relay_capacity"])


if __name__ == "__main__":
    main()
