"""The pieces of ``bench.chaos_bench``: real ``lwork serve`` nodes on a shared PostgreSQL and
Redis (each node in a process group of its own, so ``kill -9`` takes its relay child too), the
apps on them (a held long poll each, that fails over to the other node when its node stops
answering), answered app-to-app calls with RTP both ways and a status read every second, and
an in-process lwork that raises events into the apps' mailboxes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench._calls_common import (
    CALLS,
    DEVICE,
    Conn,
    RtpSocket,
    answer_body,
    populate,
    start_body,
)
from bench._sip_drive import top_up
from bench._throwaway import free_port
from lwork.app import build_app
from lwork.settings import Settings

POLL = "/channel/push_service"
EVENT = "chaos_probe"
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError)


def common_settings(
    db_url: str, bus_url: str, lease_s: float, heartbeat_s: float, carrier_port: int = 0
) -> dict[str, Any]:
    """Every node's settings but its name, data dir and relay ports: short record heartbeats
    and lease (a dead node's records are settled within seconds), timers that would otherwise
    end calls nobody answers, and no per-IP cap (every app is 127.0.0.1)."""
    return {
        "secret_key": "chaos-bench-shared-secret",
        "database": {"url": db_url},
        "bus": {"url": bus_url},
        "log_level": "WARNING",
        "sms": {"provider": "log"},
        "auth": {"argon2_memory_kib": 8192, "argon2_time_cost": 1},
        "http": {"ip_rate_per_minute": 100_000_000},
        "presence": {"window_s": 3600},
        "push": {"hold_s": 5},
        "calls": {
            "p2p_fallback_s": 60,
            "ring_timeout_s": 3600,
            "cdr_heartbeat_s": heartbeat_s,
            "cdr_lease_s": lease_s,
        },  # fmt: skip
        "media": {"media_timeout_s": 3600},
        # phone calls through a SIP trunk to a sipp carrier on ``carrier_port`` (0: none)
        "sip": {"enabled": carrier_port > 0, "proxy_port": carrier_port or 5060,
                "listen_port": 0, "options_interval_s": 0, "trusted_sources": ["127.0.0.1"],
                "number_rules": [["00", "+"], ["0", "+44"]], "default_country_code": "44"},
    }  # fmt: skip


def as_env(settings: dict[str, Any], prefix: str = "LWORK_") -> dict[str, str]:
    """Nested settings as pydantic-settings environment variables (``LWORK_CALLS__CDR_LEASE_S``)."""
    env: dict[str, str] = {}
    for key, value in settings.items():
        name = prefix + key.upper()
        if isinstance(value, dict):
            env.update(as_env(value, name + "__"))
        elif isinstance(value, list | bool):
            env[name] = json.dumps(value)
        else:
            env[name] = str(value)
    return env


class NodeProcess:
    """One ``lwork serve``, its log in ``tmp``."""

    def __init__(self, name: str, index: int, tmp: Path, settings: dict[str, Any]) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = tmp / f"{name}.log"
        (tmp / name).mkdir(exist_ok=True)
        low = 10000 + 5000 * index  # its own relay ports, below the ephemeral ones (32768-)
        media = {**settings["media"], "port_min": low, "port_max": low + 4998}
        env = as_env({**settings, "node": name, "data_dir": str(tmp / name), "media": media})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lwork", "serve", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: {self.log()}")
            conn = Conn(self.port)
            with contextlib.suppress(*TRANSPORT_ERRORS):
                status, _ = await conn.request("GET", "/readyz")
                if status == 200:
                    conn.close()
                    return
            conn.close()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"node {self.name} not ready: {self.log()}")

    def kill9(self) -> None:
        """``kill -9`` of the node and its relay child, as when its machine dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a relay child left behind


class Errors:
    """Every HTTP 5xx seen anywhere in the run (there must be none)."""

    def __init__(self) -> None:
        self.server_errors: list[str] = []

    def check(self, status: int, what: str) -> None:
        if status >= 500:
            self.server_errors.append(f"{what}: HTTP {status}")


class App:
    """One phone's app: a long poll held on its node, re-sent as soon as it returns; when its
    node stops answering it tries the other one (what a load balancer in front would do)."""

    def __init__(self, phone: str, node: int, ports: list[int], errors: Errors) -> None:
        self.phone, self.node, self._ports, self._errors = phone, node, ports, errors
        self.conn = Conn(ports[node])
        self.probes: list[int] = []
        self.failed_over_at: float | None = None
        self.reconnected_at: float | None = None
        self.refused: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        body = {"acc": self.phone, "device_id": DEVICE, "clidata": "chaos"}
        while not stop.is_set():
            try:
                status, answer = await self.conn.request("POST", POLL, body)
            except TRANSPORT_ERRORS:
                self.conn.close()
                if self.failed_over_at is None:
                    self.failed_over_at = time.monotonic()
                self.node = 1 - self.node
                self.conn = Conn(self._ports[self.node])
                await asyncio.sleep(0.05)
                continue
            self._errors.check(status, "poll")
            if answer.get("status") == "ok" or answer.get("reason") == "overtime":
                if self.failed_over_at is not None and self.reconnected_at is None:
                    self.reconnected_at = time.monotonic()
                for event in answer.get("data", []):
                    if event.get("event") == EVENT:
                        self.probes.append(int(event["seq"]))
            else:
                reason = str(answer.get("reason"))
                self.refused[reason] = self.refused.get(reason, 0) + 1
                await asyncio.sleep(0.2)  # service_not_available: the app backs off a little
        self.conn.close()


class Call:
    """An answered app-to-app call on one node: its RTP sockets and status reads."""

    def __init__(self, node: int, port: int, caller: str, callee: str) -> None:
        self.node, self.port, self.caller, self.callee = node, port, caller, callee
        self.sid = ""
        self.caller_rtp: RtpSocket | None = None
        self.callee_rtp: RtpSocket | None = None
        self.to_caller_leg: tuple[str, int] = ("", 0)
        self.to_callee_leg: tuple[str, int] = ("", 0)
        self.statuses: list[tuple[float, str]] = []
        """(when, peer_status or the failure reason) of every status read."""
        self.seq = 0
        self.alive = True
        self.failure = ""
        self.steps_ms: dict[str, int] = {}
        """Milliseconds from the start request to its answer, to the answer's, to RTP heard."""

    async def establish(self, errors: Errors, timeout: float = 5.0) -> bool:
        """Start and answer the call and see one RTP packet relayed each way."""
        conn = Conn(self.port)
        self.caller_rtp, self.callee_rtp = await RtpSocket.open(), await RtpSocket.open()
        began = time.monotonic()
        try:
            status, started = await conn.request(
                "POST", CALLS, start_body(self.caller, self.callee, self.caller_rtp.port, "p2p")
            )
            errors.check(status, "call start")
            if started.get("status") != "ok":
                self.failure = f"start: {started.get('reason')}"
                return False
            self.sid = started["session_id"]
            self.steps_ms["start"] = round((time.monotonic() - began) * 1e3)
            status, answered = await conn.request("POST", "/lwork/mobile/p2p_answer",
                answer_body(self.sid, self.caller, self.callee, self.callee_rtp.port))  # fmt: skip
            errors.check(status, "answer")
            if answered.get("status") != "ok":
                self.failure = f"answer: {answered.get('reason')}"
                return False
            self.steps_ms["answer"] = round((time.monotonic() - began) * 1e3)
            self.to_caller_leg = (started["ip"], started["port"])
            self.to_callee_leg = (answered["ip"], answered["port"])
            heard = asyncio.gather(self.caller_rtp.next_packet(), self.callee_rtp.next_packet())
            self.send_rtp()
            await asyncio.wait_for(heard, timeout)
            self.steps_ms["media_both_ways"] = round((time.monotonic() - began) * 1e3)
            return True
        except (*TRANSPORT_ERRORS, TimeoutError) as exc:
            self.failure = type(exc).__name__
            return False
        finally:
            conn.close()

    def send_rtp(self) -> None:
        if self.caller_rtp is None or self.callee_rtp is None or not self.sid:
            return
        self.seq += 1
        self.caller_rtp.send(self.to_caller_leg, self.seq, 0x10000 + hash(self.sid) % 0xFFFF)
        self.callee_rtp.send(self.to_callee_leg, self.seq, 0x20000 + hash(self.sid) % 0xFFFF)

    def received(self) -> tuple[int, int]:
        assert self.caller_rtp is not None and self.callee_rtp is not None
        return self.caller_rtp.received, self.callee_rtp.received

    async def read_status(self, stop: asyncio.Event, errors: Errors) -> None:
        """The caller's app reads the call's status every second, as the apps do."""
        conn = Conn(self.port)
        try:
            while not stop.is_set() and self.alive:
                try:
                    status, answer = await conn.request("GET", f"{CALLS}?session_id={self.sid}")
                except TRANSPORT_ERRORS:
                    conn.close()
                    self.statuses.append((time.monotonic(), "no_answer"))
                    await asyncio.sleep(1)
                    continue
                errors.check(status, "status")
                self.statuses.append(
                    (time.monotonic(), answer.get("peer_status") or str(answer.get("reason")))
                )
                await asyncio.sleep(1)
        finally:
            conn.close()

    async def hang_up(self) -> None:
        conn = Conn(self.port)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await conn.request("DELETE", f"{CALLS}?session_id={self.sid}")
        conn.close()

    def close(self) -> None:
        for sock in (self.caller_rtp, self.callee_rtp):
            if sock is not None:
                sock.close()


async def rtp_clock(calls: list[Call], stop: asyncio.Event, interval: float = 0.1) -> None:
    """One packet each way per call every ``interval`` (paced: no burst of all calls at once)."""
    while not stop.is_set():
        began = time.monotonic()
        for n, call in enumerate(calls):
            if call.alive:
                call.send_rtp()
            if n % 50 == 49:
                await asyncio.sleep(0)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))


