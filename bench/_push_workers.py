"""``push_bench --workers N``: lwork with ``http.workers`` at up to 100,000 held polls.

One process may open ~20,000 files here (``ulimit -Hn``), so the polls are held by N worker
processes on one port, and sent by several client processes, each from a loopback address of
its own (127.0.0.2, 127.0.0.3, ...: one source address has ~28,000 ephemeral ports toward one
server port). Figures, one JSON line each:

1. ``held_poll_memory``: RSS of every server process (the supervisor, its workers and their
   relay children) with all polls held, less the same with the warm-up polls held, per poll;
2. ``notify_latency``: trigger -> answer for 1,000 devices in batches of 10 (notified at once,
   as independent events are) with the rest held
   (the trigger lands on one worker, most polls on others: the wake crosses the local hub);
3. ``repolls_sustained``: every poll's hold ends and it polls again (``push.hold_s``), for
   ``hold_s + 5`` seconds with everything held: re-polls answered, errors (must be 0) and the
   server's CPU seconds per 1,000 re-polls.

The reference, measured in the same run, is the bare-event app of ``bench._push_server`` in one
process, holding as many polls as one process can (its share, at most 10,000), with the 600 s
hold of ``push_bench`` without ``--workers``: its polls stay held through its whole run, so
each latency batch finds every one held (``--hold-s`` is lwork's re-poll period only).
"""

from __future__ import annotations

import argparse
from typing import Any

from bench._push_report import (
    LATENCY_BATCH,
    LATENCY_TARGET_P99_MS,
    MEMORY_TARGET_KIB,
    WARM_UP,
    emit,
    errors_of,
    ms,
    verdict,
)


def source_addresses(count: int) -> list[str | None]:
    """127.0.0.2, 127.0.0.3, ...: one per client process (all of 127/8 is loopback on Linux)."""
    return [f"127.0.0.{2 + n}" for n in range(count)]


def report_workers(
    lwork: dict[str, Any], event: dict[str, Any], args: argparse.Namespace, latency_devices: int
) -> None:
    polls, workers = args.polls, args.workers
    storage = (
        f"PostgreSQL with database.pool_size {args.pool_size}"
        if args.database_url
        else "SQLite default"
    )
    context = {
        "server": f"lwork serve with http.workers={workers} (uvloop, httptools, "
        f"{storage} storage, local bus hub), "
        "unpinned on 2 cores shared with the clients",
        "clients": f"{args.clients} processes of raw asyncio sockets, each from its own 127.0.0.x",
        "machine": "2 cores shared with other jobs: wall-clock figures are indicative",
    }
    kib = lwork["kib_per_poll"]
    emit(
        {
            "figure": "held_poll_memory",
            "polls": polls,
            "opened": lwork["opened"],
            "held": lwork["held"],
            "value": round(kib, 2),
            "unit": "KiB of RSS of all server processes per held poll",
            "target": MEMORY_TARGET_KIB,
            "met": kib <= MEMORY_TARGET_KIB and errors_of(lwork) == 0,
            "errors": errors_of(lwork),
            "rss_base_mib": round(lwork["rss_base_kib"] / 1024, 1),
            "rss_held_mib": round(lwork["rss_held_kib"] / 1024, 1),
            "method": "(RSS of the process tree with every opened poll held - with the "
            f"{WARM_UP} warm-up polls held) / the difference in held polls",
            "ramp_s": round(lwork["ramp_s"], 1),
            "reference": "bare Starlette app, one asyncio.Event per held poll, one process",
            "reference_polls": event["held"],
            "reference_value": round(event["kib_per_poll"], 2),
            "ratio": round(kib / event["kib_per_poll"], 2),
            **context,
        }
    )
    lat, ref = lwork["latency_ms"], event["latency_ms"]
    emit(
        {
            "figure": "notify_latency",
            "held": lwork["held"],
            "devices": len(lat),
            "batch": LATENCY_BATCH,
            "p50_ms": ms(lat, 50),
            "p99_ms": ms(lat, 99),
            "max_ms": round(max(lat, default=float("nan")), 2),
            "target_p99_ms": LATENCY_TARGET_P99_MS,
            "met": ms(lat, 99) <= LATENCY_TARGET_P99_MS and len(lat) == latency_devices,
            "single_event_p50_ms": ms(lwork["single_latency_ms"], 50),
            "single_event_p99_ms": ms(lwork["single_latency_ms"], 99),
            "reference": f"bare Starlette app, one process holding {event['held']}, same trigger",
            "reference_p50_ms": ms(ref, 50),
            "reference_p99_ms": ms(ref, 99),
            "reference_devices": len(ref),
            "batches_short_of_held": lwork["batches_short_of_held"],
            "reference_batches_short_of_held": event["batches_short_of_held"],
            "errors": errors_of(lwork),
            "server_log_errors": lwork["server_log_errors"],
            **context,
        }
    )
    repoll = lwork["after_repoll"]
    # The clients' counts run from their start: the phase's own are the difference.
    repolls = repoll["repolls"] - lwork["after_hold"]["repolls"]
    emit(
        {
            "figure": "repolls_sustained",
            "held": lwork["held"],
            "hold_s": args.hold_s,
            "seconds": lwork["repoll_s"],
            "value": repolls,
            "unit": "polls ended by their hold and sent again, all devices held meanwhile",
            "per_s": round(repolls / lwork["repoll_s"], 1),
            "errors": repoll["errors"] + repoll["closed"],
            "error_samples": repoll["error_samples"],
            "server_log_errors": lwork["server_log_errors"],
            "held_after": lwork["held_after_repoll"],
            "server_cpu_s_per_1000_repolls": round(
                lwork["repoll_cpu_s"] * 1000 / max(repolls, 1), 3
            ),
            "met": repolls >= lwork["held"] and repoll["errors"] + repoll["closed"] == 0,
            "reference": "every device re-polls once per hold_s: at least one re-poll each",
            "reference_value": lwork["held"],
            **context,
        }
    )
    for name, run in (("lwork", lwork), ("reference", event)):
        arrived = len(run["latency_ms"])
        verdict.require(
            arrived == latency_devices and run["batches_not_measured"] == 0,
            "notify_latency",
            f"{name}: {arrived} of {latency_devices} events arrived, "
            f"{run['batches_not_measured']} batches not measured in the phase's time",
        )
    verdict.require(repolls > 0, "repolls_sustained", "no poll was answered at its hold's end")
    verdict.none_failed("repolls_sustained", "re-polls", repoll["errors"] + repoll["closed"])
