"""Soak (issue 17): every kind of load at once on one lwork for ``--minutes``, reported per
window (a minute by default). Run from the repository root (needs sipp: apt-get install
sip-tester):

    .venv/bin/python -m bench.soak [--minutes 10] [--devices 20000] [--calls 1000]
        [--sip-cps 20] [--logins-per-s 2] [--sms-per-s 2] [--events-per-s 100]
        [--postgres --redis] [--workers N] [--census] [--smoke]

The server is lwork's app as ``lwork serve`` builds it, in one uvicorn worker with its relay
child (``bench._push_server lwork``: the app plus the bench-only ``POST /_bench/notify`` that
raises events), on SQLite (default) or a fresh database of the PostgreSQL on 127.0.0.1:5432 and
the Redis on 127.0.0.1:6379 (``--postgres --redis``). With ``--workers N``: ``http.workers = N``,
a supervisor whose workers each have their relay (more than ~19,000 devices need a second
process here: the open-files limit), each client process from its own 127.0.0.x. Load, all at
once:

* ``--devices`` devices hold long polls (``bench._push_clients`` processes, one connection
  each); ``--events-per-s`` of them get an event each second, timed from the trigger to the
  poll's answer, and poll again;
* ``--calls`` answered app-to-app calls with RTP both ways (``--rtp-pps`` packets a second each
  way, real UDP through the relay) whose caller reads the status every second;
* ``--sip-cps`` phone calls a second through the SIP trunk to a sipp carrier
  (``bench/sipp_uas.xml``): start, status after ``--sip-hold`` s, hang-up;
* logins (``/lwork/mobile/login``) and SMS codes (``/lwork/sms/auth_code``, the log provider)
  at a steady rate.

One JSON line per window (``soak_window``): per kind of request its count, errors (a failed
answer, a transport error or a 5xx) and p99 latency, event delivery p99, RSS and open files of
the server and of its relay, and each serving process's garbage-collector pauses and longest
event-loop stall (``pauses``: a latency spike in every kind at once is one of them, or the
machine, whose load average is beside them); then ``soak_summary``: totals, error rate, and the
fitted slope of RSS (MiB/min) and open files (per min) per process, fitted to samples every 5 s
after the first window and over the second half (a cache filling up flattens out in the
second). With ``--census`` (and in ``--smoke``), ``soak_census``: the types of objects that
grew in each serving process from before the load to after it (a count stalls the server for
seconds, so both are taken while the load is off), as the garbage collector counts them, per
minute, and the garbage (reference cycles) kept meanwhile: what the RSS slope is made of.
Exits 1 on any server error (an HTTP 5xx, a traceback in the server's log, the server or relay
gone), a missing figure, or calls that stopped. ``--smoke``: about 20 s at small numbers,
windows of 10 s. The machine is shared: latencies include whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bench import _calls_sipp as sipp
from bench._calls_common import (
    CALLS,
    DEVICE,
    PWD,
    Pool,
    callee_phone,
    caller_phone,
    children,
    context,
    populate,
    start_body,
    write_settings,
)
from bench._chaos_cluster import TRANSPORT_ERRORS, Call, Errors, rtp_clock
from bench._load import percentile
from bench._push_procs import ClientProcess, all_call, free_port, get_json, rss_kib
from bench._push_procs import server as push_server
from bench._push_server import CENSUS_PATH, GC_PATH, WORKERS_MODE, raise_fd_limit
from bench._push_workers import source_addresses
from bench._sip_drive import callers_for, free_udp_port, top_up, trunk_overrides
from bench._verdict import Verdict
from lwork.settings import Settings

P2P_BASE = 500_000  # app-to-app call phones: apart from the SIP callers (caller_phone(0..))


def device_phone(n: int) -> str:
    return f"1500{n:07d}"


def login_phone(n: int) -> str:
    return f"1600{n:07d}"


class Kind:
    """One kind of request: latencies and outcomes in the current window, and totals."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.total = 0
        self.total_errors = 0

    def ok(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def error(self, why: str) -> None:
        self.errors[why] = self.errors.get(why, 0) + 1

    def window(self) -> dict[str, Any]:
        count = len(self.latencies) + sum(self.errors.values())
        figure = {"count": count, "errors": sum(self.errors.values()),
                  "p99_ms": round(percentile(self.latencies, 99) * 1e3, 1) if self.latencies
                  else None}  # fmt: skip
        if self.errors:
            figure["error_reasons"] = dict(self.errors)
        self.total += count
        self.total_errors += figure["errors"]
        self.latencies, self.errors = [], {}
        return figure


class Soak:
    def __init__(self, args: argparse.Namespace, port: int, errors: Errors) -> None:
        self.args, self.port, self.errors = args, port, errors
        self.kinds = {name: Kind() for name in ("status", "sip_call", "login", "sms", "event")}
        self.stop = asyncio.Event()
        self.pool = Pool(port, 64)

    async def request(
        self, kind: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        began = time.perf_counter()
        try:
            status, answer = await asyncio.wait_for(self.pool.request(method, path, body), 30)
        except (*TRANSPORT_ERRORS, TimeoutError) as exc:
            self.kinds[kind].error(type(exc).__name__)
            return None
        self.errors.check(status, kind)
        if status >= 500 or answer.get("status") not in ("ok", None):
            self.kinds[kind].error(f"{status}:{answer.get('reason')}")
            return None
        self.kinds[kind].ok(time.perf_counter() - began)
        return answer

    async def steady(self, rate: float, one: Any) -> None:
        """``one(n)`` started ``rate`` times a second (open loop) until the end."""
        if rate <= 0:
            return
        began, n, tasks = time.perf_counter(), 0, set()
        while not self.stop.is_set():
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks, return_exceptions=True)

    async def status_reader(self, call: Call) -> None:
        while not self.stop.is_set():
            answer = await self.request("status", "GET", f"{CALLS}?session_id={call.sid}")
            if answer is not None and answer.get("peer_status") != "p2p_hookoff":
                self.kinds["status"].error(f"peer_status:{answer.get('peer_status')}")
            await asyncio.sleep(1)

    async def sip_call(self, n: int) -> None:
        caller = caller_phone(n % self.args.sip_callers)
        body = start_body(caller, f"020794{n % 100000:05d}", 4000, "pstn")
        started = await self.request("sip_call", "POST", CALLS, body)
        if started is None:
            return
        await asyncio.sleep(self.args.sip_hold)
        sid = started["session_id"]
        # the status and hang-up are counted too (a failed one is an error of the SIP call)
        status = await self.request("sip_call", "GET", f"{CALLS}?session_id={sid}")
        if status is not None and status.get("peer_status") != "hookoff":
            self.kinds["sip_call"].error(f"peer_status:{status.get('peer_status')}")
        await self.request("sip_call", "DELETE", f"{CALLS}?session_id={sid}")

    async def login(self, n: int) -> None:
        phone = login_phone(n % self.args.login_accounts)
        body = {"acc": phone, "pwd": PWD, "device_id": DEVICE}
        await self.request("login", "POST", "/lwork/mobile/login", body)

    async def sms(self, n: int) -> None:
        phone = f"1770{n % 10_000_000:07d}"
        await self.request("sms", "POST", "/lwork/sms/auth_code",
                           {"uuid": phone, "type": "register"})  # fmt: skip

    async def events(self, clients: list[ClientProcess], devices: list[list[str]]) -> None:
        """Each second, ``--events-per-s`` devices (spread over the client processes) get an
        event; each process times its devices' from the trigger to the poll's answer."""
        if self.args.events_per_s <= 0:
            return
        per_client = max(1, self.args.events_per_s // len(clients))
        cursor = [0] * len(clients)
        while not self.stop.is_set():
            began = time.monotonic()
            commands = []
            for k, mine in enumerate(devices):
                batch = [mine[(cursor[k] + j) % len(mine)] for j in range(per_client)]
                cursor[k] += per_client
                commands.append({"cmd": "latency", "batches": [batch], "expect_held": 0})
            replies = await asyncio.to_thread(all_call, clients, commands)
            for reply in replies:
                for latency in reply["latencies"]:
                    self.kinds["event"].ok(latency)
                missing = per_client - len(reply["latencies"])
                for _ in range(missing):
                    self.kinds["event"].error("not_delivered")
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None: fewer than two points)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace, tmp: Path) -> AsyncIterator[dict[str, Any]]:
    """The settings of the database and bus: SQLite in ``tmp``, or a fresh PostgreSQL database
    (dropped afterwards) and the machine's Redis."""
    extra: dict[str, Any] = {}
    name = "soak_" + uuid.uuid4().hex[:10]
    if args.redis:
        extra["bus"] = {"url": "redis://127.0.0.1:6379/0"}
    if not args.postgres:
        yield extra
        return
    import asyncpg  # type: ignore[import-untyped]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                     database="postgres")  # fmt: skip
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield {**extra, "database": {"url": f"postgresql+asyncpg://postgres@127.0.0.1/{name}"}}
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def overrides_for(args: argparse.Namespace, tmp: Path, carrier_port: int) -> dict[str, Any]:
    overrides = trunk_overrides(tmp, carrier_port, int(args.sip_cps * args.sip_hold * 2) + 50)
    seconds = args.minutes * 60
    overrides["push"] = {"hold_s": seconds + 300}  # idle polls stay held: no overtime answers
    # relay ports below the ephemeral range (32768-), which the load's connections take
    overrides["media"] = {**overrides["media"], "port_min": 16000, "port_max": 32000}
    overrides["sms"] = {"provider": "log", "resend_interval_s": 0, "per_number_per_day": 10**6,
                        "per_ip_per_hour": 10**7, "per_prefix_per_hour": 10**7,
                        "global_per_hour": 10**7}  # fmt: skip
    # every login comes from 127.0.0.1 and each account logs in again every few minutes
    overrides["auth"] = {
        "argon2_memory_kib": 8192, "argon2_time_cost": 1,
        "login_per_minute_per_ip": 10**6, "login_per_hour_per_account": 10**6,
    }  # fmt: skip
    overrides["log_level"] = "WARNING"
    overrides.setdefault("http", {})["workers"] = args.workers
    return overrides


