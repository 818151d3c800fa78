"""The account store's records beside accounts and sessions: numbers provisioned by the
operator's billing system (BOSS), and the devices' third-party push registrations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Delete, and_, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.tables import provisioning, push_registrations
from lwork.storage.units import Units


class AlreadyExists(Exception):
    """A unique key (uuid, name or DID) is taken."""


@dataclass(frozen=True, slots=True)
class Provisioned:
    account: str
    group_id: str
    pwd_hash: str
    active: bool
    did: str | None


class ProvisioningRecords:
    _engine: AsyncEngine
    _units: Units

    async def provisioned(self, account: str) -> Provisioned | None:
        """Read by every call's start (``may_call``): one hop (``storage.units``)."""
        return await self._units.run(_provisioned, account)

    async def provision(self, account: str, group_id: str, pwd_hash: str, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(provisioning).where(provisioning.c.account == account))
            await conn.execute(
                provisioning.insert().values(
                    account=account,
                    group_id=group_id,
                    pwd_hash=pwd_hash,
                    active=True,
                    did=None,
                    created_at=now,
                )
            )

    async def update_provisioning(self, account: str, **values: Any) -> bool:
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(provisioning).where(provisioning.c.account == account).values(**values)
                )
        except IntegrityError as exc:
            raise AlreadyExists(str(values)) from exc
        return bool(result.rowcount)


class PushRegistrations:
    _engine: AsyncEngine

    async def register_push(
        self, uuid: str, device_id: str, provider: str, token: str, user_id: str, now: float
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_delete_registration(uuid, device_id, provider))
            await conn.execute(
                push_registrations.insert().values(
                    uuid=uuid,
                    device_id=device_id,
                    provider=provider,
                    token=token,
                    user_id=user_id,
                    updated_at=now,
                )
            )

    async def push_registrations(self, uuid: str, device_id: str) -> dict[str, str]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(push_registrations.c.provider, push_registrations.c.token).where(
                    and_(
                        push_registrations.c.uuid == uuid,
                        push_registrations.c.device_id == device_id,
                    )
                )
            )
            return {row.provider: row.token for row in rows}

    async def remove_push_token(self, uuid: str, device_id: str, provider: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_delete_registration(uuid, device_id, provider))


def _delete_registration(uuid: str, device_id: str, provider: str) -> Delete:
    return delete(push_registrations).where(
        push_registrations.c.uuid == uuid,
        push_registrations.c.device_id == device_id,
        push_registrations.c.provider == provider,
    )


# Read by every call's start: built once (see ``storage.units``).
_PROVISIONED = select(provisioning).where(provisioning.c.account == bindparam("p_account"))


def _provisioned(conn: Connection, account: str) -> Provisioned | None:
    row = conn.execute(_PROVISIONED, {"p_account": account}).first()
    if row is None:
        return None
    return Provisioned(row.account, row.group_id, row.pwd_hash, row.active, row.did)
