"""Benchmarks of the long-poll push channel (issue 3). Run by hand from the repository root:

    .venv/bin/python -m bench.push_bench [--polls 19000] [--clients 2] [--seconds 10] [--smoke]
    .venv/bin/python -m bench.push_bench --workers 6 --polls 100000 --clients 6 [--hold-s 60]

(the second: lwork with ``http.workers``, see ``bench._push_workers``).

Prints one JSON line per figure, each with a reference measured in the same run:

1. ``held_poll_memory``: server RSS per idle long poll with ``--polls`` held by one lwork process
   (uvicorn, uvloop, httptools, SQLite default storage, ``push.hold_s`` 600), against a bare
   Starlette app holding the same requests with ``await asyncio.sleep(hold)``;
2. ``notify_latency``: ``push.notify`` -> poll answer received, p50/p99 over 1,000 devices in
   batches with every poll held, against the bare app waking an ``asyncio.Event`` per poll;
3. ``events_per_s``: events delivered (trigger -> answer received) in a sustained, time-bounded
   run where each delivered device polls again, against the same bare app.

Each server (``bench._push_server``: lwork, bare-event, bare-sleep) runs alone, pinned to core 0,
in a fresh process on a fresh port; the clients (``bench._push_clients``, raw asyncio sockets)
run in ``--clients`` separate processes pinned to core 1. ``notify`` is triggered through a
bench-only route, ``POST /_bench/notify``, sent by the client process that holds the polls, so
trigger and arrival are read from one monotonic clock. Accounts and sessions are inserted as
rows (login would hash with Argon2id 19,000 times). Only 127.0.0.1 is used.

Diagnostics beside the figures: single-event latency (one device per trigger), garbage-collector
pauses of the server per phase (``GET /_bench/gc``), events delivered twice (at least once), the
server's logged errors, and the ramp time of the polls. ``--profile FILE`` records lwork's
deliveries with py-spy (``pip install py-spy``) as collapsed stacks. The whole run is bounded:
about 3-4 minutes with the defaults.

Exits 1, saying why on stderr, when any server's run had errors (a poll answered with an error or
closed, an event that never arrived), held fewer polls than asked, measured fewer latencies than
devices, delivered nothing, or a figure is missing; and at once, naming the phase and the polls
held, when a phase does not finish in its time (``OPEN_LIMIT_S`` ... ``LATENCY_LIMIT_S``): the run
never hangs. A poll whose connection closed is opened again before each latency batch (as the
app would), and counted as an error of the run. ``--smoke``: 600 polls, one client, 100
latency devices and a one-second delivery run on the same code path, for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._push_procs import (
    ClientProcess,
    ClientTimeout,
    all_call,
    cpu_s,
    free_port,
    get_json,
    held,
    log_errors,
    merge_checks,
    profiled,
    rss_kib,
    server,
    tree_cpu_s,
    tree_rss_kib,
    wait_held,
)
from bench._push_report import (
    LATENCY_BATCH,
    LATENCY_DEVICES,
    SINGLE_DEVICES,
    SMOKE_LATENCY_DEVICES,
    THROUGHPUT_BATCH,
    THROUGHPUT_WORKERS,
    WARM_UP,
    errors_of,
    ms,
    report,
    verdict,
)
from bench._push_server import GC_PATH, MODES, WORKERS_MODE, raise_fd_limit
from bench._push_workers import report_workers, source_addresses

HOLD_S = 600.0
RAMP_STEP = 1000
RAMP_LIMIT_S = 240.0
REFERENCE_POLLS = 10_000
# What each phase may take before the run fails, saying which phase and why (a stuck phase used
# to hang the run: the reference at 100,000 polls was killed after 10 idle minutes).
OPEN_LIMIT_S = 120.0
CHECK_LIMIT_S = 60.0
LATENCY_LIMIT_S = 240.0
"""The latency phase's clients begin no batch after this long, and answer within a minute more
(a batch waits at most ``HELD_WAIT_S`` for its polls, ``ANSWER_TIMEOUT_S`` for its events)."""
ANSWER_LIMIT_S = 60.0

Device = tuple[str, str]


class RunFailed(Exception):
    """A server's run cannot give figures (its polls are not held)."""


def device(i: int) -> Device:
    return f"139{i:08d}", f"bench-{i}"


