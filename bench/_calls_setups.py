"""App-to-app call set-ups for ``bench.calls_bench``: caller/callee pairs in a closed loop, and
the same pairs doing plain round trips against ``/bare`` as the reference."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench._calls_common import (
    CALLS,
    DEVICE,
    Conn,
    RtpSocket,
    answer_body,
    callee_phone,
    caller_phone,
    expect,
    start_body,
)
from bench._load import build_request
from bench.http_server import BARE_PATH

POLL = "/channel/push_service"


class Pair:
    """One caller and one callee app, each with its own connection and RTP socket."""

    def __init__(self, port: int, i: int) -> None:
        self.caller, self.callee = caller_phone(i), callee_phone(i)
        self.caller_http, self.callee_http = Conn(port), Conn(port)
        self.caller_rtp: RtpSocket | None = None
        self.callee_rtp: RtpSocket | None = None
        self.setups: list[float] = []
        self.failures: dict[str, int] = {}

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1

    async def run(self, deadline: float) -> None:
        self.caller_rtp, self.callee_rtp = await RtpSocket.open(), await RtpSocket.open()
        try:
            while time.perf_counter() < deadline:
                try:
                    await self.one_call()
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    self.fail(type(exc).__name__)
                    self.caller_http.close()
                    self.callee_http.close()
        finally:
            self.caller_rtp.close()
            self.callee_rtp.close()
            self.caller_http.close()
            self.callee_http.close()

    def _poll(self) -> asyncio.Task[tuple[int, dict[str, Any]]]:
        body = {"acc": self.callee, "device_id": DEVICE}
        return asyncio.create_task(self.callee_http.request("POST", POLL, body))

    async def one_call(self) -> None:
        assert self.caller_rtp is not None and self.callee_rtp is not None
        poll = self._poll()
        await asyncio.sleep(0.001)  # the poll is on the wire, so it is held when the call starts
        start = time.perf_counter()
        body = start_body(self.caller, self.callee, self.caller_rtp.port, "p2p")
        _, started = await self.caller_http.request("POST", CALLS, body)
        if started.get("status") != "ok":
            poll.cancel()
            self.callee_http.close()
            return self.fail(f"start:{started.get('reason')}")
        sid = started["session_id"]
        for _ in range(5):
            _, polled = await poll
            opdata = next(
                (e["opdata"] for e in polled.get("data", [])
                 if e.get("event") == "p2p_inform_called" and e["opdata"]["session_id"] == sid),
                None,
            )  # fmt: skip
            if opdata is not None:
                break
            poll = self._poll()
        else:
            await self.caller_http.request("DELETE", f"{CALLS}?session_id={sid}")
            return self.fail("no_invitation")
        _, rung = await self.callee_http.request(
            "POST", "/lwork/mobile/p2p_ringing", {"opdata": opdata}
        )
        body = answer_body(sid, self.caller, self.callee, self.callee_rtp.port)
        _, answered = await self.callee_http.request("POST", "/lwork/mobile/p2p_answer", body)
        if rung.get("status") != "ok" or answered.get("status") != "ok":
            await self.caller_http.request("DELETE", f"{CALLS}?session_id={sid}")
            return self.fail(f"answer:{answered.get('reason')}")
        heard_by_caller = self.caller_rtp.next_packet()
        heard_by_callee = self.callee_rtp.next_packet()
        self.caller_rtp.send((started["ip"], started["port"]), 0, 0xCA11)
        self.callee_rtp.send((answered["ip"], answered["port"]), 0, 0xCA1E)
        try:
            await asyncio.wait_for(asyncio.gather(heard_by_caller, heard_by_callee), 5)
        except TimeoutError:
            self.fail("media")
        else:
            self.setups.append(time.perf_counter() - start)
        _, ended = await self.caller_http.request("DELETE", f"{CALLS}?session_id={sid}")
        if ended.get("status") != "ok":
            self.fail("hangup")
        return None


async def bare_cycles(port: int, pairs: int, seconds: float) -> tuple[list[float], float]:
    """Each pair's loop of 5 sequential ``GET /bare`` round trips, one connection each."""
    request = build_request("GET", BARE_PATH)
    deadline = time.perf_counter() + seconds
    cycles: list[float] = []

    async def worker() -> None:
        conn = Conn(port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                for _ in range(5):
                    expect(await conn.raw(request) == 200, "bare")
                cycles.append(time.perf_counter() - start)
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(pairs)))
    return cycles, time.perf_counter() - began


async def setups(port: int, pairs: int, seconds: float) -> tuple[list[Pair], float]:
    group = [Pair(port, i) for i in range(pairs)]
    began = time.perf_counter()
    await asyncio.gather(*(p.run(began + seconds) for p in group))
    return group, time.perf_counter() - began
