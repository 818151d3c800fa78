"""Real `lwork serve` processes for multi-node and fault tests: start one, wait until it is
ready, and register and log in a device through it (codes from the loopback SMS gateway)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from fakes.servers import free_port
from fakes.sms_gateway import SmsGateway

PWD = "e10adc3949ba59abbe56e057f20f883e"


def app_env(sms_gateway: SmsGateway, **extra: str) -> dict[str, str]:
    """What a test's `lwork serve` needs to register and log in apps quickly: codes through the
    loopback SMS gateway, no resend wait, a cheap password hash, 30 s polls; ``extra``
    (``LWORK_…`` variables) adds or overrides."""
    return {
        "LWORK_SMS__PROVIDER": "http",
        "LWORK_SMS__GATEWAY_URL": sms_gateway.url,
        "LWORK_SMS__RESEND_INTERVAL_S": "0",
        "LWORK_AUTH__ARGON2_MEMORY_KIB": "8192",
        "LWORK_AUTH__ARGON2_TIME_COST": "1",
        "LWORK_PUSH__HOLD_S": "30",
        **extra,
    }


class Node:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process


def start_node(name: str, tmp: Path, env: dict[str, str]) -> Node:
    port = free_port()
    log = open(tmp / f"{name}.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
        env={**os.environ, **env, "LWORK_NODE": name, "LWORK_DATA_DIR": str(tmp / name)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Node(f"http://127.0.0.1:{port}", process)


async def wait_ready(client: httpx.AsyncClient, node: Node, tmp: Path, name: str) -> None:
    for _ in range(300):
        if node.process.poll() is not None:
            raise AssertionError((tmp / f"{name}.log").read_text())
        try:
            if (await client.get(node.url + "/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("node did not become ready: " + (tmp / f"{name}.log").read_text())


async def register_and_login(
    client: httpx.AsyncClient, node: Node, gateway: SmsGateway, phone: str, device: str
) -> None:
    await client.post(node.url + "/lwork/sms/auth_code", json={"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": device, "auth_code": gateway.last_code(phone),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await client.post(node.url + "/lwork/mobile/register", json=body)).json() == {
        "status": "ok"
    }
    login = {"acc": phone, "pwd": PWD, "device_id": device}
    r = await client.post(node.url + "/lwork/mobile/login", json=login)
    assert r.json()["status"] == "ok"


async def held_poll(
    client: httpx.AsyncClient, node: Node, poll: dict[str, str], replaced: int | None = None
) -> asyncio.Task[httpx.Response]:
    """A long poll sent to ``node``, once the node holds it (and, given ``replaced``, once it
    has replaced that many older polls in all)."""
    task = asyncio.create_task(client.post(node.url + "/channel/push_service", json=poll))
    for _ in range(300):
        metrics = (await client.get(node.url + "/metrics")).json()
        if metrics["held_polls"] == 1 and replaced in (None, metrics["polls_replaced"]):
            return task
        await asyncio.sleep(0.02)
    raise AssertionError("the poll was not held")