def settings_overrides(data_dir: Path) -> dict[str, Any]:
    """Defaults (SQLite in the data directory) except the hold and the per-IP request cap."""
    return {
        "data_dir": str(data_dir),
        "push": {"hold_s": HOLD_S},
        "http": {"ip_rate_per_minute": 1_000_000_000},
    }


async def fitting_pool(url: str, workers: int) -> int:
    """The default ``database.pool_size`` (10), or less where the server allows fewer."""
    from lwork.storage.connection_budget import fitting_pool_size, server_limits
    from lwork.storage.engine import create_engine

    engine = create_engine(url, 1)
    try:
        maximum, reserved = await server_limits(engine)
    finally:
        await engine.dispose()
    return min(10, fitting_pool_size(maximum - reserved, workers))


async def populate(overrides: dict[str, Any], devices: list[Device]) -> None:
    """Migrate, then one account and one live session per device, as rows."""
    from lwork.app import build_app
    from lwork.ids import new_token, token_digest
    from lwork.settings import Settings
    from lwork.storage.tables import accounts, sessions

    app, services = build_app(Settings(**overrides))
    async with app.router.lifespan_context(app):
        now = time.time()
        async with services.engine.begin() as conn:
            await conn.execute(
                accounts.insert(),
                [
                    {
                        "uuid": uuid,
                        "uuid_raw": uuid,
                        "name": None,
                        "pwd_hash": "not-a-hash: nobody logs in",
                        "group_id": "common",
                        "info": None,
                        "created_at": now,
                    }
                    for uuid, _ in devices
                ],
            )
            await conn.execute(
                sessions.insert(),
                [
                    {
                        "token_hash": token_digest(new_token()),
                        "uuid": uuid,
                        "device_id": device_id,
                        "os_type": "android",
                        "created_at": now,
                        "last_seen": now,
                    }
                    for uuid, device_id in devices
                ],
            )


