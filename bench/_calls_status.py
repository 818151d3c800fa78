"""Status-poll load for ``bench.calls_bench``: answered calls made through the API, wrk cycling
over their session ids, and the CPU and UDP drops of the server and its relay meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench._calls_common import (
    CALLS,
    Pool,
    RtpSocket,
    answer_body,
    callee_phone,
    caller_phone,
    children,
    cpu_seconds,
    expect,
    start_body,
    udp_drops,
)
from bench.http_bench import WRK_SCRIPT, run_wrk

WRK_CONNECTIONS = 32
OK_PREFIX = '{"status":"ok"'

_CYCLING_LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


class CpuMeter:
    """CPU time of the server and of its relay child (if any) over the ``with`` blocks, as a
    share of their wall time (1.0 = one core busy), and the datagrams their sockets dropped."""

    def __init__(self, pid: int) -> None:
        self.pids = [pid, *children(pid)]
        self.cpu = [0.0] * len(self.pids)
        self.wall = 0.0
        self._start: list[float] = []
        self.drops = [0] * len(self.pids)
        self._drops_start: list[int] = []
        self._began = 0.0

    def __enter__(self) -> None:
        self._start = [cpu_seconds(p) for p in self.pids]
        self._drops_start = [udp_drops(p) for p in self.pids]
        self._began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._began
        for i, pid in enumerate(self.pids):
            self.cpu[i] += cpu_seconds(pid) - self._start[i]
            self.drops[i] += udp_drops(pid) - self._drops_start[i]

    def shares(self) -> dict[str, float | int]:
        found = {
            "server_cpu_share": round(self.cpu[0] / self.wall, 2),
            "server_udp_drops": self.drops[0],
        }
        if len(self.pids) > 1:
            found["relay_cpu_share"] = round(sum(self.cpu[1:]) / self.wall, 2)
            found["relay_udp_drops"] = sum(self.drops[1:])
        return found


def cycling_script(sids: list[str], directory: Path, name: str = "all") -> Path:
    """A wrk script requesting each call's status in turn, plus wrk_report.lua's summary."""
    paths = ",".join(json.dumps(f"{CALLS}?session_id={sid}") for sid in sids)
    script = directory / f"cycle_status_{name}.lua"
    script.write_text(_CYCLING_LUA % paths + WRK_SCRIPT.read_text())
    return script


def wrk(port: int, script: Path, path: str, seconds: float) -> dict[str, Any]:
    # both the bare endpoint and a live call's status answer {"status":"ok",...}
    env = {**os.environ, "WRK_METHOD": "GET", "WRK_BODY": "", "WRK_OK_PREFIX": OK_PREFIX}
    return run_wrk(port, path, script, WRK_CONNECTIONS, seconds, env)


async def create_calls(port: int, n: int) -> tuple[list[str], dict[str, int]]:
    """``n`` answered app-to-app calls with one RTP packet relayed each way; their caller
    session ids."""
    pool = Pool(port, 16)
    caller_rtp, callee_rtp = await RtpSocket.open(), await RtpSocket.open()
    try:

        async def one(i: int) -> tuple[str, tuple[str, int], tuple[str, int]]:
            caller, callee = caller_phone(i), callee_phone(i)
            _, started = await pool.request(
                "POST", CALLS, start_body(caller, callee, caller_rtp.port, "p2p")
            )
            expect(started.get("status") == "ok", started)
            sid = started["session_id"]
            _, answered = await pool.request(
                "POST",
                "/lwork/mobile/p2p_answer",
                answer_body(sid, caller, callee, callee_rtp.port),
            )
            expect(answered.get("status") == "ok", answered)
            return sid, (started["ip"], started["port"]), (answered["ip"], answered["port"])

        made = await asyncio.gather(*(one(i) for i in range(n)))
        for n_call, (_, caller_relay, callee_relay) in enumerate(made):
            caller_rtp.send(caller_relay, 1, 0x10000 + n_call)
            callee_rtp.send(callee_relay, 1, 0x20000 + n_call)
            if n_call % 50 == 49:
                await asyncio.sleep(0.02)  # paced: a burst would overflow socket buffers
        deadline = time.monotonic() + 20
        while (caller_rtp.received < n or callee_rtp.received < n) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        media = {"caller_received": caller_rtp.received, "callee_received": callee_rtp.received}
        expect(min(media.values()) == n, media)
        sids = [sid for sid, _, _ in made]
        for sid in sids[:5]:  # a status read refreshes the cached statistics in the background
            await pool.request("GET", f"{CALLS}?session_id={sid}")
        await asyncio.sleep(2.1)  # calls.stats_refresh_s
        for sid in sids[:5]:
            await pool.request("GET", f"{CALLS}?session_id={sid}")
        await asyncio.sleep(0.3)
        for sid in sids[:5]:
            _, status = await pool.request("GET", f"{CALLS}?session_id={sid}")
            expect(status["peer_status"] == "p2p_hookoff" and status["stats"]["pr"] == 1, status)
        return sids, media
    finally:
        pool.close()
        caller_rtp.close()
        callee_rtp.close()


async def sweep(port: int, sids: list[str], method: str) -> dict[str, int]:
    """Every call's status (GET) or hang-up (DELETE); counts of what came back."""
    pool = Pool(port, 16)
    seen: dict[str, int] = {}
    try:

        async def one(sid: str) -> None:
            _, answer = await pool.request(method, f"{CALLS}?session_id={sid}")
            key = answer.get("peer_status") or answer.get("status") or "?"
            seen[key] = seen.get(key, 0) + 1

        await asyncio.gather(*(one(sid) for sid in sids))
        return seen
    finally:
        pool.close()
