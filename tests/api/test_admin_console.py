"""The console's doors through real HTTP: sign-in and sign-out, sessions, CSRF, roles, the
sign-in rate limit, the language switch, escaping, and bad requests (never a 500)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from lwork.admin.operators import csrf_token
from lwork.boss.audit import AuditTrail

from conftest import LiveServer
from fakes.operator_browser import FORM, PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
SCRIPT = '<script>alert("x")</script>'


async def trail(server: LiveServer) -> list[tuple[str, str, str]]:
    entries = await AuditTrail(server.services.engine).entries()
    return [(e.actor, e.action, e.result) for e in entries]


async def test_signing_in_and_out(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        for path in ("/admin", "/admin/"):
            r = await client.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/admin/sign-in")
        r = await client.get("/admin/calls")
        assert (r.status_code, r.headers["location"]) == (303, "/admin/sign-in?next=/admin/calls")

        page = await client.get("/admin/sign-in")
        assert page.status_code == 200 and "登录" in page.text  # Chinese by default
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        # a sign-in without the form's token (a forged cross-site form) is refused
        r = await client.post("/admin/sign-in", data={"name": "alice", "password": PASSWORD})
        assert r.status_code == 403 and "lwork_admin=" not in r.headers.get("set-cookie", "")
        r = await client.post("/admin/sign-in", data={"csrf": "f" * 43, "name": "alice",
                                                      "password": PASSWORD})  # fmt: skip
        assert r.status_code == 403

        r = await sign_in(client, "alice", PASSWORD + "!")
        assert r.status_code == 401 and "用户名或密码错误" in r.text
        r = await sign_in(client, "mallory")
        assert r.status_code == 401
        r = await sign_in(client, "alice", next="/admin/cdrs")
        assert (r.status_code, r.headers["location"]) == (303, "/admin/cdrs")
        cookie = next(v for k, v in r.headers.multi_items() if v.startswith("lwork_admin="))
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/admin", "max-age=28800"} <= attributes
        assert "secure" not in attributes  # plain HTTP in development; see the next test
        async with browser(server.url) as other:
            r = await sign_in(other, "alice", next="https://evil.example/")
            assert r.headers["location"] == "/admin/calls"  # never sent to another site

        page = await client.get("/admin/calls")
        assert page.status_code == 200 and "alice" in page.text and "管理员" in page.text
        token = csrf_of(page)

        r = await client.head("/admin/calls/events")  # headers only
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        r = await client.post("/admin/sign-out", data={})
        assert r.status_code == 403
        r = await client.post(
            "/admin/sign-out", data={"csrf": token[:-1] + ("1" if token[-1] == "0" else "0")}
        )
        assert r.status_code == 403
        assert (await client.get("/admin/calls")).status_code == 200  # still signed in
        session = client.cookies.get("lwork_admin", path="/admin")
        r = await client.post("/admin/sign-out", data={"csrf": token})
        assert (r.status_code, r.headers["location"]) == (303, "/admin/sign-in")
        assert (await client.get("/admin/calls")).status_code == 303
        # the old cookie, replayed, signs nobody in
        async with browser(server.url) as other:
            other.cookies.set("lwork_admin", session or "", path="/admin")
            assert (await other.get("/admin/calls")).status_code == 303

        assert await trail(server) == [
            ("console:alice", "sign_in", "bad_password"),
            ("console:mallory", "sign_in", "bad_password"),
            ("console:alice", "sign_in", "ok"),
            ("console:alice", "sign_in", "ok"),
            ("console:alice", "sign_out", "ok"),
        ]


async def test_an_expired_session_signs_nobody_in(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        alice = await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        old = await server.services.operators.open_session(alice, 60, time.time() - 61)
        client.cookies.set("lwork_admin", old, path="/admin")
        assert (await client.get("/admin/calls")).status_code == 303
        assert (await client.get("/admin/calls/events")).status_code == 401
        r = await client.post("/admin/calls/hangup", data={"csrf": csrf_token(old), "sid": "x"})
        assert r.status_code == 403


async def test_support_operators_only_read(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await sign_in(client, "sam")).status_code == 303
        page = await client.get("/admin/calls")
        assert page.status_code == 200 and "客服（只读）" in page.text
        assert "/admin/calls/hangup" not in page.text  # no hang-up button
        r = await client.post("/admin/calls/hangup", data={"csrf": csrf_of(page), "sid": "n1@@0"})
        assert r.status_code == 403 and "只能查看" in r.text
        r = await client.post("/admin/sign-out", data={"csrf": csrf_of(page)})
        assert r.status_code == 303  # signing out changes nothing but their own session
        assert ("console:sam", "hangup", "forbidden") in await trail(server)


async def test_sign_in_guesses_are_limited(server_factory: Factory) -> None:
    settings = {"admin": {"sign_in_per_minute": 3}, "http": {"trusted_proxies": ["127.0.0.1"]}}
    async with server_factory(**settings) as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        # three wrong passwords for alice, each from another address
        for n in range(3):
            r = await _guess(client, f"198.51.100.{n}")
            assert r.status_code == 401
        # the right one now waits too, whatever the address: the name has had its guesses
        r = await _guess(client, "198.51.100.9", PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "尝试次数过多" in r.text
        # one address is limited however many names it tries
        for n in range(3):
            r = await _guess(client, "203.0.113.5", name=f"user{n}")
            assert r.status_code == 401
        r = await _guess(client, "203.0.113.5", name="someone")
        assert r.status_code == 429
        assert ("console:alice", "sign_in", "too_many") in await trail(server)


async def _guess(
    client: httpx.AsyncClient, address: str, password: str = "wrong-password", name: str = "alice"
) -> httpx.Response:
    form = await client.get("/admin/sign-in")
    data = {"csrf": csrf_of(form), "name": name, "password": password}
    return await client.post("/admin/sign-in", data=data, headers={"x-forwarded-for": address})


async def test_what_was_typed_comes_back_escaped(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        r = await sign_in(client, SCRIPT, next=f'/admin/x"><img src=x onerror=alert(1)>{SCRIPT}')
        assert r.status_code == 401
        assert SCRIPT not in r.text and "<img src=x" not in r.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text
        r = await client.get("/admin/sign-in", params={"next": f'/admin/"{SCRIPT}'})
        assert SCRIPT not in r.text and '<script src="/admin/static/console.js">' in r.text
        # names no operator could have are kept out of the trail's actor (a terminal prints it)
        r = await sign_in(client, "\x1b]0;owned\x07bob")
        assert r.status_code == 401
        entries = await AuditTrail(server.services.engine).entries()
        assert [(e.actor, e.detail["name"]) for e in entries] == [
            ("console:?", SCRIPT),
            ("console:?", "\x1b]0;owned\x07bob"),
        ]
        assert all("\x1b" not in e.line() for e in entries)


async def test_language_switch(server_factory: Factory) -> None:
    async with server_factory(admin={"language": "en"}) as server, browser(server.url) as client:
        assert "Sign in" in (await client.get("/admin/sign-in")).text
        r = await client.get("/admin/lang/zh", params={"next": "/admin/sign-in"})
        assert (r.status_code, r.headers["location"]) == (303, "/admin/sign-in")
        assert "登录" in (await client.get("/admin/sign-in")).text
        assert (await client.get("/admin/lang/fr")).status_code == 404
        r = await client.get("/admin/lang/en", params={"next": "//evil.example/"})
        assert r.headers["location"] == "/admin/calls"


async def test_bad_requests_get_clear_answers(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        r = await client.post("/admin/sign-in", json={"name": "alice"})
        assert r.status_code == 400
        r = await client.post("/admin/sign-in", content=b"a=" + b"x" * 20000, headers=FORM)
        assert r.status_code == 413
        r = await client.get("/admin/no/such/page")
        assert r.status_code == 404 and "页面不存在" in r.text
        assert (await client.get("/admin/static/../../pyproject.toml")).status_code == 404
        js = await client.get("/admin/static/console.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert (await client.put("/admin/sign-in")).status_code == 405
        r = await client.post("/admin/sign-in", content=b"\xff\xfe=%ff&csrf=\x00", headers=FORM)
        assert r.status_code == 403
        # the mobile API beside it is served as before
        r = await client.post("/lwork/mobile/no_such_path", json={})
        assert r.status_code == 404 and r.json()["status"] == "failed"


async def test_the_console_can_be_switched_off(server_factory: Factory) -> None:
    async with server_factory(admin={"enabled": False}) as server, browser(server.url) as client:
        r = await client.get("/admin/sign-in")
        assert r.status_code == 404 and r.json()["status"] == "failed"  # the edge's own 404


async def test_production_cookies_are_secure(server_factory: Factory) -> None:
    production = {"env": "production", "secret_key": "k" * 32, "metrics": {"public": True}}
    async with server_factory(**production) as server, browser(server.url) as client:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        form = await client.get("/admin/sign-in")
        pre = form.headers["set-cookie"]
        assert pre.startswith("lwork_admin_pre=") and "secure" in pre.lower()
        token = csrf_of(form)
        # a browser sends Secure cookies over HTTPS only; plain httpx is made to send it here
        r = await client.post(
            "/admin/sign-in", data={"csrf": token, "name": "alice", "password": PASSWORD},
            headers={"cookie": f"lwork_admin_pre={token}"},
        )  # fmt: skip
        cookie = next(v for k, v in r.headers.multi_items() if v.startswith("lwork_admin="))
        assert "secure" in {part.strip().lower() for part in cookie.split(";")}