def run_server(
    mode: str,
    settings_file: Path,
    shares: list[list[Device]],
    seconds: float,
    latency_devices: int,
    profile: Path | None = None,
    workers: int = 1,
    repoll_s: float = 0.0,
    ramp_limit_s: float = RAMP_LIMIT_S,
) -> dict[str, Any]:
    """Warm up, hold every poll, then (except bare-sleep) latency and throughput. ``workers``
    > 1: lwork with ``http.workers``, its memory and CPU summed over all its processes, each
    client process on a source address of its own; ``repoll_s``: that long with every poll
    held (and re-polling as its hold ends) before the deliveries."""
    total = sum(len(share) for share in shares)
    port = free_port()
    out: dict[str, Any] = {"mode": mode}
    sources = source_addresses(len(shares)) if workers > 1 else [None] * len(shares)
    rss = tree_rss_kib if workers > 1 else rss_kib
    # With re-polls in flight a few devices are between two polls at any moment.
    expect = total - total // 100 if repoll_s else total
    clients_stuck = False
    with server(mode, settings_file, port, workers) as proc:
        clients = [ClientProcess(port, source, workers) for source in sources]
        try:
            warm = shares[0][:WARM_UP]
            clients[0].call({"cmd": "open", "devices": warm}, OPEN_LIMIT_S)
            if (warm_held := wait_held(port, len(warm), 30, workers)) < len(warm):
                # nothing below would measure anything: fail now, not after the ramp's limit
                check = clients[0].call({"cmd": "check"}, CHECK_LIMIT_S)
                raise RunFailed(
                    f"{mode} server held {warm_held} of {len(warm)} warm-up polls; "
                    f"client errors: {check['errors']} {check['error_samples']}"
                )
            if mode != "bare-sleep":  # the wake path once per device; they poll again
                batches = [[uuid for uuid, _ in warm[i : i + 10]] for i in range(0, len(warm), 10)]
                latency(clients[0], batches, len(warm))
            time.sleep(1.0)
            out["rss_base_kib"] = rss(proc.pid)
            out["base_held"] = held(port, workers)

            get_json(port, GC_PATH)
            start = time.monotonic()
            ramp_deadline = start + ramp_limit_s
            opened = len(warm)
            offsets = [len(warm)] + [0] * (len(shares) - 1)
            per_client = max(1, RAMP_STEP // len(shares))
            # --workers: no more polls are opened after the ramp's limit (the run is bounded);
            # the figures are of those opened, and say how many that was.
            while opened < total and (workers == 1 or time.monotonic() < ramp_deadline):
                commands = []
                for n, share in enumerate(shares):
                    part = share[offsets[n] : offsets[n] + per_client]
                    offsets[n] += len(part)
                    opened += len(part)
                    commands.append({"cmd": "open", "devices": part})
                all_call(clients, commands, OPEN_LIMIT_S)
                at_least = opened - opened // 100 if repoll_s else opened
                wait_held(port, at_least, max(1.0, ramp_deadline - time.monotonic()), workers)
            out["ramp_s"] = time.monotonic() - start
            out["opened"] = opened
            if opened < total:
                shares = [share[: offsets[n]] for n, share in enumerate(shares)]
                total = opened
                expect = total - total // 100 if repoll_s else total
            out["ramp_gc"] = get_json(port, GC_PATH)
            out["held"] = wait_held(
                port, expect, max(5.0, ramp_deadline - time.monotonic()), workers
            )
            time.sleep(2.0)
            out["rss_held_kib"] = rss(proc.pid)
            out["kib_per_poll"] = (out["rss_held_kib"] - out["rss_base_kib"]) / (
                out["held"] - out["base_held"]
            )
            out["after_hold"] = merge_checks(
                all_call(clients, [{"cmd": "check"}] * len(clients), CHECK_LIMIT_S)
            )
            out["server_log_errors"] = log_errors(settings_file, mode)
            if mode == "bare-sleep":
                return out
            if repoll_s:
                cpu_before = tree_cpu_s(proc.pid)
                time.sleep(repoll_s)
                out["repoll_cpu_s"] = tree_cpu_s(proc.pid) - cpu_before
                out["repoll_s"] = repoll_s
                out["after_repoll"] = merge_checks(
                    all_call(clients, [{"cmd": "check"}] * len(clients), CHECK_LIMIT_S)
                )
                out["held_after_repoll"] = held(port, workers)

            with profiled(proc.pid, profile):
                out.update(
                    deliveries(
                        port, proc.pid, clients, shares, expect, seconds, latency_devices, workers
                    )  # fmt: skip
                )
            out["held_after"] = wait_held(port, total, 30, workers)
            out["after_all"] = merge_checks(
                all_call(clients, [{"cmd": "check"}] * len(clients), CHECK_LIMIT_S)
            )
            out["server_log_errors"] = log_errors(settings_file, mode)
            return out
        except ClientTimeout as stuck:
            # Said now, with what the server holds, rather than after the remaining phases.
            clients_stuck = True
            raise RunFailed(
                f"{mode} server: {stuck}; it holds {held_now(port, workers)} polls "
                f"(of {expect} expected)"
            ) from None
        finally:
            for client in clients:
                client.close(wait_s=1.0 if clients_stuck else 30.0)


def deliveries(
    port: int,
    pid: int,
    clients: list[ClientProcess],
    shares: list[list[Device]],
    total: int,
    seconds: float,
    latency_devices: int,
    workers: int = 1,
) -> dict[str, Any]:
    """Latency of notify with every poll held, then a sustained delivery run."""
    cpu = tree_cpu_s if workers > 1 else cpu_s
    out: dict[str, Any] = {}
    get_json(port, GC_PATH)  # a fresh window
    rng = random.Random(3)
    sample = [uuid for uuid, _ in rng.sample(shares[0], latency_devices)]
    batches = [sample[i : i + LATENCY_BATCH] for i in range(0, len(sample), LATENCY_BATCH)]
    result = latency(clients[0], batches, total)
    out["latency_ms"] = [lat * 1e3 for lat in result["latencies"]]
    out["batches_short_of_held"] = result["batches_short_of_held"]
    out["batches_not_measured"] = result["batches_not_measured"]
    out["latency_gc"] = get_json(port, GC_PATH)
    # One event per trigger: the path itself, without queueing behind the rest of a batch.
    singles = [[uuid] for uuid, _ in rng.sample(shares[0], SINGLE_DEVICES)]
    result = latency(clients[0], singles, total)
    out["single_latency_ms"] = [lat * 1e3 for lat in result["latencies"]]
    out["batches_not_measured"] += result["batches_not_measured"]

    cpu_before = cpu(pid)
    command = {
        "cmd": "throughput",
        "seconds": seconds,
        "workers": THROUGHPUT_WORKERS,
        "batch": THROUGHPUT_BATCH,
    }
    # Each loop ends by itself after ``seconds`` and at most one batch more.
    limit = seconds + ANSWER_LIMIT_S + CHECK_LIMIT_S
    results = all_call(clients, [command] * len(clients), limit)
    out["throughput_cpu_s"] = cpu(pid) - cpu_before
    out["delivered"] = sum(r["delivered"] for r in results)
    out["elapsed"] = max(r["elapsed"] for r in results)
    out["load_latency_ms"] = [lat * 1e3 for r in results for lat in r["latencies"]]
    out["throughput_gc"] = get_json(port, GC_PATH)
    return out


def latency(client: ClientProcess, batches: list[list[str]], expect_held: int) -> dict[str, Any]:
    """The latency phase of one client process, bounded by ``LATENCY_LIMIT_S``."""
    command = {
        "cmd": "latency",
        "batches": batches,
        "expect_held": expect_held,
        "limit_s": LATENCY_LIMIT_S,
    }
    return client.call(command, LATENCY_LIMIT_S + ANSWER_LIMIT_S)


def held_now(port: int, workers: int) -> int | str:
    try:
        return held(port, workers)
    except OSError as exc:
        return f"unknown ({exc})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=19_000, help="long polls held at once")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="sustained-delivery run")
    parser.add_argument("--verbose", action="store_true", help="also print each server's run")
    parser.add_argument(
        "--profile", type=Path, help="py-spy record lwork's deliveries here (collapsed stacks)"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="servers to run (all three for the figures)"
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    parser.add_argument(
        "--workers", type=int, default=1,
        help="lwork with http.workers = N (each client on its own 127.0.0.x; see _push_workers)",
    )  # fmt: skip
    parser.add_argument(
        "--hold-s", type=float, default=60.0, help="push.hold_s with --workers: the re-poll period"
    )
    parser.add_argument(
        "--hold-spread", type=float, default=None,
        help="push.hold_spread with --workers (default: lwork's own); 0 holds every poll hold_s",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", default="",
        help="with --workers: database.url (an empty database) instead of SQLite",
    )  # fmt: skip
    parser.add_argument(
        "--ramp-limit-s", type=float, default=RAMP_LIMIT_S,
        help="with --workers: stop opening polls after this long (figures of those opened)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.workers > 1:
        workers_main(args)
        return
    latency_devices = LATENCY_DEVICES
    if args.smoke:
        args.polls, args.clients, args.seconds = 600, 1, 1.0
        latency_devices = SMOKE_LATENCY_DEVICES
    # A timeout's SIGTERM unwinds through the finally blocks that stop the child processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("push_bench: terminated"))
    limit = raise_fd_limit()
    if args.polls + 500 > limit:
        sys.exit(f"--polls {args.polls} needs more open files than the hard limit {limit}")
    if args.polls // args.clients + 100 > limit:
        sys.exit("too few client processes for the open-files limit")
    if args.polls < WARM_UP + latency_devices * args.clients:
        sys.exit(f"--polls must be at least {WARM_UP + latency_devices * args.clients}")

    partial = set(args.modes.split(",")) != set(MODES)  # no figures: print each run instead
    devices = [device(i) for i in range(args.polls)]
    shares = [devices[n :: args.clients] for n in range(args.clients)]
    with tempfile.TemporaryDirectory(prefix="lwork-push-bench-") as tmp:
        overrides = settings_overrides(Path(tmp))
        settings_file = Path(tmp) / "settings.json"
        settings_file.write_text(json.dumps(overrides))
        asyncio.run(populate(overrides, devices))
        runs: dict[str, dict[str, Any]] = {}
        for mode in args.modes.split(","):
            profile = args.profile if mode == "lwork" else None
            try:
                runs[mode] = run_server(
                    mode, settings_file, shares, args.seconds, latency_devices, profile
                )
            except RunFailed as failed:
                verdict.require(False, f"{mode} server", str(failed))
                verdict.conclude()
            run = runs[mode]
            verdict.none_failed(f"{mode} server", "polls or events", errors_of(run))
            verdict.require(
                run["held"] == args.polls,
                f"{mode} server",
                f"held {run['held']} of {args.polls} polls; client errors: "
                f"{run.get('after_all', run['after_hold']).get('error_samples')}",
            )
            if args.verbose or partial:
                summary = {
                    k: [ms(v, 50), ms(v, 99)] if k.endswith("latency_ms") else v
                    for k, v in runs[mode].items()
                }
                print(json.dumps({"bench": "push-run", **summary}), file=sys.stderr, flush=True)
    if not partial:
        report(runs, args.polls, args.clients, latency_devices)
    verdict.conclude([] if partial else ["held_poll_memory", "notify_latency", "events_per_s"])


def workers_main(args: argparse.Namespace) -> None:
    """``--workers N``: lwork with ``http.workers`` holding ``--polls`` polls that re-poll
    every ``--hold-s``; the reference, the bare-event app in one process, holds as many as one
    process can (its share of the polls, at most ``REFERENCE_POLLS``)."""
    if args.smoke:
        args.polls, args.clients, args.seconds, args.hold_s = 1200, 2, 1.0, 2.0
    latency_devices = SMOKE_LATENCY_DEVICES if args.smoke else LATENCY_DEVICES
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("push_bench: terminated"))
    limit = raise_fd_limit()
    if args.polls // args.workers + 1000 > limit:
        sys.exit(f"--polls {args.polls} needs more workers for the open-files limit {limit}")
    if args.polls // args.clients + 100 > limit:
        sys.exit("too few client processes for the open-files limit")
    devices = [device(i) for i in range(args.polls)]
    shares = [devices[n :: args.clients] for n in range(args.clients)]
    reference_polls = min(REFERENCE_POLLS, args.polls // args.workers)
    reference_shares = [share[: reference_polls // args.clients] for share in shares]
    with tempfile.TemporaryDirectory(prefix="lwork-push-bench-") as tmp:
        overrides = settings_overrides(Path(tmp))
        overrides["push"] = {"hold_s": args.hold_s}
        if args.hold_spread is not None:
            overrides["push"]["hold_spread"] = args.hold_spread
        overrides["http"]["workers"] = args.workers
        if args.database_url:
            # The default pools of 6 workers want 180 connections: past a stock server's 100.
            pool_size = asyncio.run(fitting_pool(args.database_url, args.workers))
            if pool_size < 1:
                sys.exit(f"PostgreSQL's max_connections cannot serve {args.workers} workers")
            overrides["database"] = {"url": args.database_url, "pool_size": pool_size}
            args.pool_size = pool_size  # for the report
        settings_file = Path(tmp) / "settings.json"
        settings_file.write_text(json.dumps(overrides))
        # The reference holds its polls through its whole run: with lwork's --hold-s every
        # hold that ended mid-phase took a poll out of the count each latency batch waits for.
        reference_file = Path(tmp) / "settings-reference.json"
        reference_file.write_text(json.dumps({**overrides, "push": {"hold_s": HOLD_S}}))
        asyncio.run(populate(overrides, devices))
        runs: dict[str, dict[str, Any]] = {}
        for mode, mode_settings, mode_shares, workers in (
            (WORKERS_MODE, settings_file, shares, args.workers),
            ("bare-event", reference_file, reference_shares, 1),
        ):
            try:
                runs[mode] = run_server(
                    mode, mode_settings, mode_shares, args.seconds, latency_devices,
                    workers=workers, repoll_s=args.hold_s + 5 if workers > 1 else 0.0,
                    ramp_limit_s=args.ramp_limit_s,
                )  # fmt: skip
            except RunFailed as failed:
                verdict.require(False, f"{mode} server", str(failed))
                verdict.conclude()
            run = runs[mode]
            verdict.none_failed(f"{mode} server", "polls or events", errors_of(run))
            if args.verbose:
                summary = {
                    k: [ms(v, 50), ms(v, 99)] if k.endswith("latency_ms") else v
                    for k, v in run.items()
                }
                print(json.dumps({"bench": "push-run", **summary}), file=sys.stderr, flush=True)
    report_workers(runs[WORKERS_MODE], runs["bare-event"], args, latency_devices)
    verdict.conclude(["held_poll_memory", "notify_latency", "repolls_sustained"])


if __name__ == "__main__":
    main()
