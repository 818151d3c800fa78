"""The client side of ``bench.push_bench``: many idle long polls from one process, on raw sockets.

    python -m bench._push_clients PORT [SOURCE_ADDRESS [SERVER_WORKERS]]

Its connections come from SOURCE_ADDRESS (127.0.0.2, ...: one loopback address has ~28,000
ephemeral ports toward one server port). With SERVER_WORKERS > 1 (``http.workers``) the held
count is the sum of every worker's, read over fresh connections until each has answered.

Driven by ``bench.push_bench`` through stdin/stdout, one JSON object per line each way:

* ``{"cmd": "open", "devices": [[uuid, device_id], ...]}``: one connection per device, each
  sending ``POST /channel/push_service``; answers once every request is written;
* ``{"cmd": "latency", "batches": [[uuid, ...], ...], "expect_held": N, "limit_s": S}``: per
  batch, open again the polls whose connection was lost, wait (at most ``HELD_WAIT_S``) until
  the server holds N polls, trigger ``/_bench/notify`` for the batch, time each trigger ->
  poll-answer (same monotonic clock as the trigger), then poll again; batches not begun within
  ``limit_s`` (if given) are not measured, and the answer says how many;
* ``{"cmd": "throughput", "seconds": S, "workers": W, "batch": B}``: W loops, each triggering
  B of this process's devices and re-polling them once their event arrives, for S seconds;
* ``{"cmd": "check"}``: errors and answers that arrived while nothing was expected.

The trigger goes out from the process that holds the polls, so both ends of a latency are read
from the same clock. Responses are parsed with Content-Length only (uvicorn always sends it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
import time
from collections import deque
from typing import Any, cast

from bench._load import HOST, build_request
from bench._push_server import NOTIFY_PATH, raise_fd_limit

POLL_PATH = "/channel/push_service"
CONNECT_CONCURRENCY = 256
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
"""Linux's option (since 4.2): a bind to port 0 takes no port until connect. Without it, each
bind looks for a port free of every socket bound to the address, a search that grows with the
connections already open: at 15,000 per source address it was most of the clients' CPU (71 %
system time) and the ramp slowed to ~150 polls/s."""
ANSWER_TIMEOUT_S = 30.0
HELD_WAIT_S = 2.0
"""How long a latency batch waits for every poll to be held. Not longer: a poll the server never
holds (it is re-polling, or was lost and is being opened again) would otherwise cost every batch
the whole wait: 300 batches (100 of ten devices, 200 single events), 50 minutes."""

Answer = tuple[float, int, bytes]


class Stats:
    def __init__(self) -> None:
        self.errors = 0
        self.samples: list[str] = []

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(what[:300])


class HttpConnection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection whose answers queue up with their arrival time.

    With a ``request`` it is a long poll: it sends ``request`` again as soon as an answer
    arrives, like the app."""

    def __init__(self, stats: Stats, request: bytes = b"") -> None:
        self.stats = stats
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._inbox: deque[Answer] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._buf += data
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).lower()
            at = head.find(b"content-length:")
            if at < 0:
                self.stats.error(f"answer without content-length: {head!r}")
                self._buf.clear()
                return
            length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self._buf) < end + 4 + length:
                return
            body = bytes(self._buf[end + 4 : end + 4 + length])
            del self._buf[: end + 4 + length]
            self._inbox.append((now, int(head[9:12]), body))
            if self.request and not self.closed:
                # As the app does: poll again at once, whatever the answer was.
                self.send()
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def send(self, raw: bytes | None = None) -> None:
        assert self.transport is not None
        self.transport.write(self.request if raw is None else raw)

    def drain(self) -> list[Answer]:
        """The answers that arrived while nobody was waiting for one."""
        answers = list(self._inbox)
        self._inbox.clear()
        return answers

    async def answer(self, timeout: float = ANSWER_TIMEOUT_S) -> Answer:
        while not self._inbox:
            if self.closed:
                raise ConnectionError("connection closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
        return self._inbox.popleft()


def poll_request(uuid: str, device_id: str) -> bytes:
    body = {"acc": uuid, "device_id": device_id, "self_phone": uuid, "clidata": {"bench": 1}}
    return build_request("POST", POLL_PATH, json.dumps(body, separators=(",", ":")).encode())


class Clients:
    def __init__(self, port: int, source: str | None = None, workers: int = 1) -> None:
        self.port = port
        self.source = source
        self.workers = workers
        self.repolls = 0
        self.stats = Stats()
        self.polls: dict[str, HttpConnection] = {}
        self._seq = itertools.count(1 + 10**9 * (port % 7))
        self._trigger: HttpConnection | None = None
        self.duplicates = 0
        self.shake_hands = 0
        self.lost = 0
        """Polls whose connection closed under them, opened again since."""

    async def _connect(self, request: bytes = b"") -> HttpConnection:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if self.source:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((self.source, 0))
            await loop.sock_connect(sock, (HOST, self.port))
        except BaseException:
            sock.close()
            raise
        _, conn = await loop.create_connection(
            lambda: HttpConnection(self.stats, request), sock=sock
        )
        return conn

    async def open(self, devices: list[list[str]]) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(uuid: str, device_id: str) -> None:
            async with gate:
                try:
                    conn = await self._connect(poll_request(uuid, device_id))
                except OSError as exc:
                    self.stats.error(f"connect: {exc}")
                    return
                conn.send()
                self.polls[uuid] = conn

        await asyncio.gather(*(one(uuid, device_id) for uuid, device_id in devices))
        return {"open": len(self.polls), "errors": self.stats.errors}

    async def _reopen_lost(self) -> None:
        """A poll whose connection was closed (by the server, or reset by the kernel when its
        accept queue overflowed) is opened again, as the app would: the server is then asked to
        hold every device again. Each counts as ``closed`` in ``check``: an error of the run."""
        lost = [(uuid, conn) for uuid, conn in self.polls.items() if conn.closed]
        for uuid, conn in lost:
            try:
                fresh = await self._connect(conn.request)
            except OSError as exc:
                self.stats.error(f"reconnect: {exc}")
                continue
            fresh.send()
            self.polls[uuid] = fresh
            self.lost += 1

    async def _call(self, raw: bytes) -> tuple[int, bytes]:
        if self._trigger is None or self._trigger.closed:
            self._trigger = await self._connect()
        self._trigger.send(raw)
        _, status, body = await self._trigger.answer()
        return status, body

    async def held(self) -> int:
        if self.workers == 1:
            status, body = await self._call(build_request("GET", "/metrics"))
            held: int = json.loads(body)["held_polls"]
            return held
        by_worker: dict[int, int] = {}
        for _ in range(50 * self.workers):
            conn = await self._connect()
            conn.send(build_request("GET", "/metrics"))
            _, _, body = await conn.answer()
            assert conn.transport is not None
            conn.transport.close()
            metrics = json.loads(body)
            by_worker[metrics["worker"]] = metrics["held_polls"]
            if len(by_worker) == self.workers:
                break
        return sum(by_worker.values())

    async def wait_held(self, expect: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while (held := await self.held()) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return held

    def _trigger_request(self, events: list[tuple[str, int]]) -> bytes:
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        return build_request("POST", NOTIFY_PATH, body)

    async def _event_arrival(self, conn: HttpConnection, seq: int) -> float:
        """When the answer carrying event ``seq`` arrived; polls again after any other answer."""
        while True:
            arrived, status, body = await conn.answer()
            if status != 200:
                self.stats.error(f"poll answered {status}: {body!r}")
                raise ConnectionError(status)
            data = json.loads(body)
            if data.get("status") != "ok":
                self.stats.error(f"poll answered {body!r}")
                raise ConnectionError(body)
            seqs = [event.get("seq") for event in data["data"]]
            if seq in seqs:
                return arrived
            if seqs == [None]:
                self.shake_hands += 1
            else:
                self.duplicates += 1  # an earlier event, delivered again (at least once)

    async def _notify(self, uuids: list[str]) -> list[float]:
        """Trigger one event for each of ``uuids``; seconds from the trigger to each arrival."""
        events = [(uuid, next(self._seq)) for uuid in uuids]
        raw = self._trigger_request(events)
        if self._trigger is None or self._trigger.closed:
            self._trigger = await self._connect()
        trigger = self._trigger
        start = time.monotonic()
        trigger.send(raw)
        arrivals = await asyncio.gather(
            *(self._event_arrival(self.polls[uuid], seq) for uuid, seq in events),
            return_exceptions=True,
        )
        _, status, body = await trigger.answer()
        if status != 200 or json.loads(body).get("notified") != len(uuids):
            self.stats.error(f"trigger answered {status}: {body!r}")
        latencies = []
        for arrived in arrivals:
            if isinstance(arrived, BaseException):
                self.stats.error(f"no event: {arrived!r}")
            else:
                latencies.append(arrived - start)
        return latencies

    async def latency(
        self, batches: list[list[str]], expect_held: int, limit_s: float | None = None
    ) -> dict[str, Any]:
        latencies: list[float] = []
        short = 0
        deadline = time.monotonic() + limit_s if limit_s is not None else None
        measured = 0
        held = 0
        for batch in batches:
            if deadline is not None and time.monotonic() > deadline:
                break
            await self._reopen_lost()
            if (held := await self.wait_held(expect_held, HELD_WAIT_S)) < expect_held:
                short += 1
            latencies += await self._notify(batch)
            measured += 1
        await self._reopen_lost()
        await self.wait_held(expect_held, HELD_WAIT_S)
        return {
            "latencies": latencies,
            "batches_short_of_held": short,
            "batches_not_measured": len(batches) - measured,
            "last_held": held,
        }

    async def throughput(self, seconds: float, workers: int, batch: int) -> dict[str, Any]:
        ready = deque(self.polls)
        delivered = 0
        latencies: list[float] = []
        trigger_conns = [await self._connect() for _ in range(workers)]
        start = time.monotonic()
        deadline = start + seconds

        async def worker(trigger: HttpConnection) -> None:
            nonlocal delivered
            while time.monotonic() < deadline and len(ready) >= batch:
                uuids = [ready.popleft() for _ in range(batch)]
                events = [(uuid, next(self._seq)) for uuid in uuids]
                sent = time.monotonic()
                trigger.send(self._trigger_request(events))
                arrivals = await asyncio.gather(
                    *(self._event_arrival(self.polls[uuid], seq) for uuid, seq in events),
                    return_exceptions=True,
                )
                _, status, body = await trigger.answer()
                if status != 200:
                    self.stats.error(f"trigger answered {status}: {body!r}")
                for uuid, arrived in zip(uuids, arrivals, strict=True):
                    if isinstance(arrived, BaseException):
                        self.stats.error(f"no event: {arrived!r}")
                        continue
                    delivered += 1
                    latencies.append(arrived - sent)
                    ready.append(uuid)

        await asyncio.gather(*(worker(conn) for conn in trigger_conns))
        elapsed = time.monotonic() - start
        for conn in trigger_conns:
            assert conn.transport is not None
            conn.transport.close()
        return {"delivered": delivered, "elapsed": elapsed, "latencies": latencies}

    def check(self) -> dict[str, Any]:
        """Drain the answers nobody waited for: events again (at least once) or errors."""
        for conn in self.polls.values():
            for _, status, body in conn.drain():
                data = json.loads(body) if status == 200 else {}
                events = data.get("data") if data.get("status") == "ok" else None
                if events and all("seq" in event for event in events):
                    self.duplicates += 1
                elif events == [{"event": "shake_hand"}]:
                    self.repolls += 1  # the hold ended without events: the app polls again
                else:
                    self.stats.error(f"unexpected answer {status}: {body!r}")
        return {
            "errors": self.stats.errors,
            "error_samples": self.stats.samples,
            "closed": self.lost + sum(conn.closed for conn in self.polls.values()),
            "duplicates": self.duplicates,
            "shake_hands": self.shake_hands,
            "repolls": self.repolls,
        }

    async def run(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command["cmd"]
        if cmd == "open":
            return await self.open(command["devices"])
        if cmd == "latency":
            return await self.latency(
                command["batches"], command["expect_held"], command.get("limit_s")
            )
        if cmd == "throughput":
            return await self.throughput(command["seconds"], command["workers"], command["batch"])
        if cmd == "check":
            return self.check()
        raise ValueError(f"unknown command {cmd!r}")


async def serve(port: int, source: str | None, workers: int) -> None:
    clients = Clients(port, source, workers)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        reply = await clients.run(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for conn in clients.polls.values():
        if conn.transport is not None:
            conn.transport.abort()


def main(port: int, source: str | None, workers: int) -> None:
    raise_fd_limit()
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(port, source, workers))
    except ImportError:
        asyncio.run(serve(port, source, workers))


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 4:
        sys.exit("usage: python -m bench._push_clients PORT [SOURCE_ADDRESS [SERVER_WORKERS]]")
    main(
        int(sys.argv[1]),
        sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None,
        int(sys.argv[3]) if len(sys.argv) > 3 else 1,
    )