def process_sample(pid: int, workers: int) -> dict[str, dict[str, float]]:
    """RSS and open files of the server's processes: the server (with ``--workers``, the
    supervisor) and its relay, or each worker and that worker's relay."""
    named = [("server", pid)]
    if workers > 1:
        for k, worker in enumerate(children(pid)):
            named += [(f"worker_{k}", worker), *((f"relay_{k}", c) for c in children(worker))]
    else:
        named += [(f"relay_{n}", c) for n, c in enumerate(children(pid))]
    found: dict[str, dict[str, float]] = {}
    for name, p in named:
        with contextlib.suppress(OSError, RuntimeError):
            found[name] = {"rss_mib": round(rss_kib(p) / 1024, 1), "open_files": open_files(p)}
    return found


def server_names(pid: int, workers: int) -> dict[int, str]:
    """The serving processes by pid, named as ``process_sample`` names them."""
    if workers == 1:
        return {pid: "server"}
    return {worker: f"worker_{k}" for k, worker in enumerate(children(pid))}


def each_worker(
    port: int, path: str, names: dict[int, str], merge: Callable[[Any, Any], Any] | None = None
) -> dict[str, Any]:
    """``GET path`` of every serving process, asked over fresh connections, each landing on any
    worker, until every one has answered (at most 50 tries a worker: a busy one may not be
    reached). An answer names its process (``pid``); a second answer of the same process is
    folded into the first with ``merge``, or dropped without one."""
    found: dict[str, Any] = {}
    for _ in range(50 * len(names)):
        with contextlib.suppress(OSError):
            answer = get_json(port, path)
            name = names.get(answer.pop("pid"), "unknown")
            if name not in found:
                found[name] = answer
            elif merge is not None:
                found[name] = merge(found[name], answer)
        if len(found) >= len(names):
            break
    return found


