"""original-behavior.md §12, rows 11–13 (payments), each attack through real HTTP against a fake
Alipay holding its own key (issue #13; the other rows are in test_original_weaknesses.py)."""

from __future__ import annotations

import httpx
from test_alipay import alipay, coins, login, open_order, state  # noqa: F401 (alipay: fixture)

from conftest import LiveServer
from fakes.alipay import FakeAlipay, new_key

NOTIFY = "/lwork/pay/notify/alipay"


async def test_row_11_neither_a_client_chosen_price_nor_a_forged_notification_credits(
    alipay: tuple[LiveServer, FakeAlipay],  # noqa: F811
) -> None:
    server, fake = alipay
    auth = await login(server)
    free = {"uuid": "13800138000", "device_id": "d", "money": "1", "coins": 100000}
    answer = (await server.post("/lwork/mobile/get_payid", free, headers=auth)).json()
    assert answer == {"status": "failed", "reason": "error_params"}  # the original sold these
    payid = await open_order(server, auth, fake)
    forged = fake.sign(fake.notification(payid, "30.00"), key=new_key())
    cheap = fake.notification(payid, "0.01")  # signed, but a cent for 30 yuan
    assert (await fake.post(server.url + NOTIFY, forged)).text == "failure"
    assert (await fake.post(server.url + NOTIFY, cheap)).text == "success"  # taken, flagged
    assert await coins(server, auth) == 0
    assert (await state(server, payid))[0] == "flagged"


async def test_row_12_no_answer_carries_a_payment_secret(
    alipay: tuple[LiveServer, FakeAlipay],  # noqa: F811
) -> None:
    server, fake = alipay
    auth = await login(server)
    body = {"uuid": "13800138000", "device_id": "d", "money": "30.00", "coins": 300}
    answer = await server.post("/lwork/mobile/get_payid", body, headers=auth)
    secrets = server.settings.payments.alipay.app_private_key.get_secret_value()
    key_lines = [line for line in secrets.splitlines() if line and not line.startswith("-----")]
    assert key_lines and not any(line in answer.text for line in key_lines)
    assert "PRIVATE KEY" not in answer.text
    assert set(answer.json()) == {"status", "payid", "uuid", "alipay_order"}


async def test_row_13_every_notification_is_acknowledged_never_a_500(
    alipay: tuple[LiveServer, FakeAlipay],  # noqa: F811
) -> None:
    server, fake = alipay
    auth = await login(server)
    payid = await open_order(server, auth, fake)
    paid = fake.notification(payid, "30.00")
    for _ in range(3):  # the retries of one payment: each acknowledged, so Alipay stops
        r = await fake.post(server.url + NOTIFY, paid, tries=1)
        assert (r.status_code, r.text) == (200, "success")
    async with httpx.AsyncClient(timeout=10) as client:
        for garbage in (b"", b"\xff\x00", b"a=" + b"x" * 5000, b"sign=&sign_type=RSA2"):
            r = await client.post(server.url + NOTIFY, content=garbage, headers={
                "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            assert r.status_code < 500 and r.text == "failure"
    assert await coins(server, auth) == 300
