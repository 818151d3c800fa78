"""Callback endpoints (CONTRACT §6.3): start, status and hang-up of a two-leg phone call."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

from lwork.accounts.authorization import POLL, Proof
from lwork.accounts.service import AccountService
from lwork.calls import callback
from lwork.calls.api import session_id
from lwork.calls.caller import normalised_callee
from lwork.calls.engine import CallEngine
from lwork.calls.replies import CallbackStarted, CallbackStatus
from lwork.calls.router import CallRouter
from lwork.fraud.service import FraudService
from lwork.http.request import ApiRequest
from lwork.http.routing import Reply, Route

Short = Annotated[str, Meta(max_length=64)]


class CallbackRequest(Struct):
    uuid: Annotated[str, Meta(min_length=1, max_length=80)]
    local: Short
    """The user's own phone, called first."""
    remote: Short
    """The destination, called once ``local`` answers."""
    groupid: Short | None = None
    """Sent by the original apps; the group is the account's own."""
    token: Annotated[str, Meta(max_length=128)] | None = None


class CallbackApi:
    """Routes of ``/lwork/mobile/callback``."""

    def __init__(
        self,
        callbacks: CallEngine,
        accounts: AccountService,
        router: CallRouter,
        caller_id_from_did: bool = True,
        fraud: FraudService | None = None,
    ) -> None:
        self._fraud = fraud
        self._callbacks = callbacks
        self._accounts = accounts
        self._router = router
        self._caller_id_from_did = caller_id_from_did
        router.register("callback_status", self._status)
        router.register("callback_hangup", self._stop)

    def routes(self) -> list[Route]:
        path = "/lwork/mobile/callback"
        return [
            Route("POST", path, self.start, CallbackRequest, CallbackStarted,
                  summary="ring the user's phone, then the destination, and bridge them"),
            Route("GET", path, self.status, response=CallbackStatus,
                  summary="status of both legs (idle, ring, hookoff, release)"),
            Route("DELETE", path, self.stop, summary="hang up both legs"),
        ]  # fmt: skip

    async def start(self, req: ApiRequest) -> Reply:
        body = req.parse(CallbackRequest)
        local = normalised_callee(body.local)
        remote = normalised_callee(body.remote)
        proof = Proof(req.bearer or body.token, None, req.client_ip)
        session = await self._accounts.authorize(body.uuid, proof, POLL)
        bound = await self._accounts.may_call(session.uuid)
        if self._fraud is not None:  # CONTRACT §6.3: the user's own phone, or one allowed
            await self._fraud.check_callback_local(session.uuid, local)
        did = bound if self._caller_id_from_did else None
        sid = await callback.start(
            self._callbacks, session.uuid, local, remote, did or session.uuid
        )
        return CallbackStarted(session_id=sid)

    async def status(self, req: ApiRequest) -> Reply:
        sid = session_id(req.query_param("session_id"))
        return await self._router.run(sid, "callback_status")

    async def stop(self, req: ApiRequest) -> Reply:
        sid = session_id(req.query_param("session_id"))
        return await self._router.run(sid, "callback_hangup")

    async def _status(self, sid: str, args: dict[str, Any]) -> Reply:
        local, remote = callback.status(self._callbacks, sid)
        return CallbackStatus(local=local, remote=remote)

    async def _stop(self, sid: str, args: dict[str, Any]) -> Reply:
        await callback.hangup(self._callbacks, sid)
        return {"status": "ok"}
