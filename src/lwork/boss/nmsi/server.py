"""The NMSI TCP server: runs a session per connection and maps each command onto the BOSS
operation the HTTP interface would run for it (one call per command), written to the audit
trail with the NMSI user as actor.

| command | operation |
|---|---|
| ``CREATE_SIPREG_USER`` (``SDN``, ``PASSWORD``) | ``open`` (group ``dth``) |
| ``DELETE_SDN`` (``SDN1``) | ``close`` |
| ``MODIFY_SUB_ATTR`` (``SDN1``, ``NOTINUSE``) | ``deactivate`` if ``NOTINUSE=1``, else
``activate`` |
| ``CREATE_MSN``/``CREATE_MIXSUB`` (``NUM``, ``SUBNUM``) | ``bind`` |
| ``DELETE_MSN``/``DELETE_MIXSUB`` (``SUBNUM``) | ``unbind`` of the account the number is bound to |

``CREATE_SDN`` carries no password, and an account is opened with one: it is acknowledged and
audited, and the account is opened by the ``CREATE_SIPREG_USER`` that follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from lwork.accounts.phone import normalise_phone
from lwork.accounts.store import AccountStore
from lwork.boss.audit import AuditTrail
from lwork.boss.nmsi.commands import (
    BindNumber,
    Command,
    CommandError,
    CreateSdn,
    CreateSipregUser,
    DeleteSdn,
    Login,
    Logout,
    ModifySubAttr,
    UnbindNumber,
    Unhandled,
    parse_command,
)
from lwork.boss.nmsi.framing import (
    UNPARSABLE,
    BadFrame,
    CommandFrame,
    FrameDecoder,
    Header,
    Heartbeat,
    encode_ack,
)
from lwork.boss.nmsi.session import NmsiSession, SessionRules
from lwork.boss.operations import (
    AccountBody,
    BindBody,
    Body,
    BossOperations,
    OpenBody,
    Refusal,
    UnbindBody,
)

log = logging.getLogger("lwork.boss.nmsi")

FAILED = 1
"""The RETN of a command the service refused; its DESC is the reason HTTP would answer."""

OwnerOf = Callable[[str], Awaitable[str | None]]


def did_owner(store: AccountStore) -> OwnerOf:
    """The account a DID is bound to (not an account that merely has that number)."""

    async def owner(number: str) -> str | None:
        did = normalise_phone(number)
        found = (await store.owners_of([did])).get(did)
        return found if found is not None and found != did else None

    return owner


class NmsiServer:
    def __init__(
        self,
        operations: BossOperations,
        audit: AuditTrail,
        owner_of: OwnerOf,
        rules: SessionRules,
        max_frame: int,
        wall: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self._operations = operations
        self._audit = audit
        self._owner_of = owner_of
        self._rules = rules
        self._max_frame = max_frame
        self._wall = wall
        self._monotonic = monotonic
        self._actor = f"nmsi:{rules.user}"
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, host, port)
        address: tuple[str, int] = self._server.sockets[0].getsockname()[:2]
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Hung up rather than cancelled: each connection's read ends and its task returns (a
        # cancelled handler task is logged as an error by asyncio's streams).
        for writer in self._connections.values():
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("NMSI connection failed")
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = NmsiSession(self._rules, self._monotonic())
        decoder = FrameDecoder(self._max_frame)
        while not session.closing:
            wait = session.deadline() - self._monotonic()
            if wait <= 0:
                log.info("NMSI peer silent for three heartbeats: closed")
                return
            try:
                data = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                continue  # the loop's deadline check closes it
            if not data:
                return
            session.heard(self._monotonic())
            for event in decoder.feed(data):
                if isinstance(event, Heartbeat):
                    session.heartbeat(self._monotonic())
                elif isinstance(event, BadFrame):
                    writer.write(self._ack(event.header, "Unknow", event.retn, None))
                    if event.fatal:
                        session.closing = True
                else:
                    writer.write(await self._command(session, event))
                if session.closing:
                    break
            await writer.drain()

    async def _command(self, session: NmsiSession, frame: CommandFrame) -> bytes:
        try:
            name, command = parse_command(frame.text.decode("ascii"))
        except UnicodeDecodeError:
            return self._ack(frame.header, "Unknow", UNPARSABLE, "not ascii")
        except CommandError as exc:
            return self._ack(frame.header, "Unknow", UNPARSABLE, str(exc))
        if isinstance(command, Login):
            return self._ack(frame.header, name, session.login(command), None)
        if isinstance(command, Logout):
            return self._ack(frame.header, name, session.logout(command), None)
        refused = session.admit()
        if refused:
            return self._ack(frame.header, name, refused, None)
        retn, desc = await self._run(command, frame.header.tid)
        return self._ack(frame.header, name, retn, desc)

    async def _run(self, command: Command, tid: int) -> tuple[int, str | None]:
        request_id = f"nmsi-{tid}"
        operation: str
        fields: dict[str, Any]
        match command:
            case Unhandled():
                return 0, "unhandled."
            case CreateSdn(sdn=sdn):
                if not sdn:
                    return FAILED, "sdn empty"
                await self._record("create_sdn", {"account": sdn}, "ok")
                return 0, None
            case CreateSipregUser(sdn=sdn, password=password):
                operation, fields = "open", {"account": sdn, "pwd": password, "group": "dth"}
                body_type: type[Body] = OpenBody
            case DeleteSdn(sdn=sdn):
                operation, fields, body_type = "close", {"account": sdn}, AccountBody
            case ModifySubAttr(sdn=sdn, not_in_use=off):
                operation = "deactivate" if off else "activate"
                fields, body_type = {"account": sdn}, AccountBody
            case BindNumber(account=account, number=number):
                operation, fields = "bind", {"account": account, "phone": number}
                body_type = BindBody
            case UnbindNumber(number=number, account=account):
                try:
                    owner = account or (await self._owner_of(number) if number else None)
                except Exception:
                    log.exception("NMSI: the owner of %s could not be read", number)
                    return FAILED, "service_not_available"
                if not owner:
                    return 0, "phone_not_bound"  # the original answered RETN 0 always
                operation, fields = "unbind", {"account": owner, "phone": number}
                body_type = UnbindBody
        try:
            body = msgspec.convert({**fields, "request_id": request_id}, type=body_type)
        except msgspec.ValidationError:
            await self._record(operation, fields, "invalid_params")
            return FAILED, "invalid_params"
        try:
            await self._operations.run(operation, body)
            retn, desc, result = 0, None, "ok"
        except Refusal as exc:
            retn, desc, result = FAILED, exc.reason, exc.reason
        except Exception:
            log.exception("NMSI %s failed", operation)
            retn, desc, result = FAILED, "service_not_available", "service_not_available"
        await self._record(operation, fields, result)
        return retn, desc

    async def _record(self, operation: str, fields: dict[str, Any], result: str) -> None:
        try:
            await self._audit.record(self._actor, operation, fields, result, self._wall())
        except Exception:  # a failing database: the peer still gets its ack
            log.exception("NMSI audit of %s failed", operation)

    def _ack(self, header: Header | None, name: str, retn: int, desc: str | None) -> bytes:
        eid, tid = (header.eid, header.tid) if header is not None else (0, 0)
        return encode_ack(name, retn, desc, self._wall(), eid, tid)
