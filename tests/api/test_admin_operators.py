"""Operator users of the console: Argon2id hashes, sessions kept hashed, ``lwork admin user
add`` reading the password from standard input only; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.accounts.passwords import PasswordService
from lwork.admin.operators import Operator, OperatorStore, csrf_matches, csrf_token
from lwork.boss.audit import AuditTrail
from lwork.storage.engine import create_engine, migrate
from lwork.storage.tables import operator_sessions, operators

PASSWORD = "correct horse battery"


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[OperatorStore]:
    passwords = PasswordService(time_cost=1, memory_kib=8192, parallelism=1, workers=1, queue=8)
    yield OperatorStore(engine, passwords)
    passwords.close()


async def test_operators_are_kept_as_argon2id_hashes(
    store: OperatorStore, engine: AsyncEngine
) -> None:
    assert await store.add("alice", "admin", PASSWORD, 1000.0) == Operator("alice", "admin")
    async with engine.connect() as conn:
        row = (await conn.execute(select(operators))).one()
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert await store.check("alice", PASSWORD) == Operator("alice", "admin")
    assert await store.check("alice", PASSWORD + "x") is None
    assert await store.check("nobody", PASSWORD) is None
    with pytest.raises(ValueError, match="exists already"):
        await store.add("alice", "support", PASSWORD, 1001.0)
    with pytest.raises(ValueError, match="role"):
        await store.add("bob", "root", PASSWORD, 1001.0)
    with pytest.raises(ValueError, match="at least 10"):
        await store.add("bob", "support", "short", 1001.0)
    with pytest.raises(ValueError, match="name"):
        await store.add("<b>bob</b>", "support", PASSWORD, 1001.0)
    support = await store.add("bob", "support", PASSWORD, 1001.0)
    assert not support.may_change and Operator("alice", "admin").may_change


async def test_sessions_are_stored_hashed_and_expire(
    store: OperatorStore, engine: AsyncEngine
) -> None:
    alice = await store.add("alice", "admin", PASSWORD, 1000.0)
    session = await store.open_session(alice, 3600, 1000.0)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(operator_sessions))).one()
    assert len(session) >= 43 and session not in stored.id_hash  # 256 random bits, not kept
    assert await store.session(session, 1000.0 + 3599) == alice
    assert await store.session(session, 1000.0 + 3600) is None  # expired
    assert await store.session(session + "x", 1001.0) is None
    # a later sign-in drops the sessions that have ended
    other = await store.open_session(alice, 60, 5000.0)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(operator_sessions))).all()) == 1
    await store.close_session(other)
    assert await store.session(other, 5001.0) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    token = csrf_token("session-a")
    assert csrf_matches("session-a", token)
    assert not csrf_matches("session-b", token)
    assert not csrf_matches("session-a", "")
    assert "session-a" not in token


async def lwork_admin(db_url: str, data_dir: Path, stdin: bytes, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "LWORK_DATA_DIR": str(data_dir),
        "LWORK_DATABASE__URL": db_url,
        "LWORK_AUTH__ARGON2_MEMORY_KIB": "8192",
        "LWORK_AUTH__ARGON2_TIME_COST": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lwork", "admin", "user", *args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_cli_adds_operators_with_the_password_from_stdin(
    db_url: str, tmp_path: Path
) -> None:
    code, out = await lwork_admin(db_url, tmp_path, PASSWORD.encode() + b"\n",
                                  "add", "carol", "--role", "support")  # fmt: skip
    assert code == 0, out
    assert "operator carol added (support)" in out
    code, out = await lwork_admin(db_url, tmp_path, b"tooshort\n", "add", "dave", "--role", "admin")
    assert code == 1 and "at least 10" in out
    code, out = await lwork_admin(db_url, tmp_path, PASSWORD.encode(), "add", "carol", "--role",
                                  "admin")  # fmt: skip
    assert code == 1 and "exists already" in out
    code, out = await lwork_admin(db_url, tmp_path, b"", "add", "erin", "--role", "root")
    assert code == 2 and "invalid choice" in out  # argparse refuses before any password
    code, out = await lwork_admin(db_url, tmp_path, b"", "add", "erin", PASSWORD, "--role", "admin")
    assert code == 2  # a password on the command line is not an option at all

    engine = create_engine(db_url, 2)
    try:
        await migrate(engine)
        passwords = PasswordService(time_cost=1, memory_kib=8192, parallelism=1, workers=1,
                                    queue=8)  # fmt: skip
        try:
            store = OperatorStore(engine, passwords)
            assert await store.check("carol", PASSWORD) == Operator("carol", "support")
            assert await store.check("dave", "tooshort") is None
        finally:
            passwords.close()
        trail = [
            (e.actor, e.action, e.result, e.detail) for e in await AuditTrail(engine).entries()
        ]
        assert trail == [
            ("cli", "operator_add", "ok", {"operator": "carol", "role": "support"}),
            ("cli", "operator_add", "invalid_params", {"operator": "dave", "role": "admin"}),
            ("cli", "operator_add", "invalid_params", {"operator": "carol", "role": "admin"}),
        ]
    finally:
        await engine.dispose()


async def test_the_cli_lists_removes_and_resets_operators(db_url: str, tmp_path: Path) -> None:
    secret = PASSWORD.encode() + b"\n"
    assert (await lwork_admin(db_url, tmp_path, secret, "add", "carol", "--role", "admin"))[0] == 0
    assert (await lwork_admin(db_url, tmp_path, secret, "add", "dave", "--role", "support"))[0] == 0
    code, out = await lwork_admin(db_url, tmp_path, b"", "list")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [["carol", "admin"],
                                                               ["dave", "support"]]  # fmt: skip

    engine = create_engine(db_url, 2)
    passwords = PasswordService(time_cost=1, memory_kib=8192, parallelism=1, workers=1, queue=8)
    try:
        store = OperatorStore(engine, passwords)
        carol = await store.check("carol", PASSWORD)
        dave = await store.check("dave", PASSWORD)
        assert carol is not None and dave is not None
        carol_session = await store.open_session(carol, 3600, time.time())
        dave_session = await store.open_session(dave, 3600, time.time())

        code, out = await lwork_admin(db_url, tmp_path, b"another password\n", "password", "carol")
        assert code == 0 and "sessions ended" in out
        assert await store.session(carol_session, time.time()) is None  # signed out
        assert await store.check("carol", PASSWORD) is None
        assert await store.check("carol", "another password") == carol

        code, out = await lwork_admin(db_url, tmp_path, b"", "remove", "dave")
        assert code == 0 and "removed" in out
        assert await store.session(dave_session, time.time()) is None
        assert await store.check("dave", PASSWORD) is None
        code, out = await lwork_admin(db_url, tmp_path, b"", "remove", "dave")
        assert code == 1 and "no operator dave" in out
        code, out = await lwork_admin(db_url, tmp_path, b"short\n", "password", "carol")
        assert code == 1 and "at least 10" in out
        actions = [(e.action, e.result) for e in await AuditTrail(engine).entries()]
        assert actions[-4:] == [("operator_pwd", "ok"), ("operator_del", "ok"),
                                ("operator_del", "no_such_operator"),
                                ("operator_pwd", "invalid_params")]  # fmt: skip
    finally:
        passwords.close()
        await engine.dispose()
