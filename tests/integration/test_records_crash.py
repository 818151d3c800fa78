"""A node killed mid-call (``kill -9`` of a real ``lwork serve``) loses neither the call's record
nor its charge, and the carrier's leg is ended: sipp, as the carrier, must receive a BYE.

One node on SQLite comes back under the same name and closes its own earlier life's records;
two nodes on PostgreSQL + Redis: the surviving node takes the dead node's records over once its
heartbeat is older than the lease (CONTRACT §9)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from test_sip_trunk import free_udp_port
from test_trunk_calls import PHONE_NUMBER, SIPP, finished, sipp

from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance
from lwork.storage.engine import create_engine
from lwork.storage.tables import cdrs, ledger

from fakes.rtp_peer import RtpPeer
from fakes.servers import free_port
from fakes.sms_gateway import SmsGateway

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
PWD = "e10adc3949ba59abbe56e057f20f883e"
ALICE = "13800138000"
BOB = "13900000002"


class Node:
    def __init__(self, name: str, tmp: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{name}-{self.port}.log"
        (tmp / name).mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lwork", "serve", "--port", str(self.port)],
            env={**os.environ, **env, "LWORK_NODE": name, "LWORK_DATA_DIR": str(tmp / name)},
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def ready(self, client: httpx.AsyncClient) -> None:
        for _ in range(400):
            if self.process.poll() is not None:
                raise AssertionError(self.log())
            try:
                if (await client.get(self.url + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("node did not become ready: " + self.log())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGateway]:
    from fakes.servers import serve_asgi

    gateway = SmsGateway()
    async with serve_asgi(gateway.app()) as base:
        gateway.url = base + "/send"
        yield gateway


def node_env(gateway: SmsGateway, carrier_port: int, **extra: str) -> dict[str, str]:
    return {
        "LWORK_SECRET_KEY": "shared-secret-of-all-nodes",
        "LWORK_SMS__PROVIDER": "http",
        "LWORK_SMS__GATEWAY_URL": gateway.url,
        "LWORK_SMS__RESEND_INTERVAL_S": "0",
        "LWORK_AUTH__ARGON2_MEMORY_KIB": "8192",
        "LWORK_AUTH__ARGON2_TIME_COST": "1",
        "LWORK_LOG_LEVEL": "INFO",
        "LWORK_MEDIA__RELAY_MODE": "inline",
        "LWORK_SIP__ENABLED": "true",
        "LWORK_SIP__PROXY_PORT": str(carrier_port),
        "LWORK_SIP__LISTEN_PORT": "0",
        "LWORK_SIP__OPTIONS_INTERVAL_S": "0",
        "LWORK_SIP__TRUSTED_SOURCES": '["127.0.0.1"]',
        "LWORK_SIP__NUMBER_RULES": '[["00", "+"], ["0", "+44"]]',
        "LWORK_SIP__DEFAULT_COUNTRY_CODE": "44",
        "LWORK_CALLS__CDR_HEARTBEAT_S": "0.3",
        "LWORK_PUSH__HOLD_S": "0.5",
        "LWORK_BILLING__SIGNUP_GIFT_COINS": "30",  # ten minutes at 3 coins
        **extra,
    }


async def sign_up(client: httpx.AsyncClient, gateway: SmsGateway, url: str, uuid: str) -> None:
    await client.post(url + "/lwork/sms/auth_code", json={"uuid": uuid, "type": "register"})
    code = gateway.last_code(uuid)
    account = {"uuid": uuid, "device_id": "A", "auth_code": code, "pwd": PWD,
               "group_id": "common"}  # fmt: skip
    r = await client.post(url + "/lwork/mobile/register", json=account)
    assert r.json() == {"status": "ok"}, r.text
    r = await client.post(url + "/lwork/mobile/login",
                          json={"acc": uuid, "pwd": PWD, "device_id": "A"})  # fmt: skip
    assert r.json()["status"] == "ok", r.text
    # the app comes online: its long poll's address may then spend (CONTRACT §3)
    poll = {"acc": uuid, "device_id": "A", "self_phone": uuid}
    r = await client.post(url + "/channel/push_service", json=poll)
    assert r.json()["status"] == "ok", r.text


async def answered_call(client: httpx.AsyncClient, gateway: SmsGateway, url: str) -> str:
    """Alice registers and calls the carrier's phone until it is answered; the session id."""
    await sign_up(client, gateway, url, ALICE)
    media = await RtpPeer.open()
    try:
        r = await client.post(url + "/lwork/mobile/voip/calls", json={
            "user_id": ALICE, "caller_phone": ALICE, "callee_phone": PHONE_NUMBER,
            "sdp": {"ip": "127.0.0.1", "port": media.port}, "userclass": "registered",
            "dev_id": "A", "type": "pstn", "acc": ALICE, "clidata": {}})  # fmt: skip
        started: dict[str, Any] = r.json()
        assert started["status"] == "ok", started
        sid: str = started["session_id"]
        for _ in range(600):  # a loaded machine: sipp may take a while to answer
            status = await client.get(url + "/lwork/mobile/voip/calls", params={"session_id": sid})
            if status.json()["peer_status"] == "hookoff":
                return sid
            await asyncio.sleep(0.05)
        raise AssertionError(f"never answered: {status.json()}")
    finally:
        media.close()


