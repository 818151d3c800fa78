"""An administrator's changes from the account page, through real HTTP: end an account's app
sessions, text it a password-reset code (the SMS path, to the fake gateway), credit coins and
minutes once per reference, deactivate and activate a BOSS number, bind and unbind its DID.
Each is one audit row; CSRF, the support role and bad input are refused, also audited; what
was typed comes back escaped; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from lwork.boss.audit import AuditTrail
from lwork.sim.phone import SimPhone

from conftest import LiveServer
from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
ALICE, BOB, CAROL = "13800000001", "13900000002", "13700000003"
APP_PASSWORD = "e10adc3949ba59abbe56e057f20f883e"
NEW_PASSWORD = "0" * 32
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def trail(server: LiveServer) -> list[tuple[str, str, str | None, str]]:
    entries = await AuditTrail(server.services.engine).entries(limit=200)
    return [(e.actor, e.action, e.account, e.result) for e in entries]


async def act(
    client: httpx.AsyncClient, action: str, account: str, **fields: str
) -> httpx.Response:
    """Submit an action form of the account's page, with the page's own CSRF token."""
    page = await client.get("/admin/accounts", params={"account": account})
    assert page.status_code == 200
    data = {"csrf": csrf_of(page), "account": account, **fields}
    return await client.post(f"/admin/accounts/{action}", data=data)


async def coins(server: LiveServer, phone: SimPhone) -> Any:
    body = {"uuid": phone.phone, "device_id": phone.device}
    return (await server.post("/lwork/mobile/get_coin", body)).json()


async def test_sessions_codes_and_credit(server_factory: Factory) -> None:
    async with (
        server_factory() as server,
        browser(server.url) as client,
        SimPhone(server.url, ALICE, "alice-phone", lambda line: None) as alice,
    ):
        await alice.request_code()
        await alice.register(server.gateway.last_code(ALICE), APP_PASSWORD)
        await alice.login(APP_PASSWORD)
        await alice.poll()  # balances are read from the network of the app's long poll
        assert (await coins(server, alice))["coins"] == 0
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        assert (await sign_in(client, "root")).status_code == 303
        page = await client.get("/admin/accounts", params={"account": ALICE})
        assert 'action="/admin/accounts/credit"' in page.text
        assert 'action="/admin/accounts/deactivate"' not in page.text  # not a BOSS number

        # credit 12.5 coins and 30 minutes, once per reference
        r = await act(client, "credit", ALICE, coins="12.5", minutes="30", ref="T-1",
                      note=SCRIPT)  # fmt: skip
        assert r.status_code == 303
        assert r.headers["location"] == f"/admin/accounts?account={ALICE}&done=credit"
        page = await client.get(r.headers["location"])
        assert "充值成功" in page.text and "金币: 12.5" in page.text
        assert (await coins(server, alice))["coins"] == 12.5
        r = await act(client, "credit", ALICE, coins="12.5", ref="T-1")
        assert r.headers["location"].endswith("done=credit_again")
        assert "未重复充值" in (await client.get(r.headers["location"])).text
        assert (await coins(server, alice))["coins"] == 12.5
        for fields, field in (({"coins": "abc", "ref": "T-2"}, "coins"),
                              ({"coins": "1", "ref": SCRIPT}, "ref"),
                              ({"coins": "0", "ref": "T-2"}, "coins")):  # fmt: skip
            r = await act(client, "credit", ALICE, **fields)
            assert r.status_code == 400 and f"{field}:" in r.text and SCRIPT not in r.text
        assert (await coins(server, alice))["coins"] == 12.5

        # a password-reset code through the SMS path; the app resets its password with it
        sent = len(server.gateway.received)
        r = await act(client, "reset_code", ALICE)
        assert r.headers["location"].endswith("done=reset_code")
        assert len(server.gateway.received) == sent + 1
        code = server.gateway.last_code(ALICE)
        body = {"uuid": ALICE, "device_id": "alice-phone", "auth_code": code,
                "pwd": NEW_PASSWORD, "group_id": "common"}  # fmt: skip
        assert (await server.post("/lwork/mobile/forget_pwd", body)).json()["status"] == "ok"
        await alice.login(NEW_PASSWORD)
        await alice.poll()

        # end its sessions: the app must log in again
        assert (await coins(server, alice))["status"] == "ok"
        r = await act(client, "end_sessions", ALICE)
        assert r.headers["location"].endswith("done=end_sessions")
        assert await coins(server, alice) == {"status": "failed", "reason": "no_logined"}
        page = await client.get("/admin/accounts", params={"account": ALICE})
        assert "operator" in page.text  # the sessions' end reason

        # a number no account has, and an action that does not exist
        r = await act(client, "credit", ALICE, coins="1", ref="T-3")
        data = {"csrf": csrf_of(page), "account": "19900000000", "coins": "1", "ref": "T-4"}
        r = await client.post("/admin/accounts/credit", data=data)
        assert r.status_code == 404 and "账号不存在" in r.text
        r = await client.post("/admin/accounts/delete", data={"csrf": csrf_of(page),
                                                              "account": ALICE})  # fmt: skip
        assert r.status_code == 404

        audit = await client.get("/admin/audit")
        assert SCRIPT not in audit.text and ESCAPED in audit.text  # the credit's note
        assert [e for e in await trail(server) if e[0] == "console:root" and e[1] != "sign_in"] == [
            ("console:root", "credit", ALICE, "ok"),
            ("console:root", "credit", ALICE, "ok"),  # again, nothing applied ("applied": false)
            ("console:root", "credit", ALICE, "invalid_params"),
            ("console:root", "credit", ALICE, "invalid_params"),
            ("console:root", "credit", ALICE, "invalid_params"),
            ("console:root", "reset_code", ALICE, "ok"),
            ("console:root", "end_sessions", ALICE, "ok"),
            ("console:root", "credit", ALICE, "ok"),
            ("console:root", "credit", "19900000000", "account_not_exist"),
        ]


async def test_boss_numbers_deactivated_and_bound(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        for number in (BOB, CAROL):
            await server.services.provisioning.open(number, "boss-pw-123", "dth", time.time())
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        assert (await sign_in(client, "root")).status_code == 303
        page = await client.get("/admin/accounts", params={"account": BOB})
        assert "已激活" in page.text and 'id="deactivate"' in page.text

        r = await act(client, "deactivate", BOB)
        assert r.headers["location"].endswith("done=deactivate")
        page = await client.get(r.headers["location"])
        assert "已停用" in page.text and 'id="activate"' in page.text
        assert await server.services.accounts.inactive_among([BOB, CAROL]) == {BOB}
        r = await act(client, "activate", BOB)
        assert r.headers["location"].endswith("done=activate")
        assert await server.services.accounts.inactive_among([BOB]) == set()

        r = await act(client, "bind", BOB, phone="02012345678")
        assert r.headers["location"].endswith("done=bind")
        page = await client.get(r.headers["location"])
        assert re.search(r"绑定号码.*\*+5678", page.text) and "02012345678" not in page.text
        assert await server.services.accounts.owner("02012345678") == BOB
        r = await act(client, "bind", CAROL, phone="02012345678")
        assert r.status_code == 409 and "phone_already_bound" in r.text
        r = await act(client, "bind", CAROL, phone=SCRIPT)
        assert r.status_code == 400 and "phone:" in r.text and SCRIPT not in r.text
        r = await act(client, "unbind", BOB)
        assert r.headers["location"].endswith("done=unbind")
        assert await server.services.accounts.owner("02012345678") is None

        actions = [e[1:] for e in await trail(server) if e[0] == "console:root"][1:]
        assert actions == [
            ("deactivate", BOB, "ok"), ("activate", BOB, "ok"), ("bind", BOB, "ok"),
            ("bind", CAROL, "phone_already_bound"), ("bind", CAROL, "invalid_params"),
            ("unbind", BOB, "ok"),
        ]  # fmt: skip


async def test_common_accounts_cannot_be_deactivated(server_factory: Factory) -> None:
    async with (
        server_factory() as server,
        browser(server.url) as client,
        SimPhone(server.url, ALICE, "alice-phone", lambda line: None) as alice,
    ):
        await alice.request_code()
        await alice.register(server.gateway.last_code(ALICE), APP_PASSWORD)
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        assert (await sign_in(client, "root")).status_code == 303
        for action in ("deactivate", "bind", "unbind"):
            r = await act(client, action, ALICE, phone="02012345678")
            assert r.status_code == 409 and "只有 BOSS 开户的号码" in r.text, action
        assert ("console:root", "deactivate", ALICE, "not_provisioned") in await trail(server)
        # and a BOSS number's password is not reset by SMS code
        await server.services.provisioning.open(BOB, "boss-pw-123", "dth", time.time())
        page = await client.get("/admin/accounts", params={"account": BOB})
        assert 'id="reset-code"' not in page.text and 'name="minutes"' in page.text
        sent = len(server.gateway.received)
        r = await act(client, "reset_code", BOB)
        assert r.status_code == 409 and "BOSS" in r.text and len(server.gateway.received) == sent


async def test_changes_need_csrf_and_an_administrator(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.provisioning.open(BOB, "boss-pw-123", "dth", time.time())
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        actions = ("deactivate", "activate", "end_sessions", "reset_code", "bind", "unbind",
                   "credit")  # fmt: skip
        fields = {"account": BOB, "phone": "02012345678", "coins": "5", "ref": "X"}
        # nobody signed in
        for action in actions:
            r = await client.post(f"/admin/accounts/{action}", data=fields)
            assert r.status_code == 403, action
        assert (await sign_in(client, "sam")).status_code == 303
        page = await client.get("/admin/accounts", params={"account": BOB})
        assert page.status_code == 200 and "/admin/accounts/credit" not in page.text  # no forms
        for action in actions:
            r = await client.post(f"/admin/accounts/{action}",
                                  data={**fields, "csrf": csrf_of(page)})  # fmt: skip
            assert r.status_code == 403 and "只能查看" in r.text, action
        async with browser(server.url) as admin:
            assert (await sign_in(admin, "root")).status_code == 303
            token = csrf_of(await admin.get("/admin/accounts", params={"account": BOB}))
            for forged in ("", "0" * len(token), csrf_of(page)):  # none, made up, another's
                r = await admin.post("/admin/accounts/deactivate", data={**fields, "csrf": forged})
                assert r.status_code == 403 and "表单已失效" in r.text
            # the header works as the form field does (for scripts); a wrong one does not
            r = await admin.post("/admin/accounts/credit", data=fields,
                                 headers={"x-csrf-token": token})  # fmt: skip
            assert r.status_code == 303
        assert await server.services.accounts.inactive_among([BOB]) == set()
        audit = await trail(server)
        for action in actions:
            assert ("console:sam", action, BOB, "forbidden") in audit, action
            assert ("console:-", action, BOB, "forbidden") in audit, action  # not signed in
        assert audit.count(("console:root", "deactivate", BOB, "forbidden")) == 3
        assert ("console:root", "credit", BOB, "ok") in audit