async def new_call_works(
    port: int, caller: str, callee: str, errors: Errors, refusals: dict[str, int]
) -> dict[str, int] | None:
    """A new app-to-app call through ``port``: started, answered, RTP relayed both ways, hung
    up; its steps' times (None: it failed, and why is counted in ``refusals``)."""
    call = Call(0, port, caller, callee)
    try:
        ok = await asyncio.wait_for(call.establish(errors, timeout=2.0), 8)
    except TimeoutError:
        ok = False
    finally:
        call.close()
    if call.sid:
        await call.hang_up()
    if not ok:
        why = call.failure or "timeout"
        refusals[why] = refusals.get(why, 0) + 1
    return call.steps_ms if ok else None


async def first_new_call(
    ports: list[int], pairs: list[tuple[str, str]], errors: Errors, since: float, limit: float
) -> tuple[float | None, dict[str, int], dict[str, int]]:
    """Seconds from ``since`` to the first new call that worked (None: none within ``limit``),
    trying the given nodes in turn every 0.1 s; the attempts that failed before it, counted by
    what they failed on, and its steps' times."""
    refusals: dict[str, int] = {}
    for n, (caller, callee) in enumerate(pairs):
        if time.monotonic() - since > limit:
            break
        steps = await new_call_works(ports[n % len(ports)], caller, callee, errors, refusals)
        if steps is not None:
            return time.monotonic() - since, refusals, steps
        await asyncio.sleep(0.1)
    return None, refusals, {}


