"""The console's optional second factor through real HTTP: ``lwork admin user totp`` enrols an
operator (the URI printed once, the secret kept sealed), sign-in then asks for the code, a code
is accepted once, wrong codes are limited like passwords, and the code form refuses what did
not come through the password first; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select
from test_admin_operators import lwork_admin

from lwork.admin.totp import base32, totp
from lwork.boss.audit import AuditTrail
from lwork.storage.tables import operators

from conftest import LiveServer
from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]


async def trail(server: LiveServer) -> list[tuple[str, str, str]]:
    entries = await AuditTrail(server.services.engine).entries()
    return [(e.actor, e.action, e.result) for e in entries]


def secret_of(output: str) -> bytes:
    found = re.search(r"otpauth://\S+", output)
    assert found is not None, output
    uri = urlsplit(found.group(0))
    assert uri.path == "/lwork:alice"
    secret = parse_qs(uri.query)["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


async def send_code(client: httpx.AsyncClient, page: httpx.Response, code: str) -> httpx.Response:
    return await client.post("/admin/sign-in/code", data={"csrf": csrf_of(page), "code": code,
                                                          "next": "/admin/cdrs"})  # fmt: skip


async def test_enrolled_operators_sign_in_with_a_code_used_once(
    server_factory: Factory, db_url: str, tmp_path: Path
) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        # the CLI shares the server's data_dir (its secret.key) and database
        code, out = await lwork_admin(db_url, tmp_path, b"", "totp", "alice")
        assert code == 0, out
        secret = secret_of(out)
        async with server.services.engine.connect() as conn:
            sealed = (await conn.execute(select(operators.c.totp_sealed))).scalar_one()
        assert sealed and base32(secret) not in sealed and secret.hex() not in sealed
        code, out = await lwork_admin(db_url, tmp_path, b"", "totp", "nobody")
        assert code == 1 and "no operator nobody" in out

        # the right password is not enough any more: the code form comes next, no session yet
        page = await sign_in(client, "alice", next="/admin/cdrs")
        assert page.status_code == 200 and 'name="code"' in page.text and "动态码" in page.text
        assert "lwork_admin=" not in page.headers.get("set-cookie", "")
        pending = next(v for k, v in page.headers.multi_items() if v.startswith("lwork_admin_2fa="))
        attributes = {part.strip().lower() for part in pending.split(";")}
        assert {"httponly", "samesite=strict", "path=/admin/sign-in"} <= attributes
        assert (await client.get("/admin/calls")).status_code == 303
        # the code form is CSRF-protected like the password's
        r = await client.post("/admin/sign-in/code", data={"code": totp(secret, time.time())})
        assert r.status_code == 403
        r = await send_code(client, page, "000000" if totp(secret, time.time()) != "000000"
                            else "111111")  # fmt: skip
        assert r.status_code == 401 and "动态码错误或已使用" in r.text
        r = await send_code(client, page, "12ab56")
        assert r.status_code == 401
        now_code = totp(secret, time.time())
        r = await send_code(client, page, now_code[:3] + " " + now_code[3:])  # as apps show it
        assert (r.status_code, r.headers["location"]) == (303, "/admin/cdrs")
        assert (await client.get("/admin/calls")).status_code == 200

        # the same code again, by someone who has the password and watched the screen
        async with browser(server.url) as thief:
            page = await sign_in(thief, "alice")
            assert page.status_code == 200
            r = await send_code(thief, page, now_code)
            assert r.status_code == 401 and (await thief.get("/admin/calls")).status_code == 303

        # the code form without the password first, or with a forged pending cookie
        async with browser(server.url) as stranger:
            form = await stranger.get("/admin/sign-in")
            r = await send_code(stranger, form, totp(secret, time.time() + 30))
            assert r.status_code == 401 and "重新输入密码" in r.text
            stranger.cookies.set("lwork_admin_2fa", f"alice~{int(time.time()) + 300}~{'0' * 64}",
                                 path="/admin/sign-in")  # fmt: skip
            r = await send_code(stranger, form, totp(secret, time.time() + 30))
            assert r.status_code == 401 and (await stranger.get("/admin/calls")).status_code == 303

        # switched off: the password alone signs in again
        code, out = await lwork_admin(db_url, tmp_path, b"", "totp", "alice", "--off")
        assert code == 0, out
        async with browser(server.url) as again:
            r = await sign_in(again, "alice")
            assert r.status_code == 303

        actions = await trail(server)
        assert actions.count(("console:alice", "sign_in", "bad_code")) == 3  # wrong, junk, replay
        assert ("console:alice", "sign_in", "password_ok") in actions
        assert ("cli", "operator_totp", "ok") in actions
        assert "otpauth" not in str([e.detail for e in await AuditTrail(
            server.services.engine).entries()])  # fmt: skip


async def test_code_guesses_are_limited_like_passwords(server_factory: Factory) -> None:
    settings = {"admin": {"sign_in_per_minute": 3}, "http": {"trusted_proxies": ["127.0.0.1"]}}
    async with server_factory(**settings) as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        secret = await server.services.operators.enrol_totp("alice")
        form = await client.get("/admin/sign-in")
        page = await client.post(
            "/admin/sign-in", data={"csrf": csrf_of(form), "name": "alice", "password": PASSWORD},
            headers={"x-forwarded-for": "198.51.100.1"},
        )  # fmt: skip
        assert page.status_code == 200
        right = totp(secret, time.time())
        wrong = "000000" if right != "000000" else "111111"
        # three wrong codes, each from another address: the name has had its guesses
        for n in range(3):
            data = {"csrf": csrf_of(page), "code": wrong}
            address = {"x-forwarded-for": f"203.0.113.{n}"}
            r = await client.post("/admin/sign-in/code", data=data, headers=address)
            assert r.status_code == 401
        r = await client.post("/admin/sign-in/code", data={"csrf": csrf_of(page), "code": right},
                              headers={"x-forwarded-for": "203.0.113.9"})  # fmt: skip
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert (await client.get("/admin/calls")).status_code == 303
        assert ("console:alice", "sign_in", "too_many") in await trail(server)


async def test_migration_0016_keeps_the_operators(db_url: str) -> None:
    """Operators added before the second factor keep signing in by password after the upgrade
    (no enrolment), and a downgrade drops only the new columns."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from lwork.storage.engine import migrate, to_revision

    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0015"))
            await conn.execute(text("INSERT INTO operators (name, role, password_hash, "
                                    "created_at) VALUES ('old', 'admin', 'x', 1.0)"))  # fmt: skip
        await migrate(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(select(operators))).one()
        assert (row.name, row.totp_sealed, row.totp_last_step) == ("old", None, None)
        async with engine.begin() as conn:
            await conn.run_sync(to_revision("0015", down=True))
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM operators"))).scalars().all()
        assert names == ["old"]
    finally:
        await engine.dispose()