def pauses(port: int, names: dict[int, str]) -> dict[str, dict[str, float]]:
    """Each serving process's garbage-collector pauses and longest event-loop stall since the
    previous call; two windows of one process (asked twice) are the pauses since the first."""

    def merge(seen: dict[str, float], later: dict[str, float]) -> dict[str, float]:
        summed = {k: round(seen[k] + later[k], 2) for k in ("collections", "total_ms", "full")}
        return {**summed, **{k: max(seen[k], later[k]) for k in ("max_ms", "loop_stall_max_ms")}}

    return each_worker(port, GC_PATH, names, merge)


def census_growth(
    first: dict[str, Any], last: dict[str, Any], minutes: float, top: int = 15
) -> dict[str, Any]:
    """Per process, the types whose live objects grew most between two censuses, per minute
    (a cache filling up or a leak), and the garbage the last census collected: reference cycles
    kept since they were frozen, which only the garbage-collector policy's periodic release
    frees (what they cost until then), by type."""

    def most(counts: dict[str, int]) -> list[tuple[int, str]]:
        return sorted(((n, t) for t, n in counts.items()), reverse=True)[:top]

    growth: dict[str, Any] = {}
    for name, answer in last.items():
        before = first.get(name, {}).get("types", {})
        grew = {t: n - before.get(t, 0) for t, n in answer["types"].items()}
        growth[name] = {
            "live": {t: {"grew": d, "per_min": round(d / minutes, 1), "now": answer["types"][t]}
                     for d, t in most(grew) if d > 0},
            "garbage_collected": answer["garbage"],
            "garbage_per_min": round(answer["garbage"] / minutes, 1),
            "garbage_types": dict((t, n) for n, t in most(answer["garbage_types"])),
            "garbage_binds": answer.get("garbage_binds", {}),
        }  # fmt: skip
    return growth


