"""Chaos runs (issue 17): what two ``lwork serve`` nodes on PostgreSQL + Redis do to the calls
in progress, the apps and the records when one of their parts dies. Run from the repository root:

    .venv/bin/python -m bench.chaos_bench [--calls 100] [--faults kill,redis,postgres] [--smoke]

Each fault runs on a fresh database of a throwaway PostgreSQL cluster and a throwaway
redis-server (never the machine's shared ones), with two nodes, each with its built-in relay.
``--calls`` answered app-to-app calls are split over both nodes (caller and callee on the same
node), RTP flows both ways (a packet every 0.1 s each way, real UDP through the relays), the
caller reads the status every second, and every app holds a long poll. Then:

* ``kill``: ``kill -9`` of node 1 (and its relay). Figures: the survivor's calls that went on
  (RTP still relayed both ways, every status read answered ``p2p_hookoff``: must be all), the
  time from the kill to the first successful new call through the survivor, the time until the
  survivor holds every app's long poll (the dead node's apps' polls fail, they poll again at the
  other node) and each moved app's first answer there, events raised for every app right after
  the kill (all must arrive), and the dead node's open records:
  closed once by the survivor after ``calls.cdr_lease_s``, never charged twice, none lost; the
  survivor's own records stay open.
* ``redis`` / ``postgres``: the server is killed under both nodes and started again after
  ``--down`` seconds. Figures: calls in progress that went on, the time from the fault to the
  first successful new call (and from the restart), events raised during the outage that
  arrived (all must), and what the requests answered meanwhile.

One JSON line per figure; exits 1 (reasons on stderr) when a survivor's call stopped, an event or
record was lost or charged twice, an app never reconnected, no new call worked, or any request
got an HTTP 5xx. ``--smoke``: 10 calls, shorter windows. The machine is shared: times include
whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import _calls_sipp as sipp
from bench._calls_common import Conn, callee_phone, caller_phone, context
from bench._chaos_cluster import (
    TRANSPORT_ERRORS,
    App,
    Call,
    Errors,
    NodeProcess,
    common_settings,
    first_new_call,
    make_accounts,
    notifier,
    phone_call,
    raise_event,
    rtp_clock,
)
from bench._sip_drive import free_udp_port
from bench._throwaway import ThrowawayPostgres, ThrowawayRedis, postgres_bin
from bench._verdict import Verdict
from lwork.storage.engine import create_engine
from lwork.storage.tables import cdrs, ledger

PROBE_PAIRS = 400  # phones for new calls after a fault: 800 accounts, one pair per attempt


def probe_pair(n: int) -> tuple[str, str]:
    return f"1370{n:07d}", f"1360{n:07d}"


def phone_caller(n: int) -> str:
    return f"1350{n:07d}"


class Cluster:
    """Two nodes, their apps and calls, for one fault."""

    def __init__(
        self, tmp: Path, settings: dict[str, Any], calls: int, phone_calls: int = 0
    ) -> None:
        self.tmp, self.settings, self.n_calls = tmp, settings, calls
        self.n_phone_calls = phone_calls
        self.nodes: list[NodeProcess] = []
        self.apps: list[App] = []
        self.calls: list[Call] = []
        self.errors = Errors()
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.next_probe = 0

    def probes(self, count: int) -> list[tuple[str, str]]:
        pairs = [probe_pair(n) for n in range(self.next_probe, self.next_probe + count)]
        self.next_probe += count
        return pairs

    async def start(self) -> None:
        phones = [p for i in range(self.n_calls) for p in (caller_phone(i), callee_phone(i))]
        phones += [p for n in range(PROBE_PAIRS) for p in probe_pair(n)]
        paying = [phone_caller(n) for n in range(self.n_phone_calls)]
        await make_accounts(self.settings, self.tmp, phones, paying)
        self.nodes = [NodeProcess(f"n{k + 1}", k, self.tmp, self.settings) for k in range(2)]
        await asyncio.gather(*(node.ready() for node in self.nodes))
        ports = [node.port for node in self.nodes]
        for i in range(self.n_calls):
            node = i % 2
            self.apps += [App(caller_phone(i), node, ports, self.errors),
                          App(callee_phone(i), node, ports, self.errors)]  # fmt: skip
            self.calls.append(Call(node, ports[node], caller_phone(i), callee_phone(i)))
        self.tasks += [asyncio.create_task(app.run(self.stop)) for app in self.apps]
        await asyncio.sleep(0.3)  # the polls are held
        up = await asyncio.gather(*(call.establish(self.errors) for call in self.calls))
        if not all(up):
            failures = {c.failure for c in self.calls if c.failure}
            raise RuntimeError(f"{up.count(False)} of {len(up)} calls did not come up: {failures}")
        self.tasks.append(asyncio.create_task(rtp_clock(self.calls, self.stop)))
        self.tasks += [
            asyncio.create_task(call.read_status(self.stop, self.errors)) for call in self.calls
        ]
        await asyncio.sleep(1.5)

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for call in self.calls:
            call.close()
        for node in self.nodes:
            node.stop()

    def went_on(self, calls: list[Call], since: float, until: float,
                before: dict[str, tuple[int, int]]) -> dict[str, Any]:  # fmt: skip
        """Which of ``calls`` relayed RTP both ways after ``since`` and answered every status
        read in [since, until] with ``p2p_hookoff``."""
        on, stopped_media, bad_status = 0, 0, 0
        refused: dict[str, int] = {}
        for call in calls:
            now = call.received()
            then = before[call.sid]
            media = now[0] > then[0] and now[1] > then[1]
            reads = [s for t, s in call.statuses if since <= t <= until]
            for s in reads:
                if s != "p2p_hookoff":
                    refused[s] = refused.get(s, 0) + 1
            last_ok = bool(reads) and reads[-1] == "p2p_hookoff"
            stopped_media += not media
            bad_status += not last_ok
            on += media and last_ok
        return {"calls": len(calls), "went_on": on, "media_stopped": stopped_media,
                "status_not_ok_at_end": bad_status, "status_reads_not_ok": refused}  # fmt: skip

    def snapshot(self, calls: list[Call]) -> dict[str, tuple[int, int]]:
        return {call.sid: call.received() for call in calls}


async def all_held(port: int, count: int, limit: float) -> float | None:
    """Seconds until ``port``'s node holds ``count`` long polls at once (None: not within
    ``limit``): every app of both nodes is connected to it."""
    began = time.monotonic()
    conn = Conn(port)
    try:
        while time.monotonic() - began < limit:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                _, metrics = await conn.request("GET", "/metrics")
                if metrics.get("held_polls", 0) >= count:
                    return round(time.monotonic() - began, 3)
            await asyncio.sleep(0.05)
        return None
    finally:
        conn.close()


async def raise_events(push: Any, apps: list[App], seq: int) -> int:
    refused = await asyncio.gather(*(raise_event(push, app.phone, seq) for app in apps))
    return sum(refused)


async def wait_events(apps: list[App], seqs: set[int], limit: float) -> dict[str, int]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(seqs <= set(app.probes) for app in apps):
            break
        await asyncio.sleep(0.1)
    sent = len(apps) * len(seqs)
    arrived = sum(len(seqs & set(app.probes)) for app in apps)
    twice = sum(len(app.probes) - len(set(app.probes)) for app in apps)
    return {"events_raised": sent, "events_arrived": arrived, "events_lost": sent - arrived,
            "events_delivered_twice": twice}  # fmt: skip


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "max_s": None}
    return {"p50_s": round(statistics.median(values), 3), "max_s": round(max(values), 3)}


async def records_of(db_url: str, sids: list[str]) -> dict[str, Any]:
    engine = create_engine(db_url, 1)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(cdrs).where(cdrs.c.id.in_(sids)))).all()
            charges = (
                await conn.execute(
                    select(ledger.c.ref, func.count())
                    .where(ledger.c.ref.in_(["cdr:" + sid for sid in sids]))
                    .group_by(ledger.c.ref)
                )
            ).all()
    finally:
        await engine.dispose()
    closed = [r for r in rows if r.ended_at is not None]
    return {
        "records": len(rows),
        "closed": len(closed),
        "closed_node_lost": sum(r.end_reason == "node_lost" for r in closed),
        "open": len(rows) - len(closed),
        "missing": len(sids) - len(rows),
        "charged_once": sum(count == 1 for _, count in charges),
        "charged_twice": sum(count > 1 for _, count in charges),
    }


async def settled(
    db_url: str, sids: list[str], since: float, limit: float
) -> tuple[dict[str, Any], float]:
    """The records once none is open (or ``limit`` seconds after ``since``), and the seconds
    from ``since`` to then."""
    while True:
        found = await records_of(db_url, sids)
        if found["open"] == 0 or time.monotonic() - since > limit:
            return found, time.monotonic() - since
        await asyncio.sleep(0.25)


async def node_kill(
    verdict: Verdict, tmp: Path, db_url: str, bus_url: str, calls: int, observe_s: float,
    lease_s: float, phone_calls: int,
) -> dict[str, Any]:  # fmt: skip
    """The kill -9 case; its figures (also emitted). ``phone_calls`` calls to phone numbers
    (paid) are up on the node killed, to a sipp carrier: the survivor must charge each once
    and end its carrier leg (sipp exits 0 once it got every BYE)."""
    carrier_port = free_udp_port()
    settings = common_settings(db_url, bus_url, lease_s, lease_s / 4, carrier_port)
    cluster = Cluster(tmp, settings, calls, phone_calls)
    carrier = sipp.start(sipp.UAS, ["-p", str(carrier_port), "-m", str(phone_calls)], tmp,
                         "carrier", 120) if phone_calls else None  # fmt: skip
    try:
        await cluster.start()
        paid = await asyncio.gather(*(
            phone_call(cluster.nodes[0].port, phone_caller(n), n, cluster.errors)
            for n in range(phone_calls)))  # fmt: skip
        paid_sids = [sid for sid in paid if sid is not None]
        verdict.require(len(paid_sids) == phone_calls, "kill9_one_of_two_nodes",
                        f"{phone_calls - len(paid_sids)} phone calls did not come up")  # fmt: skip
        await asyncio.sleep(lease_s / 2)  # their records opened and beaten
        survivors = [c for c in cluster.calls if c.node == 1]
        doomed = [c for c in cluster.calls if c.node == 0]
        moved = [a for a in cluster.apps if a.node == 0]
        stayed = [a for a in cluster.apps if a.node == 1]
        async with notifier(settings, tmp) as push:
            before = cluster.snapshot(survivors)
            killed = time.monotonic()
            cluster.nodes[0].kill9()
            for call in doomed:
                call.alive = False
            held = asyncio.create_task(all_held(cluster.nodes[1].port, len(cluster.apps), 30))
            settling = asyncio.create_task(
                settled(db_url, [c.sid for c in doomed], killed, lease_s + 30))  # fmt: skip
            charging = asyncio.create_task(settled(db_url, paid_sids, killed, lease_s + 30))
            first, failed, steps = await first_new_call(
                [cluster.nodes[1].port], cluster.probes(PROBE_PAIRS // 2), cluster.errors,
                killed, 30)  # fmt: skip
            # raised while the dead node's apps are (or may still be) away: their mailboxes
            # keep the events until the apps poll again, at the survivor
            await raise_events(push, cluster.apps, 1)
            raised = time.monotonic() - killed
            await asyncio.sleep(observe_s)
            went_on = cluster.went_on(survivors, killed, time.monotonic(), before)
            events = await wait_events(cluster.apps, {1}, 30)
            held_s = await held
        reconnects = [a.reconnected_at - killed for a in moved if a.reconnected_at is not None]
        found, waited = await settling
        charged, charged_s = await charging
        kept = await records_of(db_url, [c.sid for c in survivors])
        carrier_rc = sipp.finish(carrier, 30) if carrier is not None else 0
        figures = {
            "survivor_calls": went_on,
            "first_new_call_s": None if first is None else round(first, 3),
            "first_new_call_steps_ms": steps,
            "new_calls_failed_before": failed,
            "apps_to_reconnect": len(moved),
            "apps_reconnected": len(reconnects),
            "all_apps_held_at_survivor_s": held_s,
            "first_answer_at_survivor": spread(reconnects),
            "events_raised_within_s_of_kill": round(raised, 3),
            "apps_on_survivor_that_failed_over": sum(a.failed_over_at is not None for a in stayed),
            "events": events,
            "dead_node_records": {
                **found,
                "settled_s_after_kill": round(waited, 2),
                "lease_s": lease_s,
            },  # fmt: skip
            "dead_node_phone_calls": {
                **charged,
                "settled_s_after_kill": round(charged_s, 2),
                "carrier_legs_ended": carrier_rc == 0,
            },  # fmt: skip
            "survivor_records_closed_wrongly": kept["closed"],
            "server_errors": len(cluster.errors.server_errors),
        }
    finally:
        await cluster.close()
        if carrier is not None and carrier.poll() is None:
            carrier.kill()
            carrier.wait()
    verdict.emit({"figure": "kill9_one_of_two_nodes", "calls": calls, **figures, **context()})
    check_kill(verdict, figures, cluster.errors)
    return figures


def check_kill(verdict: Verdict, f: dict[str, Any], errors: Errors) -> None:
    name = "kill9_one_of_two_nodes"
    calls = f["survivor_calls"]
    verdict.require(calls["calls"] > 0 and calls["went_on"] == calls["calls"], name,
                    f"survivor's calls stopped: {calls}")  # fmt: skip
    verdict.require(f["first_new_call_s"] is not None, name, "no new call worked on the survivor")
    verdict.require(f["apps_reconnected"] == f["apps_to_reconnect"], name,
                    "apps of the dead node did not reconnect")  # fmt: skip
    verdict.require(f["all_apps_held_at_survivor_s"] is not None, name,
                    "the survivor never held every app's poll")  # fmt: skip
    verdict.none_failed(name, "events (lost)", f["events"]["events_lost"])
    records = f["dead_node_records"]
    verdict.require(records["records"] > 0, name, f"the dead node left no records: {records}")
    verdict.none_failed(name, "records (left open)", records["open"] + records["missing"])
    verdict.none_failed(name, "records (charged twice)", records["charged_twice"])
    paid = f["dead_node_phone_calls"]
    verdict.require(paid["charged_once"] == paid["records"] and paid["open"] == 0, name,
                    f"phone calls not charged exactly once: {paid}")  # fmt: skip
    verdict.require(paid["carrier_legs_ended"], name, "the carrier's legs were not all ended")
    verdict.none_failed(name, "survivor records (closed by mistake)",
                        f["survivor_records_closed_wrongly"])  # fmt: skip
    verdict.require(not errors.server_errors, name, f"server errors: {errors.server_errors[:5]}")


async def restart(verdict: Verdict, fault: str, tmp: Path, pg: ThrowawayPostgres,
                  redis: ThrowawayRedis, calls: int, down_s: float) -> dict[str, Any]:  # fmt: skip
    """Redis or PostgreSQL killed under both nodes, started again after ``down_s``."""
    db_url = pg.create_database("chaos_" + uuid.uuid4().hex[:10])
    settings = common_settings(db_url, redis.url, 4.0, 1.0)
    cluster = Cluster(tmp, settings, calls)
    name = f"{fault}_restart"
    try:
        await cluster.start()
        ports = [node.port for node in cluster.nodes]
        async with notifier(settings, tmp) as push:
            before = cluster.snapshot(cluster.calls)
            faulted = time.monotonic()
            (redis.kill if fault == "redis" else pg.kill)()
            probe = asyncio.create_task(
                first_new_call(ports, cluster.probes(PROBE_PAIRS // 2), cluster.errors,
                               faulted, down_s + 60))  # fmt: skip
            raising = asyncio.create_task(raise_events(push, cluster.apps, 2))
            await asyncio.sleep(down_s)
            during = cluster.went_on(cluster.calls, faulted, time.monotonic(), before)
            await asyncio.to_thread(redis.start if fault == "redis" else pg.start)
            restarted = time.monotonic()  # up and taking connections
            refused = await raising
            first, failed, steps = await probe
            if first is not None and faulted + first >= restarted:
                after_restart: float | None = faulted + first - restarted
            else:  # a new call worked during the outage: is there one after it too?
                pairs = cluster.probes(PROBE_PAIRS // 2 - 1)
                after_restart, _, _ = await first_new_call(
                    ports, pairs, cluster.errors, restarted, 60
                )
            events = await wait_events(cluster.apps, {2}, 30)
            after_snapshot = cluster.snapshot(cluster.calls)
            await asyncio.sleep(2.5)
            after = cluster.went_on(cluster.calls, time.monotonic() - 2.5, time.monotonic(),
                                    after_snapshot)  # fmt: skip
        polls_refused: dict[str, int] = {}
        for app in cluster.apps:
            for reason, count in app.refused.items():
                polls_refused[reason] = polls_refused.get(reason, 0) + count
        figures = {
            "down_s": down_s,
            "calls_during_outage": during,
            "calls_after_restart": after,
            "first_new_call_s_after_fault": None if first is None else round(first, 3),
            "first_new_call_steps_ms": steps,
            "new_calls_failed_before": failed,
            "first_new_call_s_after_restart": None
            if after_restart is None
            else round(after_restart, 3),
            "event_raises_refused_meanwhile": refused,
            "events": events,
            "polls_refused": polls_refused,
            "server_errors": len(cluster.errors.server_errors),
        }
    finally:
        await cluster.close()
    verdict.emit({"figure": name, "calls": calls, **figures, **context()})
    verdict.require(after["went_on"] == after["calls"], name, f"calls did not go on: {after}")
    verdict.require(first is not None and after_restart is not None, name,
                    "no new call worked after the restart")  # fmt: skip
    verdict.none_failed(name, "events (lost)", events["events_lost"])
    verdict.require(not cluster.errors.server_errors, name,
                    f"server errors: {cluster.errors.server_errors[:5]}")  # fmt: skip
    return figures


async def run(args: argparse.Namespace, verdict: Verdict) -> None:
    binaries = postgres_bin()
    redis_binary = shutil.which("redis-server")
    if binaries is None or redis_binary is None:
        raise SystemExit("chaos_bench needs PostgreSQL's server binaries and redis-server")
    with tempfile.TemporaryDirectory(prefix="lwork-chaos-") as name:
        tmp = Path(name)
        pg = ThrowawayPostgres(binaries)
        redis = ThrowawayRedis(redis_binary, tmp)
        try:
            pg.init()
            pg.start()
            redis.start()
            for fault in args.faults.split(","):
                where = tmp / fault
                where.mkdir()
                if fault == "kill":
                    db_url = pg.create_database("chaos_" + uuid.uuid4().hex[:10])
                    await node_kill(verdict, where, db_url, redis.url, args.calls,
                                    args.observe, args.lease, args.phone_calls)  # fmt: skip
                else:
                    await restart(verdict, fault, where, pg, redis, args.calls, args.down)
        finally:
            redis.remove()
            pg.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--faults", default="kill,redis,postgres")
    parser.add_argument("--observe", type=float, default=5.0, help="seconds watched after a kill")
    parser.add_argument("--down", type=float, default=5.0, help="seconds Redis/PostgreSQL is down")
    parser.add_argument("--lease", type=float, default=3.0, help="calls.cdr_lease_s of the run")
    parser.add_argument("--phone-calls", type=int, default=10,
                        help="paid calls to a sipp carrier on the node killed")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="10 calls, short windows (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.calls, args.observe, args.down, args.lease, args.phone_calls = 10, 2.0, 2.0, 2.0, 2
    verdict = Verdict("chaos_bench")
    asyncio.run(run(args, verdict))
    expected = {"kill": "kill9_one_of_two_nodes", "redis": "redis_restart",
                "postgres": "postgres_restart"}  # fmt: skip
    verdict.conclude(expected[f] for f in args.faults.split(","))


if __name__ == "__main__":
    main()