async def open_record(db_url: str, sid: str) -> dict[str, Any]:
    """The record the node opened at answer, once its heartbeat has moved past the answer."""
    engine = create_engine(db_url, 1)
    try:
        for _ in range(200):
            async with engine.connect() as conn:
                row = (await conn.execute(select(cdrs).where(cdrs.c.id == sid))).first()
            if row is not None and row.heartbeat_at > row.answered_at + 0.3:
                return dict(row._mapping)
            await asyncio.sleep(0.05)
        raise AssertionError(f"record never opened or heart-beaten: {row}")
    finally:
        await engine.dispose()


async def closed_record(db_url: str, sid: str) -> tuple[dict[str, Any], int, Balance]:
    """The record once closed, the number of ledger charges for it, and Alice's balance."""
    engine = create_engine(db_url, 1)
    try:
        for _ in range(300):
            async with engine.connect() as conn:
                row = (await conn.execute(select(cdrs).where(cdrs.c.id == sid))).first()
                charges = (
                    await conn.execute(select(ledger).where(ledger.c.ref == "cdr:" + sid))
                ).all()
            if row is not None and row.ended_at is not None:
                left = await LedgerStore(engine).balance(ALICE, time.time())
                return dict(row._mapping), len(charges), left
            await asyncio.sleep(0.05)
        raise AssertionError(f"record never closed: {row}")
    finally:
        await engine.dispose()


async def test_a_node_killed_mid_call_closes_charges_and_hangs_up_when_it_restarts(
    tmp_path: Path, gateway: SmsGateway
) -> None:
    carrier_port = free_udp_port()
    carrier: asyncio.subprocess.Process | None = None  # sipp's 30 s start with the call
    env = node_env(gateway, carrier_port)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'n1' / 'lwork.db'}"
    first = Node("n1", tmp_path, env)
    again: Node | None = None
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await first.ready(client)
            carrier = await sipp(tmp_path, "uas_answer.xml", "-p", str(carrier_port))
            sid = await answered_call(client, gateway, first.url)
            opened = await open_record(db_url, sid)
            assert opened["ended_at"] is None and '"call_id"' in opened["dialog"]
            first.kill()
            await asyncio.sleep(0.5)
            assert carrier.returncode is None, "the carrier's leg ended before the restart"

            again = Node("n1", tmp_path, env)  # the same node name, a new life
            await again.ready(client)
            await finished(carrier)  # sipp got the BYE of the dead life's dialog and answered it
            record, charged, balance = await closed_record(db_url, sid)
            assert record["end_reason"] == "node_lost" and record["kind"] == "out"
            assert record["answered_at"] <= record["ended_at"] <= opened["heartbeat_at"] + 1.0
            assert (record["minutes"], record["cost"], charged) == (1, 300, 1)
            assert balance == Balance(gift_coins=2700)
            await asyncio.sleep(1.0)  # more sweeps: still charged once
            _, charged, balance = await closed_record(db_url, sid)
            assert charged == 1 and balance == Balance(gift_coins=2700)
            assert "closed after its node was lost" in again.log()
    finally:
        for node in (first, again):
            if node is not None:
                node.stop()
        if carrier is not None and carrier.returncode is None:
            carrier.kill()


