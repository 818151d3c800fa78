"""``lwork sim buy``: an app buys a product with the ``test`` provider on a running server, as a
staging tester would: log in, ``get_payid``, pay (the signed notification the test provider
takes), then read ``get_coin`` and ``get_recharges``. ``money`` is the product's price in the
server's catalogue (a different amount flags the order, as a real provider's would)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from lwork.payments.testpay import SIGNATURE_HEADER, sign
from lwork.sim.phone import SimError


@dataclass(frozen=True, slots=True)
class Purchase:
    payid: str
    coins_before: float
    coins_after: float
    recharges: list[dict[str, Any]]


async def buy(
    server: str,
    phone: str,
    password: str,
    secret: str,
    product_id: str,
    money: str,
    say: Callable[[str], None] = print,
) -> Purchase:
    base, device = server.rstrip("/"), "sim-buyer"
    async with httpx.AsyncClient(timeout=30) as http:

        async def ask(path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
            answer: dict[str, Any] = (await http.post(base + path, json=body, **kw)).json()
            if answer.get("status") != "ok":
                raise SimError(f"{path}: {answer}")
            return answer

        login = await ask("/lwork/mobile/login", {"acc": phone, "pwd": password,
                                                  "device_id": device})  # fmt: skip
        auth = {"Authorization": f"Bearer {login['token']}"}
        mine = {"uuid": phone, "device_id": device}
        before = (await ask("/lwork/mobile/get_coin", mine, headers=auth))["coins"]
        wanted = {**mine, "product_id": product_id, "pay_type": "test"}
        order = await ask("/lwork/mobile/get_payid", wanted, headers=auth)
        say(f"{phone}: order {order['payid']} opened for {product_id}")
        paid = msgspec.json.encode({"payid": order["payid"], "money": money,
                                    "trade_no": "SIM" + secrets.token_hex(8)})  # fmt: skip
        r = await http.post(base + "/lwork/pay/notify/test", content=paid,
                            headers={SIGNATURE_HEADER: sign(secret.encode(), paid)})  # fmt: skip
        if r.text != "success":
            raise SimError(f"the notification was answered {r.status_code} {r.text}")
        say(f"{phone}: paid {money} yuan")
        after = (await ask("/lwork/mobile/get_coin", mine, headers=auth))["coins"]
        recharges = (await ask("/lwork/mobile/get_recharges", mine, headers=auth))["recharges"]
        say(f"{phone}: coins {before} -> {after}; recharges: {recharges}")
    return Purchase(order["payid"], before, after, recharges)
