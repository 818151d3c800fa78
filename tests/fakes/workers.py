"""``lwork serve`` with ``http.workers``, as the workers' tests run it: the server process, and
clients that land on any worker or on a chosen one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from fakes.nodes import app_env
from fakes.servers import free_port
from fakes.sms_gateway import SmsGateway


class Served:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self._clients: list[httpx.AsyncClient] = []

    def anywhere(self) -> httpx.AsyncClient:
        """A client opening a new connection for every request."""
        return self._client(httpx.Limits(max_keepalive_connections=0))

    def _client(self, limits: httpx.Limits) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, timeout=40, limits=limits)
        self._clients.append(client)
        return client

    async def pinned(self, worker: int) -> httpx.AsyncClient:
        """A client whose one kept-alive connection is served by ``worker``."""
        for _ in range(60):
            client = self._client(httpx.Limits(max_connections=1))
            if (await client.get("/metrics")).json()["worker"] == worker:
                return client
            await client.aclose()
        raise AssertionError(f"no connection reached worker {worker}")

    async def metrics_of(self, worker: int) -> dict[str, float]:
        client = self.anywhere()
        for _ in range(60):
            metrics: dict[str, float] = (await client.get("/metrics")).json()
            if metrics["worker"] == worker:
                return metrics
        raise AssertionError(f"no connection reached worker {worker}")

    async def held_on(self, worker: int, client: httpx.AsyncClient, poll: dict[str, str],
                      held: int = 1) -> asyncio.Task[httpx.Response]:  # fmt: skip
        task = asyncio.create_task(client.post("/channel/push_service", json=poll))
        for _ in range(200):
            if (await self.metrics_of(worker))["held_polls"] == held:
                return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"worker {worker} did not hold the poll")

    def workers(self) -> set[int]:
        """The pids of the supervisor's worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


@contextlib.asynccontextmanager
async def serve(tmp: Path, env: dict[str, str]) -> AsyncIterator[Served]:
    port = free_port()
    log = tmp / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
        env={**os.environ, **env, "LWORK_DATA_DIR": str(tmp / "data")},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        await ready(served, {0, 1})
        yield served
    finally:
        await served.close()
        if process.poll() is None:
            process.terminate()
            process.wait(30)


async def ready(served: Served, workers: set[int]) -> None:
    """Until every worker in ``workers`` answers ``/readyz``."""
    seen: set[int] = set()
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        for _ in range(600):
            assert served.process.poll() is None, served.log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if (await c.get(served.url + "/readyz")).status_code == 200:
                    seen.add((await c.get(served.url + "/metrics")).json()["worker"])
                    if seen >= workers:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError("the workers did not become ready: " + served.log.read_text())


def environment(sms_gateway: SmsGateway, **extra: str) -> dict[str, str]:
    return app_env(
        sms_gateway,
        LWORK_HTTP__WORKERS="2",
        LWORK_NODE="n1",
        LWORK_MEDIA__TRANSCODING="false",
        LWORK_MEDIA__PORT_MIN="41000",
        LWORK_MEDIA__PORT_MAX="41999",
        LWORK_LOG_LEVEL="INFO",
        **extra,
    )