async def test_the_surviving_node_settles_a_dead_nodes_call_once(
    tmp_path: Path, gateway: SmsGateway, postgres_url: str, redis_url: str
) -> None:
    carrier_port = free_udp_port()
    carrier: asyncio.subprocess.Process | None = None  # sipp runs 30 s: started late
    env = node_env(gateway, carrier_port, LWORK_DATABASE__URL=postgres_url,
                   LWORK_BUS__URL=redis_url, LWORK_CALLS__CDR_LEASE_S="2")  # fmt: skip
    nodes = [Node(name, tmp_path, env) for name in ("n1", "n2", "n3")]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for node in nodes:
                await node.ready(client)
            dying, *survivors = nodes
            carrier = await sipp(tmp_path, "uas_answer.xml", "-p", str(carrier_port))
            sid = await answered_call(client, gateway, dying.url)
            assert sid.startswith("n1@@")
            opened = await open_record(postgres_url, sid)
            dying.kill()
            # within the lease nobody touches it; then exactly one survivor takes it over
            await finished(carrier)
            record, charged, balance = await closed_record(postgres_url, sid)
            assert record["end_reason"] == "node_lost" and record["node"] == "n1"
            assert record["ended_at"] <= opened["heartbeat_at"] + 1.0
            assert (record["minutes"], charged) == (1, 1)
            assert balance == Balance(gift_coins=2700)
            await asyncio.sleep(1.0)
            takers = [
                node.name for node in survivors if "closed after its node was lost" in node.log()
            ]
            assert len(takers) == 1, takers
    finally:
        for node in nodes:
            node.stop()
        if carrier is not None and carrier.returncode is None:
            carrier.kill()


async def test_an_inbound_call_of_a_killed_node_is_hung_up_toward_the_phone(
    tmp_path: Path, gateway: SmsGateway
) -> None:
    """The dialog of a call the carrier placed (lwork the UAS) is restored the other way round:
    our BYE's To carries the caller's tag (the scenario checks it)."""
    env = node_env(gateway, free_udp_port(), LWORK_PUSH__HOLD_S="0.5")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'n1' / 'lwork.db'}"
    first = Node("n1", tmp_path, env)
    again: Node | None = None
    carrier: asyncio.subprocess.Process | None = None
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await first.ready(client)
            await sign_up(client, gateway, first.url, BOB)
            poll = {"acc": BOB, "device_id": "A", "clidata": "c"}
            await client.post(first.url + "/channel/push_service", json=poll)  # reachable
            sip_port = int(re.findall(r"SIP trunk on 127\.0\.0\.1:(\d+)", first.log())[0])
            carrier = await sipp(tmp_path, "uac_call_app_await_bye.xml", "-s", BOB,
                                 f"127.0.0.1:{sip_port}")  # fmt: skip
            opdata: dict[str, Any] = {}
            for _ in range(40):
                events = (await client.post(first.url + "/channel/push_service", json=poll)).json()
                if events["data"][0]["event"] == "p2p_inform_called":
                    opdata = events["data"][0]["opdata"]
                    break
            mobile = first.url + "/lwork/mobile/"
            assert (await client.post(mobile + "p2p_ringing", json={"opdata": opdata})).json()[
                "status"] == "ok"  # fmt: skip
            answer = {"opdata": opdata, "sdp": {"ip": [], "port": 4000}}
            assert (await client.post(mobile + "p2p_answer", json=answer)).json()["status"] == "ok"
            sid = opdata["session_id"]
            opened = await open_record(db_url, sid)
            assert opened["kind"] == "in" and opened["uuid"] == BOB
            first.kill()

            again = Node("n1", tmp_path, env)
            await again.ready(client)
            await finished(carrier)  # its BYE check (To: the caller's tag) passed
            record, charged, _ = await closed_record(db_url, sid)
            assert (record["end_reason"], record["cost"], charged) == ("node_lost", 0, 0)
    finally:
        for node in (first, again):
            if node is not None:
                node.stop()
        if carrier is not None and carrier.returncode is None:
            carrier.kill()
