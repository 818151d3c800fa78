"""``lwork sim``: two simulated phones calling each other, printing what happens.

``demo`` runs everything in one process (a throw-away lwork on SQLite with the built-in relay);
``call`` drives a running server with two existing accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from lwork.sim.phone import SimPhone, describe

PASSWORD = "e10adc3949ba59abbe56e057f20f883e"


@dataclass
class CallReport:
    caller_statuses: list[str] = field(default_factory=list)
    last_stats: dict[str, Any] = field(default_factory=dict)
    caller_received: int = 0
    callee_received: int = 0
    final_status: str = ""


class CodeCatcher:
    """An SMS provider that keeps the codes, so the demo's phones can register."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def send(self, phone: str, text: str, code: str) -> None:
        self.codes[phone] = code


async def call_between(
    caller: SimPhone, callee: SimPhone, seconds: float, say: Callable[[str], None]
) -> CallReport:
    """Caller calls, callee rings and answers, both send AMR for ``seconds``, caller hangs up."""
    report = CallReport()
    incoming = asyncio.create_task(callee.wait_for_call())
    started = await caller.call(callee.phone)
    sid = started["session_id"]
    caller.start_media((started["ip"], started["port"]))
    opdata = await asyncio.wait_for(incoming, 30)
    await callee.ring(opdata)
    report.caller_statuses.append((await caller.status(sid))["peer_status"])
    answered = await callee.answer(opdata)
    callee.start_media((answered["ip"], answered["port"]))
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await asyncio.sleep(1.0)
        status = await caller.status(sid)
        await callee.status(answered["session_id"])  # the callee's keep-alive
        report.caller_statuses.append(status["peer_status"])
        report.last_stats = status["stats"] or report.last_stats
        say(f"{caller.phone}: {describe(status)} | {callee.phone} received {callee.media.received}")
    await caller.stop_media()
    await callee.stop_media()
    await caller.hangup(sid)
    report.final_status = (await callee.status(answered["session_id"]))["peer_status"]
    report.caller_received = caller.media.received
    report.callee_received = callee.media.received
    say(f"{callee.phone}: call is {report.final_status}; received {report.callee_received} "
        f"packets, {caller.phone} received {report.caller_received}")  # fmt: skip
    return report


@contextlib.asynccontextmanager
async def embedded_server(workdir: Path, catcher: CodeCatcher) -> AsyncIterator[str]:
    from lwork.app import build_app
    from lwork.settings import Settings

    settings = Settings(
        data_dir=workdir,
        log_level="WARNING",
        push={"hold_s": 1},
        media={"relay_mode": "inline", "rtcp_interval_s": 1.0},
        sms={"resend_interval_s": 0},
        auth={"argon2_memory_kib": 8192, "argon2_time_cost": 1},
    )
    app, _ = build_app(settings, sms=catcher)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def demo(seconds: float, say: Callable[[str], None] = print) -> CallReport:
    catcher = CodeCatcher()
    with tempfile.TemporaryDirectory(prefix="lwork-sim-") as workdir:
        async with embedded_server(Path(workdir), catcher) as url:
            say(f"lwork running at {url} (SQLite in {workdir}, built-in relay)")
            async with (
                SimPhone(url, "13800000001", "alice-phone", say) as alice,
                SimPhone(url, "13900000002", "bob-phone", say) as bob,
            ):
                for phone in (alice, bob):
                    await phone.request_code()
                    await phone.register(catcher.codes[phone.phone], PASSWORD)
                    await phone.login(PASSWORD)
                # Both apps come online as real ones do: a long poll, whose address also
                # vouches for what the device spends (CONTRACT §3).
                await asyncio.gather(alice.poll(), bob.poll())
                return await call_between(alice, bob, seconds, say)


async def call_on_server(
    server: str, caller: tuple[str, str], callee: tuple[str, str], seconds: float,
    say: Callable[[str], None] = print,
) -> CallReport:  # fmt: skip
    async with (
        SimPhone(server, caller[0], "sim-caller", say) as a,
        SimPhone(server, callee[0], "sim-callee", say) as b,
    ):
        await a.login(caller[1])
        await b.login(callee[1])
        await asyncio.gather(a.poll(), b.poll())
        return await call_between(a, b, seconds, say)
