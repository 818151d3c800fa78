"""SMS verification codes: random, stored as an HMAC, expiring, attempt- and rate-limited."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.accounts.sms import SmsError, SmsProvider
from lwork.accounts.sms_caps import (
    DAY,
    HOUR,
    SendCaps,
    Usage,
    Window,
    number_prefix,
    wait_before_send,
)
from lwork.addresses import limit_key
from lwork.errors import Failed, TooManyRequests
from lwork.storage.tables import limit_locks, sms_codes
from lwork.telemetry import Telemetry

log = logging.getLogger("lwork.sms")
_LOCK = "sms_send"


@dataclass(frozen=True)
class CodePolicy:
    ttl_s: float
    max_attempts: int
    caps: SendCaps
    text: str


async def _window(conn: AsyncConnection, scope: ColumnElement[bool] | None, since: float) -> Window:
    recent = sms_codes.c.created_at > since
    where = recent if scope is None else and_(scope, recent)
    count, oldest = (
        await conn.execute(select(func.count(), func.min(sms_codes.c.created_at)).where(where))
    ).one()
    return Window(count, oldest)


class CodeService:
    def __init__(
        self,
        engine: AsyncEngine,
        provider: SmsProvider,
        policy: CodePolicy,
        secret: bytes,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._engine = engine
        self._provider = provider
        self._policy = policy
        self._secret = secret
        self._telemetry = telemetry or Telemetry()

    def _digest(self, phone: str, purpose: str, code: str) -> str:
        message = f"{phone}|{purpose}|{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def send(self, phone: str, purpose: str, client_ip: str, now: float) -> None:
        """Create a code for ``phone`` and text it; raise 429 when a cap is reached.

        The caps are counted in the database, so they hold across nodes; the lock row makes
        concurrent sends (on any node) check and insert one after the other, so parallel
        requests cannot all pass a count taken before any of them was recorded."""
        policy = self._policy
        ip_key = limit_key(client_ip)
        prefix = number_prefix(phone, policy.caps.prefix_length)
        async with self._engine.begin() as conn:
            # First statement a write: SQLite takes its write lock here, PostgreSQL the row's.
            await conn.execute(
                update(limit_locks).where(limit_locks.c.name == _LOCK).values(taken_at=now)
            )
            usage = Usage(
                last_to_number=await conn.scalar(
                    select(func.max(sms_codes.c.created_at)).where(sms_codes.c.phone == phone)
                ),
                number_day=await _window(conn, sms_codes.c.phone == phone, now - DAY),
                ip_hour=await _window(conn, sms_codes.c.ip_key == ip_key, now - HOUR),
                prefix_hour=await _window(conn, sms_codes.c.prefix == prefix, now - HOUR),
                global_hour=await _window(conn, None, now - HOUR),
            )
            wait = wait_before_send(policy.caps, usage, now)
            if wait:
                self._telemetry.sms.inc("refused")
                raise TooManyRequests(wait)
            code = f"{secrets.randbelow(1_000_000):06d}"
            # A new code replaces any older one for the same purpose.
            await conn.execute(
                update(sms_codes)
                .where(and_(sms_codes.c.phone == phone, sms_codes.c.purpose == purpose))
                .values(used=True)
            )
            row = await conn.execute(
                sms_codes.insert().values(
                    phone=phone,
                    purpose=purpose,
                    code_hash=self._digest(phone, purpose, code),
                    client_ip=client_ip,
                    ip_key=ip_key,
                    prefix=prefix,
                    created_at=now,
                    expires_at=now + policy.ttl_s,
                    attempts=0,
                    used=False,
                )
            )
            code_id = row.inserted_primary_key[0] if row.inserted_primary_key else None
        try:
            await self._provider.send(phone, policy.text.format(code=code), code)
        except SmsError as exc:
            self._telemetry.sms.inc("failed")
            log.warning("SMS to %s failed: %s", phone, exc)
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(sms_codes).where(sms_codes.c.id == code_id).values(used=True)
                )
            raise Failed("sms_failed") from exc
        self._telemetry.sms.inc("sent")

    async def check(self, phone: str, purpose: str, code: str, now: float) -> bool:
        """True once per valid code. Every check spends one of the code's attempts before the
        comparison, in one conditional UPDATE, so parallel guesses cannot share an attempt:
        after ``max_attempts`` checks in any interleaving the code is burned."""
        async with self._engine.begin() as conn:
            code_id = await conn.scalar(
                select(sms_codes.c.id)
                .where(
                    and_(
                        sms_codes.c.phone == phone,
                        sms_codes.c.purpose == purpose,
                        sms_codes.c.used.is_(False),
                        sms_codes.c.expires_at > now,
                    )
                )
                .order_by(sms_codes.c.created_at.desc())
                .limit(1)
            )
            if code_id is None:
                return False
            live = and_(
                sms_codes.c.id == code_id,
                sms_codes.c.used.is_(False),
                sms_codes.c.expires_at > now,
            )
            # PostgreSQL re-evaluates the WHERE on the locked row; SQLite runs one writer.
            spent = (
                await conn.execute(
                    update(sms_codes)
                    .where(and_(live, sms_codes.c.attempts < self._policy.max_attempts))
                    .values(attempts=sms_codes.c.attempts + 1)
                    .returning(sms_codes.c.code_hash, sms_codes.c.attempts)
                )
            ).first()
            if spent is None:
                return False
            if hmac.compare_digest(spent.code_hash, self._digest(phone, purpose, code)):
                taken = await conn.execute(
                    update(sms_codes).where(live).values(used=True).returning(sms_codes.c.id)
                )
                return taken.first() is not None
            if spent.attempts >= self._policy.max_attempts:
                await conn.execute(update(sms_codes).where(live).values(used=True))
            return False
