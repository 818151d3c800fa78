"""The SQLite data dir's disk fills up under a running ``lwork serve`` (issue 17, chaos): the
requests that must write answer ``service_not_available`` (HTTP 200, JSON), never a 500, a hang
or a crash; the database stays intact (``PRAGMA integrity_check``); and once space returns the
same process writes again.

The data dir is a small tmpfs of the test's own (``mount`` as root), else a loop-mounted ext4
image; the test is skipped, saying why, where neither can be mounted."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.nodes import PWD, register_and_login, start_node, wait_ready
from fakes.sms_gateway import SmsGateway

SIZE_MIB = 16
ENV = {
    "LWORK_SMS__PROVIDER": "http",
    "LWORK_SMS__RESEND_INTERVAL_S": "0",
    "LWORK_AUTH__ARGON2_MEMORY_KIB": "8192",
    "LWORK_AUTH__ARGON2_TIME_COST": "1",
    "LWORK_PUSH__HOLD_S": "0.2",
    "LWORK_LOG_LEVEL": "WARNING",
    # every request comes from 127.0.0.1: the per-IP caps would answer before the database
    "LWORK_AUTH__LOGIN_PER_MINUTE_PER_IP": "100000",
    "LWORK_AUTH__LOGIN_PER_HOUR_PER_ACCOUNT": "100000",
    "LWORK_SMS__PER_IP_PER_HOUR": "100000",
    "LWORK_SMS__PER_PREFIX_PER_HOUR": "100000",
    "LWORK_HTTP__IP_RATE_PER_MINUTE": "100000",
}


def _mounted(how: list[list[str]]) -> str | None:
    """Run each command in turn; None when all succeeded, else the failure."""
    for command in how:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return f"{' '.join(command[:3])}: {done.stderr.strip() or done.returncode}"
    return None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a file system of ``SIZE_MIB`` MiB, unmounted afterwards."""
    directory = tmp_path / "n1"
    directory.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the data dir needs root")
    why = _mounted([["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs",
                     str(directory)]])  # fmt: skip
    if why is not None:
        image = tmp_path / "disk.img"
        loop = [["truncate", "-s", f"{SIZE_MIB}M", str(image)], ["mkfs.ext4", "-q", str(image)],
                ["mount", "-o", "loop", str(image), str(directory)]]  # fmt: skip
        why_loop = _mounted(loop)
        if why_loop is not None:
            pytest.skip(f"neither a tmpfs ({why}) nor a loop device ({why_loop}) can be mounted")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """A filler file taking every free byte of ``directory``'s file system."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 512)
    return filler


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def writes(
    client: httpx.AsyncClient, url: str, gateway: SmsGateway, first: int, n: int
) -> list[Any]:
    """Requests that each write the database: a new account's sign-up, a known one's login and
    long poll. Every answer must be JSON with HTTP 200; what they said, in order."""
    said: list[Any] = []
    for k in range(first, first + n):
        phone = f"1370000{k:04d}"
        answers = [
            await client.post(
                url + "/lwork/sms/auth_code", json={"uuid": phone, "type": "register"}
            )
        ]
        with contextlib.suppress(LookupError, AssertionError):
            body = {"uuid": phone, "device_id": "A", "auth_code": gateway.last_code(phone),
                    "pwd": PWD, "group_id": "common"}  # fmt: skip
            answers.append(await client.post(url + "/lwork/mobile/register", json=body))
        login = {"acc": "13800138000", "pwd": PWD, "device_id": "A"}
        answers.append(await client.post(url + "/lwork/mobile/login", json=login))
        poll = {"acc": "13800138000", "device_id": "A", "clidata": "c"}
        answers.append(await client.post(url + "/channel/push_service", json=poll))
        for answer in answers:
            assert answer.status_code == 200, (answer.status_code, answer.text)
            said.append(answer.json())
    return said


async def test_a_full_disk_answers_service_not_available_and_recovers_when_space_returns(
    small_disk: Path, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    node = start_node("n1", tmp_path, {**ENV, "LWORK_SMS__GATEWAY_URL": sms_gateway.url})
    db = small_disk / "lwork.db"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_ready(client, node, tmp_path, "n1")
            await register_and_login(client, node, sms_gateway, "13800138000", "A")

            # requests keep running while the disk fills up
            background = asyncio.create_task(writes(client, node.url, sms_gateway, 1000, 10))
            filler = await asyncio.to_thread(fill, small_disk)
            said_while_filling = await asyncio.wait_for(background, 60)
            assert all(isinstance(a, dict) and "status" in a for a in said_while_filling)
            # free pages inside the database and its WAL take some writes: sign up until the
            # files must grow
            began = time.monotonic()
            said = []
            for k in range(0, 200, 5):
                said += await writes(client, node.url, sms_gateway, k, 5)
                if {"status": "failed", "reason": "service_not_available"} in said:
                    break
            assert time.monotonic() - began < 120  # answered, not hung on the full disk
            refusals = [a for a in said if a.get("status") == "failed"]
            assert refusals, "nothing was refused: the disk was not full for the database"
            assert {a["reason"] for a in refusals} <= {"service_not_available", "overtime"}
            assert {"status": "failed", "reason": "service_not_available"} in refusals
            assert node.process.poll() is None  # not crashed
            assert integrity(db) == "ok"

            filler.unlink()
            deadline = time.monotonic() + 20
            for k in range(200, 300):
                said = await writes(client, node.url, sms_gateway, k, 1)
                if all(a.get("status") == "ok" for a in said if a.get("reason") != "overtime"):
                    break
                assert time.monotonic() < deadline, f"writes did not recover: {said}"
                await asyncio.sleep(0.5)
            assert node.process.poll() is None  # the same process throughout
    finally:
        node.process.terminate()
        node.process.wait(15)
    assert integrity(db) == "ok"