async def run(args: argparse.Namespace, verdict: Verdict, tmp: Path) -> None:
    carrier_port = free_udp_port()
    async with database(args, tmp) as db:
        overrides = {**overrides_for(args, tmp, carrier_port), **db}
        settings = Settings(**overrides)
        # enough callers that calls slowed down by a stall (up to 10 s longer each) stay within
        # billing.max_concurrent_paid_calls, which would otherwise refuse them
        args.sip_callers = callers_for(args.sip_cps * (args.sip_hold + 10), settings)
        devices = [device_phone(n) for n in range(args.devices)]
        p2p = [p for i in range(args.calls)
               for p in (caller_phone(P2P_BASE + i), callee_phone(P2P_BASE + i))]  # fmt: skip
        sip_callers = [caller_phone(i) for i in range(args.sip_callers)]
        logins = [login_phone(n) for n in range(args.login_accounts)]
        began = time.monotonic()
        await populate(
            settings, devices + p2p + sip_callers + logins, set(devices + p2p + sip_callers)
        )
        await top_up(settings, sip_callers, 1_000_000.0)
        setup_s = time.monotonic() - began
        settings_file = write_settings(tmp, overrides)
        port = free_port()
        seconds = args.minutes * 60
        sip_calls = int(args.sip_cps * (seconds + 30))
        carrier = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(sip_calls)], tmp,
                             "carrier", seconds + 300)  # fmt: skip
        errors = Errors()
        mode = WORKERS_MODE if args.workers > 1 else "lwork"
        # with workers, each client from its own loopback address (as push_bench --workers)
        sources = source_addresses(args.clients) if args.workers > 1 else [None] * args.clients
        with push_server(mode, settings_file, port, args.workers) as server:
            clients = [ClientProcess(port, source, args.workers) for source in sources]
            mine = [devices[k :: args.clients] for k in range(args.clients)]
            soak = Soak(args, port, errors)
            calls: list[Call] = []
            try:
                opened = await asyncio.to_thread(
                    all_call, clients, [{"cmd": "open", "devices": [[d, DEVICE] for d in m]}
                                        for m in mine])  # fmt: skip
                held = sum(r["open"] for r in opened)
                calls = [Call(0, port, caller_phone(P2P_BASE + i), callee_phone(P2P_BASE + i))
                         for i in range(args.calls)]  # fmt: skip
                up = 0
                for at in range(0, len(calls), 50):
                    up += sum(
                        await asyncio.gather(*(c.establish(errors) for c in calls[at : at + 50]))
                    )
                verdict.require(up == len(calls), "soak_setup", f"{len(calls) - up} calls not up")
                verdict.emit({"figure": "soak_setup", "devices_polling": held, "calls_up": up,
                              "sip_callers": args.sip_callers, "setup_s": round(setup_s, 1),
                              **context()})  # fmt: skip
                names = server_names(server.pid, args.workers)
                # Counted while the load is off: a census stalls each worker for seconds, which
                # would hold up (and time out) the requests of the moment.
                first_census = (
                    await asyncio.to_thread(each_worker, port, CENSUS_PATH, names)
                    if args.census else {}
                )  # fmt: skip
                census_from = time.monotonic()
                before = {c.sid: c.received() for c in calls}
                tasks = [
                    asyncio.create_task(rtp_clock(calls, soak.stop, 1 / args.rtp_pps)),
                    asyncio.create_task(soak.steady(args.sip_cps, soak.sip_call)),
                    asyncio.create_task(soak.steady(args.logins_per_s, soak.login)),
                    asyncio.create_task(soak.steady(args.sms_per_s, soak.sms)),
                    asyncio.create_task(soak.events(clients, mine)),
                    *(asyncio.create_task(soak.status_reader(c)) for c in calls),
                ]
                samples: dict[str, list[tuple[float, float, float]]] = {}
                windows = max(1, round(seconds / args.window))
                start = time.monotonic()

                async def sampler() -> None:
                    """RSS and open files every 5 s: the points the slopes are fitted to."""
                    while not soak.stop.is_set():
                        minute = (time.monotonic() - start) / 60
                        for name, values in process_sample(server.pid, args.workers).items():
                            samples.setdefault(name, []).append(
                                (minute, values["rss_mib"], values["open_files"])
                            )
                        await asyncio.sleep(5)

                tasks.append(asyncio.create_task(sampler()))
                await asyncio.to_thread(pauses, port, names)  # the first window starts now
                for w in range(windows):
                    await asyncio.sleep(max(0.0, start + (w + 1) * args.window - time.monotonic()))
                    procs = process_sample(server.pid, args.workers)
                    verdict.emit({"figure": "soak_window", "window": w + 1,
                                  "at_s": round(time.monotonic() - start, 1),
                                  **{k: v.window() for k, v in soak.kinds.items()},
                                  "processes": procs,
                                  "pauses": await asyncio.to_thread(pauses, port, names),
                                  "machine_load_1min": round(os.getloadavg()[0], 2),
                                  "server_alive": server.poll() is None})  # fmt: skip
                    if server.poll() is not None:
                        break
                soak.stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                if args.census and server.poll() is None:  # the load is off again
                    last_census = await asyncio.to_thread(each_worker, port, CENSUS_PATH, names)
                    minutes = (time.monotonic() - census_from) / 60
                    growth = census_growth(first_census, last_census, minutes)
                    verdict.emit({"figure": "soak_census", "growth": growth})
                media_stopped = sum(
                    not (c.received()[0] > before[c.sid][0] and c.received()[1] > before[c.sid][1])
                    for c in calls
                )
                checks = await asyncio.to_thread(
                    all_call, clients, [{"cmd": "check"}] * len(clients)
                )
                alive = server.poll() is None
                processes = process_sample(server.pid, args.workers)
                relay_alive = any(name.startswith("relay") for name in processes)
            finally:
                for client in clients:
                    client.close()
                for call in calls:
                    call.close()
                soak.pool.close()
        sipp.finish(carrier, 10)
        log = (tmp / f"server-{mode}.log").read_text(errors="replace")
        tracebacks = log.count("Traceback")
        if tracebacks:  # the log goes with the temporary directory: its first one, kept here
            at = log.index("Traceback")
            print(log[max(0, log.rfind("\n", 0, at - 400)) : at + 3000], file=sys.stderr)
        kinds = {k: {"count": v.total, "errors": v.total_errors} for k, v in soak.kinds.items()}
        total = sum(v["count"] for v in kinds.values())
        failed = sum(v["errors"] for v in kinds.values())
        first = args.window / 60
        slopes = {
            f"{name}_{part}": {"rss_mib_per_min": _round(slope([(m, r) for m, r, _ in kept])),
                               "open_files_per_min": _round(slope([(m, f) for m, _, f in kept])),
                               "points": len(kept)}
            for name, pts in samples.items()
            for part, kept in (("after_first_window", [p for p in pts if p[0] >= first]),
                               ("second_half", [p for p in pts if p[0] >= seconds / 120]))
        }  # fmt: skip
        client_errors = sum(c["errors"] for c in checks)
        verdict.emit({
            "figure": "soak_summary", "minutes": args.minutes, "devices": args.devices,
            "calls": args.calls, "sip_cps": args.sip_cps, "logins_per_s": args.logins_per_s,
            "sms_per_s": args.sms_per_s, "events_per_s": args.events_per_s,
            "database": "postgresql+redis" if args.postgres else "sqlite", "requests": kinds,
            "error_rate": round(failed / total, 5) if total else None,
            "http_5xx": len(errors.server_errors), "server_tracebacks": tracebacks,
            "poll_client_errors": client_errors, "calls_media_stopped": media_stopped,
            "slopes": slopes, "server_alive_at_end": alive, "relay_alive_at_end": relay_alive,
        })  # fmt: skip
        verdict.require(alive, "soak_summary", "the server died")
        verdict.require(relay_alive, "soak_summary", "the relay child is gone")
        verdict.require(not errors.server_errors, "soak_summary",
                        f"HTTP 5xx: {errors.server_errors[:5]}")  # fmt: skip
        verdict.none_failed("soak_summary", "server log tracebacks", tracebacks)
        verdict.none_failed("soak_summary", "app-to-app calls (media stopped)", media_stopped)
        verdict.some("soak_summary", "requests", total)
        verdict.none_failed("soak_summary", "requests", {k: v["errors"] for k, v in kinds.items()})


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--window", type=float, default=60, help="seconds per reported window")
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4, help="poll client processes")
    parser.add_argument("--events-per-s", type=int, default=100)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rtp-pps", type=float, default=1.0, help="per call and direction")
    parser.add_argument("--sip-cps", type=float, default=20)
    parser.add_argument("--sip-hold", type=float, default=2.0)
    parser.add_argument("--logins-per-s", type=float, default=2)
    parser.add_argument("--login-accounts", type=int, default=200)
    parser.add_argument("--sms-per-s", type=float, default=2)
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--redis", action="store_true", help="the bus on Redis (127.0.0.1:6379)")
    parser.add_argument("--smoke", action="store_true", help="about 20 s at small numbers (CI)")
    parser.add_argument(
        "--census", action="store_true",
        help="count each process's objects by type before the first window and after the last, "
        "and report what grew (each count stalls the server for a second or more)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1,
        help="lwork with http.workers = N (one process holds at most ~19,000 polls here)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.minutes, args.window, args.devices, args.clients = 1 / 3, 10, 300, 2
        args.events_per_s, args.calls, args.sip_cps, args.login_accounts = 20, 20, 5, 20
        args.census = True
    raise_fd_limit()
    verdict = Verdict("soak")
    with tempfile.TemporaryDirectory(prefix="lwork-soak-") as name:
        asyncio.run(run(args, verdict, Path(name)))
    verdict.conclude(
        ["soak_setup", "soak_window", "soak_summary", *(["soak_census"] if args.census else [])]
    )


if __name__ == "__main__":
    main()
