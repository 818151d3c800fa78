"""Call endpoints (CONTRACT §6.1–6.2): start, status, hang-up, DTMF, and the callee's p2p calls."""

from __future__ import annotations

import re
from typing import Annotated, Any

from msgspec import Meta, Struct

from lwork.accounts.authorization import DEVICE, DEVICE_AND_POLL, Proof
from lwork.accounts.phone import normalise_phone
from lwork.accounts.service import AccountService
from lwork.calls import callee, caller
from lwork.calls.caller import StartRequest, normalised_callee
from lwork.calls.engine import CallEngine
from lwork.calls.replies import AnswerResponse, CallStatus, PeerStatus, StartCallResponse
from lwork.calls.router import CallRouter
from lwork.errors import Failed, InvalidParams
from lwork.http.request import ApiRequest
from lwork.http.routing import Reply, Route

Short = Annotated[str, Meta(max_length=64)]
_SID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}@@[0-9a-f]{32}$")
_DTMF = re.compile(r"^[0-9*#A-D]{1,32}$")
UNKNOWN_MEDIA_PORT = 9
"""The port told to the relay for an app that gave none (``sip_answer`` without ``sdp``): the
discard port, SDP's usual placeholder. The relay latches onto the app's first RTP packet, so
only what it sends before that packet goes there (and is dropped)."""


class Sdp(Struct):
    port: int | Annotated[str, Meta(pattern=r"^\d{1,5}$")]
    ip: Any = None


class StartCallRequest(Struct):
    user_id: Annotated[str, Meta(min_length=1, max_length=80)]
    callee_phone: Short
    sdp: Sdp
    caller_phone: Short | None = None
    userclass: Short | None = None
    dev_id: Annotated[str, Meta(max_length=128)] | None = None
    type: Short | None = None
    acc: Short | None = None
    clidata: Any = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class DtmfRequest(Struct):
    session_id: Annotated[str, Meta(max_length=128)]
    num: Annotated[str, Meta(max_length=64)]


class Opdata(Struct):
    session_id: Annotated[str, Meta(max_length=128)]
    event: Short = "p2p"


class OpdataRequest(Struct):
    opdata: Opdata


class AnswerRequest(Struct):
    opdata: Opdata
    sdp: Sdp
    caller_phone: Short | None = None
    callee_phone: Short | None = None
    userclass: Short | None = None
    clidata: Any = None


def session_id(raw: str) -> str:
    """A call session id as the original accepted it (``%40`` and ``-40`` for ``@``)."""
    sid = raw.replace("%40", "@").replace("-40", "@")
    if not _SID.match(sid):
        raise Failed("invalid_sid")
    return sid


def media_port(sdp: Sdp) -> int:
    port = int(sdp.port)
    if not 1 <= port <= 65535:
        raise InvalidParams("sdp.port", "port must be 1..65535")
    return port


class SipAliasRequest(Struct):
    session_id: Annotated[str, Meta(max_length=128)]
    sdp: Sdp | None = None
    """Optional (CONTRACT §6.2): without it the app's media address is its first RTP packet's."""
    clidata: Any = None


