"""Shared pieces of ``bench.calls_bench`` and ``bench.sip_bench``.

A keep-alive JSON client on raw sockets (httpx would cost more CPU than the server under test),
accounts with live sessions written through lwork's own store, the server process
(``bench.http_server``: lwork and a bare Starlette endpoint in one uvicorn worker) with its
relay child placed on a core of its own, one-socket RTP endpoints, and process CPU accounting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from bench._load import HOST, build_request, read_response, stop_process
from bench.http_bench import can_pin, get, pinned
from lwork.accounts.store import Account, Session
from lwork.app import build_app
from lwork.ids import new_token, token_digest
from lwork.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PWD = "e10adc3949ba59abbe56e057f20f883e"  # md5("123456"), what the apps send
DEVICE = "bench-dev"
CALLS = "/lwork/mobile/voip/calls"
HOUR = 3600.0


def caller_phone(i: int) -> str:
    return f"1380{i:07d}"


def callee_phone(i: int) -> str:
    return f"1390{i:07d}"


def base_overrides(data_dir: Path) -> dict[str, Any]:
    """Defaults except limits and timers that would otherwise measure themselves: the per-IP
    request cap, and the keep-alive/media timeouts that end calls nobody polls."""
    return {
        "data_dir": str(data_dir),
        "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'lwork.db'}"},
        "log_level": "WARNING",
        "sms": {"provider": "log"},
        "http": {"ip_rate_per_minute": 100_000_000},
        "presence": {"window_s": HOUR},
        "calls": {"p2p_fallback_s": 60, "ring_timeout_s": HOUR, "keepalive_s": HOUR},
        "media": {"relay_mode": "process", "media_timeout_s": HOUR},
    }


async def populate(settings: Settings, phones: list[str], polling: set[str]) -> None:
    """Accounts with a live session on ``DEVICE``; those in ``polling`` count as reachable."""
    app, services = build_app(settings)
    async with app.router.lifespan_context(app):
        pwd_hash = await services.passwords.hash(PWD)
        store = services.account_store
        now = time.time()
        for n, phone in enumerate(phones):
            await store.create(Account(phone, phone, f"user{n}", pwd_hash, "common", None), now)
            session = Session(token_digest(new_token()), phone, DEVICE, "android", now)
            await store.start_session(session, now)
            if phone in polling:
                await store.touch_poll(session.token_hash, now, "127.0.0.1")


def expect(condition: bool, detail: object) -> None:
    if not condition:
        raise RuntimeError(f"unexpected answer, the figures would be meaningless: {detail!r}")


# the server process


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def server(
    settings_file: Path, port: int, relay_core: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """``bench.http_server`` pinned to core 0; its relay child (``relay_mode: process``) moved
    to ``relay_core`` once it runs, as production gives the relay a core of its own."""
    cmd = [*pinned(0), sys.executable, "-m", "bench.http_server", str(settings_file), str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if asyncio.run(get(port, "/healthz"))[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)
        if can_pin():
            for child in children(proc.pid):
                os.sched_setaffinity(child, {relay_core})
        yield proc
    finally:
        stop_process(proc)


def write_settings(data_dir: Path, overrides: dict[str, Any]) -> Path:
    path = data_dir / "settings.json"
    path.write_text(json.dumps(overrides))
    return path


# the client


class Conn:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        if self._reader is not None and self._reader.at_eof():
            self.close()  # uvicorn closes keep-alive connections idle for 5 s
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        raw = build_request(method, path, None if body is None else json.dumps(body).encode())
        self._writer.write(raw)
        status, data = await read_response(self._reader)
        return status, cast(dict[str, Any], json.loads(data))

    async def raw(self, raw: bytes) -> int:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._writer.write(raw)
        return (await read_response(self._reader))[0]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Pool:
    """A fixed number of connections shared by many tasks."""

    def __init__(self, port: int, size: int) -> None:
        self._free: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(size):
            self._free.put_nowait(Conn(port))

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        conn = await self._free.get()
        try:
            return await conn.request(method, path, body)
        except BaseException:
            conn.close()
            raise
        finally:
            self._free.put_nowait(conn)

    def close(self) -> None:
        while not self._free.empty():
            self._free.get_nowait().close()


def start_body(caller: str, callee: str, port: int, type_: str) -> dict[str, Any]:
    return {"user_id": caller, "caller_phone": caller, "callee_phone": callee,
            "sdp": {"ip": ["127.0.0.1"], "port": port}, "userclass": "registered",
            "dev_id": DEVICE, "type": type_, "acc": caller, "clidata": {}}  # fmt: skip


def answer_body(sid: str, caller: str, callee: str, port: int) -> dict[str, Any]:
    return {"opdata": {"session_id": sid, "event": "p2p"}, "caller_phone": caller,
            "callee_phone": callee, "sdp": {"ip": ["127.0.0.1"], "port": port},
            "userclass": "", "clidata": {}}  # fmt: skip


# media


class RtpSocket(asyncio.DatagramProtocol):
    """One UDP socket that sends small AMR-sized RTP packets and counts what comes back."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.waiter: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls) -> RtpSocket:
        loop = asyncio.get_running_loop()
        sock = cls()
        await loop.create_datagram_endpoint(lambda: sock, local_addr=(HOST, 0))
        return sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def next_packet(self) -> asyncio.Future[None]:
        """Resolved by the next datagram to arrive."""
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter

    def send(self, relay: tuple[str, int], seq: int, ssrc: int) -> None:
        assert self.transport is not None
        header = struct.pack("!BBHII", 0x80, 102, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc)
        self.transport.sendto(header + bytes(32), relay)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def context(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        **(extra or {}),
    }


def udp_drops(pid: int) -> int:
    """Datagrams dropped (full receive buffer) on the UDP sockets ``pid`` holds: a reply the
    relay sent but the server never read costs the server a retransmission timeout."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    drops += int(fields[-1])
    return drops