@contextlib.asynccontextmanager
async def notifier(settings: dict[str, Any], tmp: Path) -> AsyncIterator[Any]:
    """An lwork in this process (not serving HTTP) whose push service raises events into the
    apps' mailboxes, as a node would. Its lease is so long it never settles anyone's records:
    the survivor alone must do that."""
    calls = {**settings["calls"], "cdr_lease_s": 10**6}
    media = {**settings["media"], "relay_mode": "inline", "port_min": 20000, "port_max": 20998}
    # its own database and bus errors during the outages are expected: not logged
    config = Settings(**{**settings, "node": "chaos-notifier", "data_dir": str(tmp / "notifier"),
                         "calls": calls, "media": media, "log_level": "CRITICAL"})  # fmt: skip
    app, services = build_app(config)
    async with app.router.lifespan_context(app):
        yield services.push


async def raise_event(push: Any, phone: str, seq: int, give_up_s: float = 30.0) -> int:
    """Raise one probe event for ``phone``, retrying while the database refuses it (an event the
    raiser was told failed is not lost: it knows to retry); the number of refusals."""
    refused = 0
    deadline = time.monotonic() + give_up_s
    while True:
        try:
            await asyncio.wait_for(push.notify(phone, {"event": EVENT, "seq": seq}), 10)
            return refused
        except Exception:  # the database or bus is down: the write was refused
            refused += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def make_accounts(
    settings: dict[str, Any], tmp: Path, phones: list[str], paying: list[str]
) -> None:
    """Accounts with a live session, all reachable; ``paying`` ones with coins for phone calls."""
    media = {**settings["media"], "relay_mode": "inline", "port_min": 21000, "port_max": 21998}
    config = Settings(**{**settings, "node": "chaos-setup", "data_dir": str(tmp / "setup"),
                         "media": media, "log_level": "CRITICAL"})  # fmt: skip
    await populate(config, phones + paying, set(phones + paying))
    if paying:
        await top_up(config, paying, 100_000.0)


async def phone_call(port: int, caller: str, n: int, errors: Errors) -> str | None:
    """A call from ``caller``'s app to a phone number through the trunk, once the carrier
    answered it (its session id; None: it did not come up)."""
    conn = Conn(port)
    try:
        status, started = await conn.request(
            "POST", CALLS, start_body(caller, f"020794{n:05d}", 4000, "pstn"))  # fmt: skip
        errors.check(status, "phone call start")
        if started.get("status") != "ok":
            return None
        sid: str = started["session_id"]
        for _ in range(200):
            status, answer = await conn.request("GET", f"{CALLS}?session_id={sid}")
            errors.check(status, "phone call status")
            if answer.get("peer_status") == "hookoff":
                return sid
            await asyncio.sleep(0.05)
        return None
    except TRANSPORT_ERRORS:
        return None
    finally:
        conn.close()
