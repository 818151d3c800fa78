"""Phone calls through the API for ``bench.sip_bench``: the trunk's settings, callers with a
balance, and open-loop drivers that count every way a call can fail."""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import time
from pathlib import Path
from typing import Any

from bench._calls_common import CALLS, Pool, base_overrides, caller_phone, start_body
from lwork.app import build_app
from lwork.settings import Settings

MIN_CALLERS = 50
TOP_UP_COINS = 1_000_000.0
"""Each caller's balance: at 3 coins a started minute it pays for 333,333 bench calls."""
CALL_TIMEOUT_S = 30.0
"""A call whose requests take longer than this counts as failed (``timeout``)."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def trunk_overrides(tmp: Path, carrier_port: int, concurrent: int) -> dict[str, Any]:
    overrides = base_overrides(tmp)
    overrides["sip"] = {
        "enabled": True, "proxy_port": carrier_port, "listen_port": 0, "options_interval_s": 0,
        "trusted_sources": ["127.0.0.1"], "number_rules": [["00", "+"], ["0", "+44"]],
        "default_country_code": "44", "max_concurrent_calls": concurrent + 500,
        "calls_per_second": 5000.0,
    }  # fmt: skip
    # Concurrent calls take this many relay port pairs at once (two legs each).
    overrides["media"] = {**overrides["media"], "port_min": 20000, "port_max": 40000}
    return overrides


def callers_for(peak_calls: float, settings: Settings) -> int:
    """Enough callers that ``peak_calls`` calls at once stay within each account's
    ``billing.max_concurrent_paid_calls`` (a further start fails ``balance_not_enough``), with
    room for calls still ending while new ones start."""
    per_account = settings.billing.max_concurrent_paid_calls
    return max(MIN_CALLERS, math.ceil(2 * peak_calls / per_account))


async def top_up(settings: Settings, phones: list[str], coins: float) -> None:
    """Credit each caller as an operator would: ``lwork boss credit PHONE --coins N --ref R``
    (the same command function and billing service, in this process). Calls to phone numbers
    are charged, so without it every call is refused ``balance_not_enough``."""
    from lwork.billing import operator

    app, services = build_app(settings)
    async with app.router.lifespan_context(app):
        for phone in phones:
            args = argparse.Namespace(
                account=phone, coins=coins, gift_coins=0.0, minutes=0,
                ref=f"bench-{phone}", note="sip_bench top-up",
            )  # fmt: skip
            await operator.run("credit", args, services.billing, services.accounts)


class Outcomes:
    def __init__(self) -> None:
        self.start_ms: list[float] = []
        self.started_at: list[float] = []
        self.answered_at: list[float] = []
        self.statuses: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.sids: list[str] = []

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1

    def seen(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def not_up(self) -> int:
        """Calls whose status after the hold was not ``hookoff`` (established)."""
        return sum(n for status, n in self.statuses.items() if status != "hookoff")


async def drive(
    port: int, count: int, rate: float, hold: float, callers: int, hang_up: bool = True
) -> tuple[Outcomes, float]:
    """``count`` phone calls started open-loop at ``rate`` by ``callers`` accounts in turn;
    each held ``hold`` seconds, its status read, then (if ``hang_up``) ended. Returns when all
    are done."""
    pool = Pool(port, 48)
    out = Outcomes()

    async def call(i: int) -> None:
        caller = caller_phone(i % callers)
        callee = f"020794{i % 100000:05d}"
        sent = time.perf_counter()
        out.started_at.append(sent)
        _, started = await pool.request("POST", CALLS, start_body(caller, callee, 4000, "pstn"))
        answered = time.perf_counter()
        out.start_ms.append((answered - sent) * 1e3)
        if started.get("status") != "ok":
            return out.fail(f"start:{started.get('reason')}")
        out.answered_at.append(answered)  # calls started, not refusals
        sid = started["session_id"]
        out.sids.append(sid)
        await asyncio.sleep(hold)
        _, status = await pool.request("GET", f"{CALLS}?session_id={sid}")
        out.seen(status.get("peer_status", "?"))
        if hang_up:
            _, ended = await pool.request("DELETE", f"{CALLS}?session_id={sid}")
            if ended.get("status") != "ok":
                out.fail(f"hangup:{ended.get('reason')}")
        return None

    async def one(i: int) -> None:
        try:
            await asyncio.wait_for(call(i), CALL_TIMEOUT_S + hold)
        except TimeoutError:
            out.fail("timeout")
        except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
            out.fail(type(exc).__name__)

    began = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    pool.close()
    return out, time.perf_counter() - began


async def for_each(port: int, method: str, sids: list[str]) -> dict[str, int]:
    """``method`` (GET: the status, DELETE: hang up) on every call; what came back, counted
    (``peer_status`` for a status, else ``status`` and ``reason``)."""
    pool = Pool(port, 32)
    seen: dict[str, int] = {}

    async def one(sid: str) -> None:
        try:
            _, answer = await asyncio.wait_for(
                pool.request(method, f"{CALLS}?session_id={sid}"), CALL_TIMEOUT_S
            )
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            key = type(exc).__name__
        else:
            key = answer.get("peer_status") or " ".join(
                str(answer[k]) for k in ("status", "reason") if k in answer
            )
        seen[key] = seen.get(key, 0) + 1

    await asyncio.gather(*(one(s) for s in sids))
    pool.close()
    return seen


def carrier_wait_s(failures: dict[str, int]) -> float:
    """How long to let the carrier's sipp finish after the calls: it ends by itself once it has
    seen every call, but calls that failed before reaching it would keep it waiting (it is
    then killed; its statistics file is at most a second old)."""
    return 5.0 if failures else 30.0


def rate_of(times: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (max(times) - min(times))
