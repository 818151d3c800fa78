"""Operator users of the console and their sign-in sessions.

Passwords are Argon2id hashes made by the same ``PasswordService`` as the apps' (off the event
loop, bounded). A session's id is 256 random bits known only to the operator's browser; the
database keeps its SHA-256, so a copy of the table signs nobody in. The CSRF token of a session
is derived from its id (an HMAC), so it needs no storage and a stolen token reveals no session.

An operator may add a second factor (``lwork admin user totp NAME``): a TOTP secret kept sealed
(``second_factor.SecretBox``), each code accepted once (the step of the last one is kept and
only a later step passes, on every node, by one conditional UPDATE).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.accounts.passwords import PasswordService
from lwork.admin import totp
from lwork.admin.second_factor import SecretBox
from lwork.storage.tables import operator_sessions, operators

Role = Literal["admin", "support"]
ROLES: tuple[Role, ...] = ("admin", "support")
MIN_PASSWORD = 10
"""Shortest operator password: the console can end calls and, later, move money."""
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str
    totp: bool = False
    """Enrolled for TOTP: signing in asks for a code after the password (known where the
    operators row is read: sign-in and the list; a session's operator leaves it False)."""

    @property
    def may_change(self) -> bool:
        """``support`` only reads; every change needs ``admin``."""
        return self.role == "admin"


def valid_name(name: str) -> bool:
    """A name an operator may have (the rest are refused by ``add``)."""
    return _NAME.match(name) is not None


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The token every state-changing form of this session carries."""
    return hmac.new(session_id.encode(), b"lwork-admin-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_id: str, token: str) -> bool:
    return hmac.compare_digest(csrf_token(session_id), token)


class OperatorStore:
    def __init__(
        self, engine: AsyncEngine, passwords: PasswordService, server_secret: bytes | None = None
    ) -> None:
        """``server_secret``: the key TOTP secrets are sealed under (``secret_key``); without
        it nobody can enrol, and an operator enrolled before cannot sign in."""
        self._engine = engine
        self._passwords = passwords
        self._box = SecretBox(server_secret) if server_secret else None
        self._decoy: str | None = None

    async def add(self, name: str, role: str, password: str, now: float) -> Operator:
        """A new operator; ``ValueError`` naming what is wrong (name taken, bad role…)."""
        if not valid_name(name):
            raise ValueError("name: 1 to 64 letters, digits or _ . @ -")
        if role not in ROLES:
            raise ValueError(f"role: one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password: at least {MIN_PASSWORD} characters")
        hashed = await self._passwords.hash(password)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(operators).values(
                    name=name, role=role, password_hash=hashed, created_at=now,
                ))  # fmt: skip
        except IntegrityError as exc:
            raise ValueError(f"operator {name} exists already") from exc
        return Operator(name, role)

    async def all(self) -> list[tuple[Operator, float]]:
        """Every operator and when it was added, by name."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(operators).order_by(operators.c.name))).all()
        return [
            (Operator(row.name, row.role, row.totp_sealed is not None), row.created_at)
            for row in rows
        ]

    async def remove(self, name: str) -> None:
        """Remove an operator and end its sessions; ``LookupError`` if there is none."""
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(operators).where(operators.c.name == name))
            if gone.rowcount == 0:
                raise LookupError(f"no operator {name}")
            await conn.execute(
                delete(operator_sessions).where(operator_sessions.c.operator == name)
            )

    async def set_password(self, name: str, password: str) -> None:
        """A new password for ``name``; its sessions end (whoever held one signs in again)."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password: at least {MIN_PASSWORD} characters")
        hashed = await self._passwords.hash(password)
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(operators).where(operators.c.name == name).values(password_hash=hashed)
            )
            if changed.rowcount == 0:
                raise LookupError(f"no operator {name}")
            await conn.execute(
                delete(operator_sessions).where(operator_sessions.c.operator == name)
            )

    async def check(self, name: str, password: str) -> Operator | None:
        """The operator ``name`` if ``password`` is theirs. An unknown name costs a hash all
        the same, so the time taken does not tell which names exist."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(operators).where(operators.c.name == name))).first()
        if row is None:
            if self._decoy is None:
                self._decoy = await self._passwords.hash(secrets.token_hex(16))
            await self._passwords.verify(self._decoy, password)
            return None
        if not await self._passwords.verify(row.password_hash, password):
            return None
        return Operator(row.name, row.role, row.totp_sealed is not None)

    async def enrol_totp(self, name: str) -> bytes:
        """A new TOTP secret for ``name`` (replacing any); returned once, to show the operator,
        and kept only sealed. ``LookupError`` if there is no such operator."""
        if self._box is None:
            raise ValueError("no secret_key to seal the TOTP secret with")
        secret = totp.new_secret()
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(operators).where(operators.c.name == name)
                .values(totp_sealed=self._box.seal(secret, name), totp_last_step=None)
            )  # fmt: skip
            if changed.rowcount == 0:
                raise LookupError(f"no operator {name}")
        return secret

    async def drop_totp(self, name: str) -> None:
        """Sign-in by password alone again; ``LookupError`` if there is no such operator."""
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(operators).where(operators.c.name == name)
                .values(totp_sealed=None, totp_last_step=None)
            )  # fmt: skip
            if changed.rowcount == 0:
                raise LookupError(f"no operator {name}")

    async def use_code(self, name: str, code: str, now: float) -> Operator | None:
        """The operator ``name`` if ``code`` is its current TOTP code and no code of that step
        or a later one was accepted before (a replay, or an older code after a newer one)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(operators).where(operators.c.name == name))).first()
        if row is None or row.totp_sealed is None or self._box is None:
            return None
        try:
            key = self._box.open(row.totp_sealed, name)
        except ValueError:
            return None
        step = totp.matching_step(key, code, now)
        if step is None:
            return None
        async with self._engine.begin() as conn:
            # Two nodes given the same code at once: one UPDATE changes the row, one does not.
            taken = await conn.execute(
                update(operators)
                .where(operators.c.name == name, or_(operators.c.totp_last_step.is_(None),
                                                     operators.c.totp_last_step < step))
                .values(totp_last_step=step)
            )  # fmt: skip
        if taken.rowcount != 1:
            return None
        return Operator(row.name, row.role, True)

    async def open_session(self, operator: Operator, ttl_s: float, now: float) -> str:
        """A new session of ``operator``; its id, for the cookie (kept nowhere else)."""
        session_id = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            # Sessions that ended are dropped by whoever signs in next: the table stays small.
            await conn.execute(
                delete(operator_sessions).where(operator_sessions.c.expires_at <= now)
            )
            await conn.execute(insert(operator_sessions).values(
                id_hash=session_hash(session_id), operator=operator.name, created_at=now,
                expires_at=now + ttl_s,
            ))  # fmt: skip
        return session_id

    async def session(self, session_id: str, now: float) -> Operator | None:
        """The operator signed in by ``session_id``, if that session exists and has not
        expired (an operator removed since signs nobody in)."""
        query = (
            select(operators.c.name, operators.c.role)
            .join(operator_sessions, operator_sessions.c.operator == operators.c.name)
            .where(
                operator_sessions.c.id_hash == session_hash(session_id),
                operator_sessions.c.expires_at > now,
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Operator(row.name, row.role) if row is not None else None

    async def close_session(self, session_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(operator_sessions).where(
                    operator_sessions.c.id_hash == session_hash(session_id)
                )
            )
