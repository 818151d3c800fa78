"""``lwork sim buy`` (#14 done-when): the command buys a coin pack with the test provider on a
running server and sees it in ``get_coin`` and ``get_recharges``."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from test_alipay import PHONE, PWD, coins, login

from lwork.cli import main
from lwork.storage.tables import orders

SECRET = "test-secret-0123456789"


async def test_sim_buy_credits_a_coin_pack_seen_in_get_coin_and_get_recharges(
    server_factory: Callable[..., Any],
) -> None:
    payments = {"test": {"enabled": True, "secret": SECRET}}
    async with server_factory(payments=payments, billing={"signup_gift_coins": 0}) as server:
        await login(server)  # registers the account
        out = io.StringIO()
        argv = ["sim", "buy", "--server", server.url, "--account", PHONE, "--pwd", PWD,
                "--product", "coins_300", "--secret", SECRET]  # fmt: skip
        with contextlib.redirect_stdout(out):
            code = await asyncio.to_thread(main, argv)
        assert code == 0, out.getvalue()
        assert "coins 0 -> 300" in out.getvalue()
        # The app logs in again on its own device (the sim's login replaced its session)
        r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "d"})
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        assert await coins(server, auth) == 300
        r = await server.post("/lwork/mobile/get_recharges", {"uuid": PHONE, "device_id": "d"},
                              headers=auth)  # fmt: skip
        [recharge] = r.json()["recharges"]
        assert (recharge["money"], recharge["coins"]) == (30, 300)
        # A wrong secret is refused by the server and the command says so
        argv[-1] = "wrong-secret-0123456789"
        assert await asyncio.to_thread(main, argv) == 1
        async with server.services.engine.connect() as conn:
            paid = await conn.scalar(select(func.count()).where(orders.c.state == "paid"))
        assert paid == 1
