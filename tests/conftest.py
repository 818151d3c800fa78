"""Shared fixtures: databases (SQLite and PostgreSQL), a live lwork server, a fake SMS gateway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.app import Services, build_app
from lwork.settings import Settings
from lwork.storage.engine import create_engine, migrate

from fakes.servers import free_port, serve_asgi
from fakes.sms_gateway import SmsGateway

PG_HOST = os.environ.get("LWORK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LWORK_TEST_PG_PORT", "5432"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return _reachable(PG_HOST, PG_PORT)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool
) -> AsyncIterator[str]:
    """Every storage-touching test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}"
        return
    if not postgres_available:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} in CI")
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} (start it: .ci/run does)")
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (SQLite and PostgreSQL, as ``db_url``) for store-level tests."""
    engine = create_engine(db_url, 4)
    await migrate(engine)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database on the test PostgreSQL server, dropped afterwards."""
    import asyncpg

    name = f"lwork_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", database="postgres"
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url(postgres_available: bool) -> AsyncIterator[str]:
    """A PostgreSQL database only (features that need a shared server database)."""
    if not postgres_available:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} in CI")
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} (start it: .ci/run does)")
    async with postgres_database() as url:
        yield url


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on a free port, else the machine's on 6379, else a skip."""
    binary = shutil.which("redis-server")
    if binary is None:
        if _reachable("127.0.0.1", 6379):
            yield "redis://127.0.0.1:6379/0"
            return
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed in CI")
        pytest.skip("Redis not available: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            if _reachable("127.0.0.1", port):
                break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsGateway]:
    gateway = SmsGateway()
    async with serve_asgi(gateway.app()) as base:
        gateway.url = base + "/send"
        yield gateway


@dataclass
class LiveServer:
    url: str
    client: httpx.AsyncClient
    services: Services
    gateway: SmsGateway
    settings: Settings

    async def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.client.post(self.url + path, json=body, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(self.url + path, **kwargs)

    async def long_poll(self, acc: str, device_id: str, **kwargs: Any) -> Any:
        """One long poll to its end, as an app holds one before it spends money or changes its
        account: its address then vouches for the device's requests (CONTRACT §3)."""
        body = {"acc": acc, "device_id": device_id, "self_phone": acc}
        r = await self.post("/channel/push_service", body, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    @contextlib.asynccontextmanager
    async def polling(
        self, acc: str, device_id: str, source: str = "127.0.0.1"
    ) -> AsyncIterator[asyncio.Task[httpx.Response]]:
        """A long poll held by the device, from ``source`` on its own connection, while the
        block runs (the task has its answer, if it came); the connection is dropped after."""
        body = {"acc": acc, "device_id": device_id, "self_phone": acc}
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(timeout=60, transport=transport) as client:
            before = self.services.polls.held
            task = asyncio.create_task(client.post(self.url + "/channel/push_service", json=body))
            for _ in range(500):
                if task.done() or self.services.polls.held > before:
                    break
                await asyncio.sleep(0.01)
            try:
                yield task
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await task
        for _ in range(500):
            if self.services.polls.held <= before:
                break
            await asyncio.sleep(0.01)


def make_settings(tmp_path: Path, db_url: str, gateway_url: str, **sections: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "database": {"url": db_url},
        "sms": {
            "provider": "http",
            "gateway_url": gateway_url,
            "gateway_template": {"to": "{phone}", "text": "{text}"},
            "gateway_auth_header": "Bearer gw-secret",
            "gateway_success_field": "result",
            "gateway_success_value": "0",
            "resend_interval_s": 0,
        },
        "auth": {"argon2_memory_kib": 8192, "argon2_time_cost": 1},
        "push": {"hold_s": 1.0},
        # Forwarding only, and no worker processes per server: the transcoding tests (and
        # test_g711_e2e.py) turn it on; production has it on by default.
        "media": {"relay_mode": "inline", "transcoding": False},
        # The test process runs hundreds of servers: it keeps CPython's own collector policy
        # (the freezer is tested on its own and in `lwork serve` subprocesses).
        "http": {"gc_freeze_survivors": False},
        # New accounts can pay for 100 minutes of trunk calls, so call tests need no top-up;
        # the billing tests set their own balances.
        "billing": {"signup_gift_coins": 300, "signup_gift_minutes": 100},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return Settings(**base)


@pytest.fixture
def server_factory(tmp_path: Path, db_url: str, sms_gateway: SmsGateway) -> Callable[..., Any]:
    """Start lwork on a real socket with settings overrides; use as ``async with``."""

    @contextlib.asynccontextmanager
    async def start(**sections: Any) -> AsyncIterator[LiveServer]:
        settings = make_settings(tmp_path, db_url, sms_gateway.url, **sections)
        app, services = build_app(settings)
        async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as client:
            yield LiveServer(url, client, services, sms_gateway, settings)

    return start


@pytest.fixture
async def server(server_factory: Callable[..., Any]) -> AsyncIterator[LiveServer]:
    async with server_factory() as live:
        yield live
