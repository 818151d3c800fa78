"""The figures of ``bench.push_bench``: one JSON line each, lwork next to its reference."""

from __future__ import annotations

from typing import Any

from bench._load import percentile
from bench._verdict import Verdict

MEMORY_TARGET_KIB = 24.0
LATENCY_TARGET_P99_MS = 20.0

# The shape of a run (push_bench drives it, the figures describe it).
WARM_UP = 200
LATENCY_DEVICES = 1000
SMOKE_LATENCY_DEVICES = 100
LATENCY_BATCH = 10
SINGLE_DEVICES = 200
THROUGHPUT_WORKERS = 4
THROUGHPUT_BATCH = 10


def errors_of(run: dict[str, Any]) -> int:
    check = run.get("after_all", run["after_hold"])
    count: int = check["errors"] + check["closed"]
    return count


verdict = Verdict("push")
emit = verdict.emit


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q), 2)


def report(runs: dict[str, dict[str, Any]], polls: int, clients: int, latency_devices: int) -> None:
    lwork, sleep, event = runs["lwork"], runs["bare-sleep"], runs["bare-event"]
    context = {
        "server": "uvicorn 1 worker, uvloop, httptools, pinned to core 0; SQLite default storage",
        "clients": f"{clients} processes of raw asyncio sockets, pinned to core 1",
    }
    kib = lwork["kib_per_poll"]
    emit(
        {
            "figure": "held_poll_memory",
            "polls": polls,
            "held": lwork["held"],
            "value": round(kib, 2),
            "unit": "KiB of server-process RSS per held poll",
            "target": MEMORY_TARGET_KIB,
            "met": kib <= MEMORY_TARGET_KIB and errors_of(lwork) == 0 and lwork["held"] == polls,
            "errors": errors_of(lwork),
            "reference": "bare Starlette app, await asyncio.sleep(hold), same server config",
            "reference_value": round(sleep["kib_per_poll"], 2),
            "reference_held": sleep["held"],
            "ratio": round(kib / sleep["kib_per_poll"], 2),
            "bare_event_kib_per_poll": round(event["kib_per_poll"], 2),
            "rss_base_mib": round(lwork["rss_base_kib"] / 1024, 1),
            "rss_held_mib": round(lwork["rss_held_kib"] / 1024, 1),
            "reference_rss_base_mib": round(sleep["rss_base_kib"] / 1024, 1),
            "reference_rss_held_mib": round(sleep["rss_held_kib"] / 1024, 1),
            "method": f"(RSS with {polls} held - RSS with {WARM_UP} warm-up polls held) "
            f"/ {polls - WARM_UP}",
            "ramp_s": round(lwork["ramp_s"], 1),
            "reference_ramp_s": round(sleep["ramp_s"], 1),
            "ramp_gc": lwork["ramp_gc"],
            "reference_ramp_gc": sleep["ramp_gc"],
            "server_log_errors": lwork["server_log_errors"],
            **context,
        }
    )
    lat, ref = lwork["latency_ms"], event["latency_ms"]
    emit(
        {
            "figure": "notify_latency",
            "held": polls,
            "devices": len(lat),
            "batch": LATENCY_BATCH,
            "p50_ms": ms(lat, 50),
            "p99_ms": ms(lat, 99),
            "max_ms": round(max(lat, default=float("nan")), 2),
            "target_p99_ms": LATENCY_TARGET_P99_MS,
            "met": ms(lat, 99) <= LATENCY_TARGET_P99_MS and len(lat) == latency_devices,
            "batches_short_of_held": lwork["batches_short_of_held"],
            "reference": "bare Starlette app, one asyncio.Event per held poll, same trigger",
            "reference_p50_ms": ms(ref, 50),
            "reference_p99_ms": ms(ref, 99),
            "reference_devices": len(ref),
            "single_event_p50_ms": ms(lwork["single_latency_ms"], 50),
            "single_event_p99_ms": ms(lwork["single_latency_ms"], 99),
            "single_event_devices": len(lwork["single_latency_ms"]),
            "reference_single_event_p50_ms": ms(event["single_latency_ms"], 50),
            "reference_single_event_p99_ms": ms(event["single_latency_ms"], 99),
            "errors": errors_of(lwork),
            "gc": lwork["latency_gc"],
            "reference_gc": event["latency_gc"],
            "measured": "client monotonic clock: just before the trigger request is written "
            "-> the answer carrying the event is parsed, same process",
            **context,
        }
    )
    rate = lwork["delivered"] / lwork["elapsed"]
    ref_rate = event["delivered"] / event["elapsed"]
    emit(
        {
            "figure": "events_per_s",
            "held": polls,
            "seconds": round(lwork["elapsed"], 2),
            "value": round(rate),
            "unit": "events delivered per second (trigger -> answer received, then re-poll)",
            "delivered": lwork["delivered"],
            "reference": "bare Starlette app, one asyncio.Event per held poll, same load",
            "reference_value": round(ref_rate),
            "ratio": round(rate / ref_rate, 3),
            "server_cpu_ms_per_event": round(
                lwork["throughput_cpu_s"] * 1e3 / lwork["delivered"], 3
            ),
            "reference_cpu_ms_per_event": round(
                event["throughput_cpu_s"] * 1e3 / event["delivered"], 3
            ),
            "p50_ms": ms(lwork["load_latency_ms"], 50),
            "p99_ms": ms(lwork["load_latency_ms"], 99),
            "reference_p50_ms": ms(event["load_latency_ms"], 50),
            "reference_p99_ms": ms(event["load_latency_ms"], 99),
            "triggers_in_flight": clients * THROUGHPUT_WORKERS,
            "batch": THROUGHPUT_BATCH,
            "errors": errors_of(lwork),
            "duplicates": lwork["after_all"]["duplicates"],
            "gc": lwork["throughput_gc"],
            "reference_gc": event["throughput_gc"],
            "held_after": lwork["held_after"],
            **context,
        }
    )
    for mode, run in (("lwork", lwork), ("bare-event", event)):
        verdict.require(
            len(run["latency_ms"]) == latency_devices,
            "notify_latency",
            f"{mode}: {len(run['latency_ms'])} of {latency_devices} events arrived",
        )
        verdict.some("events_per_s", f"events delivered by {mode}", run["delivered"])