class CallApi:
    def __init__(
        self,
        calls: CallEngine,
        accounts: AccountService,
        router: CallRouter,
        caller_id_from_did: bool = True,
    ) -> None:
        self._calls = calls
        self._accounts = accounts
        self._router = router
        self._caller_id_from_did = caller_id_from_did
        for name in ("status", "hangup", "dtmf", "ringing", "answer", "reject", "poll"):
            router.register(name, getattr(self, "_" + name))

    def routes(self) -> list[Route]:
        m = "/lwork/mobile/"
        return [
            Route("POST", m + "voip/calls", self.start, StartCallRequest, StartCallResponse),
            Route("GET", m + "voip/calls", self.status, response=CallStatus),
            Route("DELETE", m + "voip/calls", self.hangup),
            Route("POST", m + "voip/dtmf", self.dtmf, DtmfRequest),
            Route("POST", m + "p2p_ringing", self.ringing, OpdataRequest),
            Route("POST", m + "p2p_answer", self.answer, AnswerRequest, AnswerResponse),
            Route("POST", m + "p2p_reject", self.reject, OpdataRequest),
            Route("POST", m + "p2p_poll", self.poll, OpdataRequest, PeerStatus),
            # The spec's separate inbound endpoints ("not wanted"), kept as aliases.
            Route("POST", m + "sip_ringing", self.sip_ringing, SipAliasRequest),
            Route("POST", m + "sip_answer", self.sip_answer, SipAliasRequest, AnswerResponse),
            Route("POST", m + "sip_reject", self.sip_reject, SipAliasRequest),
        ]

    async def start(self, req: ApiRequest) -> Reply:
        body = req.parse(StartCallRequest)
        port = media_port(body.sdp)
        user = body.user_id.split("_", 1)[0]
        callee = normalised_callee(body.callee_phone)
        proof = Proof(req.bearer or body.token, body.dev_id, req.client_ip)
        # A phone call costs the account money; an app call is free (a fallback to the callee's
        # phone is the caller's cost too, but the contract asks only a device id of p2p).
        guard = DEVICE if body.type == "p2p" else DEVICE_AND_POLL
        session = await self._accounts.authorize(user, proof, guard)
        bound = await self._accounts.may_call(session.uuid)
        did = bound if self._caller_id_from_did else None
        return await caller.start(
            self._calls,
            StartRequest(
                caller=session.uuid,
                caller_display=normalise_phone(user),
                callee_phone=callee,
                client_ip=req.client_ip,
                port=port,
                p2p=body.type == "p2p",
                caller_id=did or session.uuid,
            ),
        )

    # Each endpoint for an existing call runs where the call lives (``router.py``).

    async def status(self, req: ApiRequest) -> Reply:
        sid = session_id(req.query_param("session_id"))
        return await self._router.run(sid, "status", {"client_ip": req.client_ip})

    async def hangup(self, req: ApiRequest) -> Reply:
        return await self._router.run(session_id(req.query_param("session_id")), "hangup")

    async def dtmf(self, req: ApiRequest) -> Reply:
        body = req.parse(DtmfRequest)
        if not _DTMF.match(body.num):
            raise InvalidParams("num", "num may hold only 0-9 * # A-D")
        return await self._router.run(session_id(body.session_id), "dtmf", {"num": body.num})

    async def ringing(self, req: ApiRequest) -> Reply:
        body = req.parse(OpdataRequest)
        return await self._router.run(self._p2p_sid(body.opdata), "ringing")

    async def answer(self, req: ApiRequest) -> Reply:
        body = req.parse(AnswerRequest)
        media = {"ip": req.client_ip, "port": media_port(body.sdp)}
        return await self._router.run(self._p2p_sid(body.opdata), "answer", media)

    async def reject(self, req: ApiRequest) -> Reply:
        body = req.parse(OpdataRequest)
        return await self._router.run(self._p2p_sid(body.opdata), "reject")

    async def poll(self, req: ApiRequest) -> Reply:
        body = req.parse(OpdataRequest)
        return await self._router.run(self._p2p_sid(body.opdata), "poll")

    async def sip_ringing(self, req: ApiRequest) -> Reply:
        body = req.parse(SipAliasRequest)
        return await self._router.run(self._sid_of(body.session_id), "ringing")

    async def sip_answer(self, req: ApiRequest) -> Reply:
        body = req.parse(SipAliasRequest)
        port = UNKNOWN_MEDIA_PORT if body.sdp is None else media_port(body.sdp)
        media = {"ip": req.client_ip, "port": port}
        return await self._router.run(self._sid_of(body.session_id), "answer", media)

    async def sip_reject(self, req: ApiRequest) -> Reply:
        body = req.parse(SipAliasRequest)
        return await self._router.run(self._sid_of(body.session_id), "reject")

    # the operations, as the call's own node runs them

    async def _status(self, sid: str, args: dict[str, Any]) -> Reply:
        status, stats = await caller.status(self._calls, sid, str(args.get("client_ip") or ""))
        return CallStatus(peer_status=status, state=status, stats=stats)

    async def _hangup(self, sid: str, args: dict[str, Any]) -> Reply:
        await caller.hangup(self._calls, sid)
        return {"status": "ok"}

    async def _dtmf(self, sid: str, args: dict[str, Any]) -> Reply:
        await caller.dtmf(self._calls, sid, str(args["num"]))
        return {"status": "ok"}

    async def _ringing(self, sid: str, args: dict[str, Any]) -> Reply:
        await callee.ringing(self._calls, sid)
        return {"status": "ok"}

    async def _answer(self, sid: str, args: dict[str, Any]) -> Reply:
        return await callee.answer(self._calls, sid, str(args["ip"]), int(args["port"]))

    async def _reject(self, sid: str, args: dict[str, Any]) -> Reply:
        await callee.reject(self._calls, sid)
        return {"status": "ok"}

    async def _poll(self, sid: str, args: dict[str, Any]) -> Reply:
        status, stats = await callee.peer_status(self._calls, sid)
        return PeerStatus(peer_status=status, stats=stats)

    @classmethod
    def _p2p_sid(cls, opdata: Opdata) -> str:
        # Both app calls (event p2p) and phone calls (event sip_call_in) are found by their id.
        return cls._sid_of(opdata.session_id)

    @staticmethod
    def _sid_of(raw: str) -> str:
        try:
            return session_id(raw)
        except Failed:
            raise Failed("session_not_exist") from None
