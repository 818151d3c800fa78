"""Deeply nested JSON (issue #13 item 7): 400 ``invalid_params`` on every route, no traceback."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from test_bad_input import assert_invalid

from lwork.http.decode import MAX_JSON_DEPTH

LIMITS = {"http": {"ip_rate_per_minute": 1_000_000}, "auth": {"login_per_minute_per_ip": 1_000_000}}


def nested(depth: int) -> bytes:
    """An object whose ``uuid`` holds arrays ``depth`` levels deep in all (the object is one)."""
    inner = depth - 1
    return b'{"uuid":' + b"[" * inner + b"1" + b"]" * inner + b"}"


def envelope(raw: bytes) -> bytes:
    return b'{"data_enc":"1234567' + base64.b64encode(raw) + b'"}'


async def routes(server: Any) -> list[tuple[str, str]]:
    paths = (await server.get("/openapi.json")).json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


async def test_five_thousand_deep_is_invalid_params_on_every_route(
    server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with server_factory(**LIMITS) as server:
        every = await routes(server)
        assert ("POST", "/channel/push_service") in every
        for method, path in every:
            for wrapped in (False, True):
                body = envelope(nested(5000)) if wrapped else nested(5000)
                r = await server.client.request(method, server.url + path, content=body)
                assert_invalid(r, "data_enc" if wrapped else "body")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200])
async def test_just_past_the_limit_is_refused_where_the_decoder_would_still_cope(
    server: Any, depth: int
) -> None:
    for path in ("/lwork/mobile/login", "/channel/push_service"):
        r = await server.client.post(server.url + path, content=nested(depth))
        assert_invalid(r, "body")
        r = await server.client.post(server.url + path, content=envelope(nested(depth)))
        assert_invalid(r, "data_enc")


async def test_brackets_inside_strings_and_wide_bodies_are_not_depth(server: Any) -> None:
    """Only real nesting counts: a password full of brackets and a long flat list log in as
    usual (here: an unknown account), and depth up to the limit reaches field validation."""
    login = {"acc": "13800000000", "device_id": "d1", "pwd": "[{" * 20 + '\\"[['}
    r = await server.post("/lwork/mobile/login", login)
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    flat = {**login, "clidata": {"list": [[1]] * 500}}
    r = await server.post("/lwork/mobile/login", flat)
    assert r.status_code == 200, r.text
    r = await server.client.post(server.url + "/lwork/mobile/login", content=nested(MAX_JSON_DEPTH))
    assert_invalid(r)
    assert r.json()["field"] != "body"
