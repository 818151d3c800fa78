"""Persistence of accounts and sessions (SQLAlchemy Core); provisioning and push registrations
are in ``store_records.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.accounts.authorization import PollSeen
from lwork.accounts.store_records import (
    AlreadyExists,
    ProvisioningRecords,
    PushRegistrations,
)
from lwork.storage.tables import accounts, provisioning, sessions
from lwork.storage.units import Units


@dataclass(frozen=True, slots=True)
class Account:
    uuid: str
    uuid_raw: str
    name: str | None
    pwd_hash: str
    group_id: str
    info: Any


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    uuid: str
    device_id: str
    os_type: str
    last_seen: float


def _account(row: Any) -> Account:
    info = json.loads(row.info) if row.info is not None else None
    return Account(row.uuid, row.uuid_raw, row.name, row.pwd_hash, row.group_id, info)


class AccountStore(ProvisioningRecords, PushRegistrations):
    """Accounts and sessions here; provisioned numbers and push registrations beside them."""

    def __init__(self, engine: AsyncEngine, units: Units | None = None) -> None:
        """``units``: how the call path's reads run in one hop (see ``storage.units``)."""
        self._engine = engine
        self._units = units or Units(engine, None)

    # accounts

    async def get(self, uuid: str) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.uuid == uuid))).first()
        return _account(row) if row else None

    async def group_of(self, number: str) -> str | None:
        """The group an account's calls are billed by, else its provisioned number's (BOSS may
        top a number up before its user registers); None: neither. Read by every paid call's
        start, twice (the fraud limits and the tariff): one hop (``storage.units``)."""
        return await self._units.run(_group_of, number)

    async def get_by_uuid_or_name(self, uuid: str, name: str) -> Account | None:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(accounts).where(or_(accounts.c.uuid == uuid, accounts.c.name == name))
                )
            ).all()
        # A uuid match wins over a name that happens to look like someone's number.
        for row in rows:
            if row.uuid == uuid:
                return _account(row)
        return _account(rows[0]) if rows else None

    async def name_taken(self, name: str) -> bool:
        async with self._engine.connect() as conn:
            return (
                await conn.scalar(select(accounts.c.uuid).where(accounts.c.name == name))
            ) is not None

    async def create(self, account: Account, now: float) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    accounts.insert().values(
                        uuid=account.uuid,
                        uuid_raw=account.uuid_raw,
                        name=account.name,
                        pwd_hash=account.pwd_hash,
                        group_id=account.group_id,
                        info=None,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(account.uuid) from exc

    async def set_password(self, uuid: str, pwd_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.uuid == uuid).values(pwd_hash=pwd_hash)
            )

    async def set_info(self, uuid: str, info: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.uuid == uuid).values(info=json.dumps(info))
            )

    # sessions

    async def start_session(self, session: Session, now: float) -> list[Session]:
        """Record ``session`` and end every other live session of its account.

        Returns the sessions that were ended; those on another device were kicked
        (``login_otherwhere``)."""
        async with self._engine.begin() as conn:
            # Concurrent logins of one account each read "the live sessions" before the others
            # wrote theirs, and several stayed live. A no-op write of the account row first
            # serialises them: PostgreSQL locks the row, SQLite takes its write lock.
            await conn.execute(
                update(accounts).where(accounts.c.uuid == session.uuid).values(uuid=accounts.c.uuid)
            )
            rows = (
                await conn.execute(
                    select(sessions).where(
                        and_(sessions.c.uuid == session.uuid, sessions.c.ended_at.is_(None))
                    )
                )
            ).all()
            ended = [
                Session(r.token_hash, r.uuid, r.device_id, r.os_type, r.last_seen) for r in rows
            ]
            for old in ended:
                reason = "login_otherwhere" if old.device_id != session.device_id else "relogin"
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == old.token_hash)
                    .values(ended_at=now, end_reason=reason)
                )
            await conn.execute(
                sessions.insert().values(
                    token_hash=session.token_hash,
                    uuid=session.uuid,
                    device_id=session.device_id,
                    os_type=session.os_type,
                    created_at=now,
                    last_seen=now,
                )
            )
        return ended

    async def live_session(self, uuid: str, not_seen_before: float) -> Session | None:
        """Read for every device a node first sees (its poll, an event to it, a call to it;
        ``LiveSessions`` caches it then): one hop (``storage.units``)."""
        return await self._units.run(_live_session_of, uuid, not_seen_before)

    async def session_by_token(self, token_hash: str, not_seen_before: float) -> Session | None:
        """Read by every request that carries a token: one hop (``storage.units``)."""
        return await self._units.run(_session_by_token, token_hash, not_seen_before)

    async def device_session(
        self, uuid: str, device_id: str, not_seen_before: float
    ) -> tuple[Session | None, str | None]:
        """The live session of this device, else why its newest session ended (or None)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(sessions)
                    .where(and_(sessions.c.uuid == uuid, sessions.c.device_id == device_id))
                    .order_by(sessions.c.created_at.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None, None
        if row.ended_at is None and row.last_seen > not_seen_before:
            return Session(
                row.token_hash, row.uuid, row.device_id, row.os_type, row.last_seen
            ), None
        return None, row.end_reason or "expired"

    async def uuid_for_number(self, number: str) -> str | None:
        """The account a dialled number reaches: its own uuid, or a DID bound to it."""
        return await self._units.run(_owner_of, number)

    async def owner_and_polling(
        self, number: str, not_polled_before: float
    ) -> tuple[str | None, bool]:
        """The account ``number`` reaches, and whether one of its live sessions long-polled
        after the given time: what placing a call to it asks first, in one hop."""
        return await self._units.run(_owner_and_polling, number, not_polled_before)

    async def owners_of(self, numbers: list[str]) -> dict[str, str]:
        """For each number among ``numbers`` that reaches an account (its uuid, or a DID bound
        to it): that account's uuid. Two queries, however many numbers."""
        if not numbers:
            return {}
        async with self._engine.connect() as conn:
            own = await conn.execute(select(accounts.c.uuid).where(accounts.c.uuid.in_(numbers)))
            found = {row[0]: row[0] for row in own}
            bound = await conn.execute(
                select(provisioning.c.did, provisioning.c.account).where(
                    provisioning.c.did.in_([n for n in numbers if n not in found])
                )
            )
            found.update({row[0]: row[1] for row in bound})
        return found

    async def inactive_among(self, uuids: list[str]) -> set[str]:
        """The provisioned accounts among ``uuids`` that are deactivated."""
        found: set[str] = set()
        async with self._engine.connect() as conn:
            for i in range(0, len(uuids), 500):  # bounded IN lists, whatever the call count
                rows = await conn.execute(_DEACTIVATED_AMONG, {"among": uuids[i : i + 500]})
                found.update(row[0] for row in rows)
        return found

    async def last_polls(self, uuids: list[str]) -> dict[str, float | None]:
        """For each existing account among ``uuids``: its live sessions' latest long poll."""
        if not uuids:
            return {}
        live = and_(sessions.c.uuid == accounts.c.uuid, sessions.c.ended_at.is_(None))
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(accounts.c.uuid, func.max(sessions.c.last_poll))
                .select_from(accounts.outerjoin(sessions, live))
                .where(accounts.c.uuid.in_(uuids))
                .group_by(accounts.c.uuid)
            )
            return {row[0]: row[1] for row in rows}

    async def polling_uuids(self, uuids: list[str], not_polled_before: float) -> set[str]:
        """Accounts among ``uuids`` whose live session long-polled after the given time."""
        if not uuids:
            return set()
        return await self._units.run(_polling, uuids, not_polled_before)

    async def touch_poll(self, token_hash: str, now: float, client_ip: str) -> None:
        await self.touch_polls({token_hash: (now, client_ip)})

    async def touch_polls(self, polls: dict[str, tuple[float, str]]) -> None:
        """Record the latest long poll (and sighting) of each session: token hash -> (time,
        client address)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.token_hash == bindparam("token"))
                .values(
                    last_seen=bindparam("at"), last_poll=bindparam("at"), poll_ip=bindparam("ip")
                ),
                [{"token": token, "at": at, "ip": ip} for token, (at, ip) in polls.items()],
            )

    async def poll_seen(self, token_hash: str) -> PollSeen:
        """When and from where the session last long-polled (as recorded: at most a flush of
        ``PollTouches`` behind, and never behind a change of network). Read by requests that
        spend or read private data: one hop (``storage.units``)."""
        return await self._units.run(_poll_seen, token_hash)

    async def touch_session(self, token_hash: str, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.token_hash == token_hash).values(last_seen=now)
            )

    async def end_sessions(
        self,
        uuid: str,
        now: float,
        reason: str,
        device_id: str | None = None,
        keep: str | None = None,
    ) -> list[Session]:
        """End the account's live sessions (only ``device_id``'s if given; all but the one
        whose token hash is ``keep``); returns those ended."""
        condition = and_(sessions.c.uuid == uuid, sessions.c.ended_at.is_(None))
        if device_id is not None:
            condition = and_(condition, sessions.c.device_id == device_id)
        if keep is not None:
            condition = and_(condition, sessions.c.token_hash != keep)
        async with self._engine.begin() as conn:
            rows = (await conn.execute(select(sessions).where(condition))).all()
            if rows:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash.in_([r.token_hash for r in rows]))
                    .values(ended_at=now, end_reason=reason)
                )
        return [Session(r.token_hash, r.uuid, r.device_id, r.os_type, r.last_seen) for r in rows]


# Every call's start and every request with a token read these: built once (see
# ``storage.units``).
# Run by the account sweep every few seconds on every worker: one built per call left a
# reference cycle each time (``bench.soak --census``).
_DEACTIVATED_AMONG = select(provisioning.c.account).where(
    provisioning.c.account.in_(bindparam("among", expanding=True)),
    provisioning.c.active.is_(False),
)
_GROUP = select(accounts.c.group_id).where(accounts.c.uuid == bindparam("a_number"))
_PROVISIONED_GROUP = select(provisioning.c.group_id).where(
    provisioning.c.account == bindparam("a_number")
)
_ACCOUNT_UUID = select(accounts.c.uuid).where(accounts.c.uuid == bindparam("a_number"))
_DID_OWNER = select(provisioning.c.account).where(provisioning.c.did == bindparam("a_number"))
_POLLING = select(sessions.c.uuid).where(
    sessions.c.uuid.in_(bindparam("a_uuids", expanding=True)),
    sessions.c.ended_at.is_(None),
    sessions.c.last_poll > bindparam("a_since"),
)
_POLL_SEEN = select(sessions.c.last_poll, sessions.c.poll_ip).where(
    sessions.c.token_hash == bindparam("a_token")
)
_SESSION_BY_TOKEN = select(sessions).where(
    sessions.c.token_hash == bindparam("a_token"),
    sessions.c.ended_at.is_(None),
    sessions.c.last_seen > bindparam("a_since"),
)
_LIVE_SESSION_OF = (
    select(sessions)
    .where(
        sessions.c.uuid == bindparam("a_uuid"),
        sessions.c.ended_at.is_(None),
        sessions.c.last_seen > bindparam("a_since"),
    )
    .order_by(sessions.c.created_at.desc())
    .limit(1)
)


def _group_of(conn: Connection, number: str) -> str | None:
    group = conn.scalar(_GROUP, {"a_number": number})
    if group is None:
        group = conn.scalar(_PROVISIONED_GROUP, {"a_number": number})
    return str(group) if group is not None else None


def _owner_of(conn: Connection, number: str) -> str | None:
    found = conn.scalar(_ACCOUNT_UUID, {"a_number": number})
    if found is None:
        found = conn.scalar(_DID_OWNER, {"a_number": number})
    return str(found) if found is not None else None


def _polling(conn: Connection, uuids: list[str], not_polled_before: float) -> set[str]:
    rows = conn.execute(_POLLING, {"a_uuids": uuids, "a_since": not_polled_before})
    return {row.uuid for row in rows}


def _owner_and_polling(
    conn: Connection, number: str, not_polled_before: float
) -> tuple[str | None, bool]:
    owner = _owner_of(conn, number)
    return owner, owner is not None and bool(_polling(conn, [owner], not_polled_before))


def _poll_seen(conn: Connection, token_hash: str) -> PollSeen:
    row = conn.execute(_POLL_SEEN, {"a_token": token_hash}).first()
    return PollSeen(None, None) if row is None else PollSeen(row.last_poll, row.poll_ip)


def _session_by_token(conn: Connection, token_hash: str, not_seen_before: float) -> Session | None:
    row = conn.execute(
        _SESSION_BY_TOKEN, {"a_token": token_hash, "a_since": not_seen_before}
    ).first()
    return _session_of_row(row)


def _live_session_of(conn: Connection, uuid: str, not_seen_before: float) -> Session | None:
    row = conn.execute(_LIVE_SESSION_OF, {"a_uuid": uuid, "a_since": not_seen_before}).first()
    return _session_of_row(row)


def _session_of_row(row: Row[Any] | None) -> Session | None:
    if row is None:
        return None
    return Session(row.token_hash, row.uuid, row.device_id, row.os_type, row.last_seen)
