"""Random JSON at every route: the answer is always one of the contract's shapes, never a 500."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwork.app import build_app

from conftest import make_settings
from fakes.servers import serve_in_thread

FIELDS = [
    "uuid", "device_id", "type", "auth_code", "pwd", "name", "group_id", "acc", "clidata",
    "old_pwd", "info", "users", "caller", "account", "user_id", "channel_id", "provider", "token",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=8)
REASONS_4XX = {400: "invalid_params", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 429: "too_many_requests"}  # fmt: skip


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    config = make_settings(
        tmp, f"sqlite+aiosqlite:///{tmp / 'f.db'}", "http://127.0.0.1:9/send",
        http={"ip_rate_per_minute": 1_000_000}, auth={"login_per_minute_per_ip": 1_000_000},
    )  # fmt: skip
    app, _ = build_app(config)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def routes(base_url: str, client: httpx.Client) -> list[tuple[str, str]]:
    paths = client.get(base_url + "/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def check_shape(response: httpx.Response) -> None:
    assert response.status_code in (200, *REASONS_4XX), response.text
    body = response.json()
    if "data_enc" in body:
        return
    assert body["status"] in ("ok", "failed")
    if response.status_code != 200:
        assert body["reason"] == REASONS_4XX[response.status_code]
    if body["status"] == "failed" and response.status_code == 200:
        assert body.get("reason", "") != "service_not_available", body


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), body=bodies, wrapped=st.booleans())
def test_random_json_gets_a_contract_shape(
    base_url: str, client: httpx.Client, routes: list[tuple[str, str]], data: st.DataObject,
    body: dict[str, object], wrapped: bool,
) -> None:  # fmt: skip
    method, path = data.draw(st.sampled_from(routes))
    if wrapped and path.startswith("/lwork/mobile/"):
        path = path.replace("/lwork/mobile/", "/lwork/mobile1/")
    response = client.request(method, base_url + path, json=body)
    check_shape(response)


def deep(levels: int) -> bytes:
    return b'{"acc":' + b"[" * levels + b"]" * levels + b"}"


raw_bodies = (
    st.binary(max_size=200)
    | st.lists(st.sampled_from(list(b'[]{}",:\\ 0123456789truefalsn')), max_size=200).map(bytes)
    | st.integers(0, 60).map(deep)
    | st.sampled_from([deep(1000), deep(5000)])
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), raw=raw_bodies, enveloped=st.booleans(), wrapped=st.booleans())
def test_random_bytes_and_deep_nesting_get_a_contract_shape(
    base_url: str, client: httpx.Client, routes: list[tuple[str, str]], data: st.DataObject,
    raw: bytes, enveloped: bool, wrapped: bool,
) -> None:  # fmt: skip
    """Not just JSON objects: any bytes, JSON-ish noise, thousands of levels, inside data_enc."""
    method, path = data.draw(st.sampled_from(routes))
    if wrapped and path.startswith("/lwork/mobile/"):
        path = path.replace("/lwork/mobile/", "/lwork/mobile1/")
    if enveloped:
        raw = b'{"data_enc":"1234567' + base64.b64encode(raw) + b'"}'
    check_shape(client.request(method, base_url + path, content=raw))
