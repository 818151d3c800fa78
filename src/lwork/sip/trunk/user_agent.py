"""The SIP trunk user agent: our calls to the carrier and the carrier's calls to us.

``Trunk`` is the thin asyncio adapter of the trunk: it owns one ``SipEndpoint`` (UDP or TCP),
routes the endpoint's events to call legs (``OutboundCall``, ``InboundCall``) and to the
REGISTER / OPTIONS machinery, enforces the admission rules (trusted sources, calls per
second, concurrent calls) and runs the legs' timers on the loop. Nothing a peer sends can
raise out of the event handler: malformed input is counted in ``stats`` and dropped.

Usage::

    trunk = Trunk(config, on_invite=take_call)   # or set trunk.on_invite before start()
    await trunk.start()
    call = await trunk.dial("+442079460000", caller_id="+441632960001", sdp=offer,
                            listener=leg_listener)          # raises TrunkBusy
    ...
    await trunk.close()
"""

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from lwork.sip.builders import create_response
from lwork.sip.dialog import SentBy
from lwork.sip.dialog_snapshot import DialogSnapshot
from lwork.sip.events import (
    AckReceived,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    StrayResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from lwork.sip.headers import NameAddr
from lwork.sip.ids import new_tag
from lwork.sip.matching import TransactionKey
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.transaction import DEFAULT_TIMERS, Address, TimerSettings, TransactionStateError
from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.inbound import InboundCall, Refusal, screen_invite, source_address
from lwork.sip.trunk.legs import CallStateError, Cancellable, LegListener, LegState, SipLeg
from lwork.sip.trunk.limits import TokenBucket, TrunkBusy, TrunkStats
from lwork.sip.trunk.outbound import OutboundCall
from lwork.sip.trunk.register import KeepAlive, Registration
from lwork.sip.trunk.transport import SipEndpoint
from lwork.sip.uri import SipUri

log = logging.getLogger(__name__)

OnInvite = Callable[[InboundCall], Awaitable[None]]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"

__all__ = [
    "CallStateError",
    "InboundCall",
    "LegListener",
    "NumberRule",
    "OnInvite",
    "OutboundCall",
    "Trunk",
    "TrunkBusy",
    "TrunkConfig",
    "TrunkStats",
]


class Trunk:
    """SIP user agent towards one carrier; see the module docstring."""

    def __init__(
        self,
        config: TrunkConfig,
        on_invite: OnInvite | None = None,
        *,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        self.config = config
        self.timers = timers
        self.on_invite = on_invite
        """Who takes the carrier's calls. It may be set after construction, because what answers
        them (the call service) dials through this trunk and so is built after it; ``start``
        refuses to listen without one."""
        self._endpoint = SipEndpoint(self._on_event, timers=timers)
        self._bucket = TokenBucket(config.calls_per_second, config.cps_burst)
        self._stats = TrunkStats()
        self._legs: dict[str, SipLeg] = {}
        self._clients: dict[TransactionKey, Callable[[SipResponse | None], None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._registration: Registration | None = None
        self.keepalive = KeepAlive(self, self._stats)
        self.local_address: Address | None = None
        self.sent_by = SentBy(config.transport.upper(), config.listen_host, config.listen_port)
        self.contact = NameAddr(SipUri(config.listen_host, "lwork"))

    @property
    def stats(self) -> TrunkStats:
        """A snapshot; ``malformed`` adds what the transport dropped before parsing."""
        snapshot = dataclasses.replace(self._stats)
        snapshot.malformed += self._endpoint.stats.malformed
        snapshot.active_calls = len(self._legs)
        return snapshot

    async def start(self) -> Address:
        """Bind the socket, then start REGISTER and OPTIONS keep-alive; returns the address."""
        if self.on_invite is None:
            raise CallStateError("trunk has no invite handler: set on_invite before start")
        config = self.config
        if config.transport == "tcp":
            address = await self._endpoint.listen_tcp(config.listen_host, config.listen_port)
        else:
            address = await self._endpoint.listen_udp(config.listen_host, config.listen_port)
        self.local_address = address
        host = config.advertised_host or address[0]
        self.sent_by = SentBy(config.transport.upper(), host, address[1])
        params = (("transport", "tcp"),) if config.transport == "tcp" else ()
        self.contact = NameAddr(SipUri(host, config.username or "lwork", address[1], params=params))
        if config.registrar is not None and config.username is not None:
            self._registration = Registration(self, self._stats)
            self._registration.start()
        self.keepalive.start()
        return address

    async def close(self) -> None:
        """Hang up every live call, stop the timers and close the sockets."""
        if self._registration is not None:
            self._registration.stop()
        self.keepalive.stop()
        for leg in list(self._legs.values()):
            if isinstance(leg, OutboundCall | InboundCall):
                leg.hangup()
        for task in list(self._tasks):
            task.cancel()
        await self._endpoint.close()

    async def dial(
        self, number: str, caller_id: str, sdp: str, listener: LegListener
    ) -> OutboundCall:
        """Send an INVITE for ``number`` (normalised to E.164) with our offer ``sdp``.

        Returns at once; progress arrives at ``listener``. Raises TrunkBusy over the
        concurrency or calls-per-second limit, ValueError for a number we cannot normalise.
        """
        if self.local_address is None:
            raise CallStateError("trunk not started")
        e164 = self.config.normalise(number)
        if len(self._legs) >= self.config.max_concurrent_calls:
            self._stats.busy_refused += 1
            raise TrunkBusy("concurrent calls")
        if not self._bucket.try_take(asyncio.get_running_loop().time()):
            self._stats.busy_refused += 1
            raise TrunkBusy("calls per second")
        call = OutboundCall(self, number=e164, caller_id=caller_id, sdp=sdp, listener=listener)
        self._legs[call.call_id] = call
        self._stats.calls_out += 1
        call.start()
        return call

    def end_persisted(self, snapshot: DialogSnapshot) -> None:
        """BYE for a dialog another process (or this node before a crash) answered."""
        if self.local_address is None:
            raise CallStateError("trunk not started")
        dialog = snapshot.restore(local_contact=self.contact, sent_by=self.sent_by)
        call_id = snapshot.call_id

        def on_response(response: SipResponse | None) -> None:
            outcome = "no answer" if response is None else str(response.status_code)
            log.info("BYE for the persisted dialog %s: %s", call_id, outcome)

        self.send_request(dialog.create_request("BYE"), snapshot.peer, on_response)

    # LegHost: what legs, registration and keep-alive use.

    def send_request(
        self,
        request: SipRequest,
        peer: Address,
        on_response: Callable[[SipResponse | None], None] | None,
    ) -> None:
        try:
            key = self._endpoint.send_request(request, peer)
        except TransactionStateError as exc:
            log.warning("could not send %s: %s", request.method, exc)
            return
        if key is not None and on_response is not None:
            self._clients[key] = on_response

    def send_response(self, response: SipResponse) -> None:
        try:
            self._endpoint.send_response(response)
        except TransactionStateError as exc:
            log.debug("response %s not sent: %s", response.status_code, exc)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, self._guarded, callback)

    def leg_closed(self, leg: SipLeg) -> None:
        if self._legs.get(leg.call_id) is leg:
            del self._legs[leg.call_id]

    def count_handler_error(self) -> None:
        self._stats.handler_errors += 1

    # Event routing.

    def _guarded(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            self._stats.handler_errors += 1
            log.exception("trunk timer callback failed")

    def _on_event(self, event: SipEvent) -> None:
        try:
            self._dispatch(event)
        except ValueError as exc:
            self._stats.malformed += 1  # parsed, but a header we needed was unusable
            log.debug("dropped %s: %s", type(event).__name__, exc)
        except Exception:
            self._stats.handler_errors += 1
            log.exception("trunk failed to handle %s", type(event).__name__)

    def _dispatch(self, event: SipEvent) -> None:
        match event:
            case ResponseReceived(key=key, response=response):
                handler = self._clients.get(key)
                if handler is None:
                    self._stats.unmatched += 1
                else:
                    handler(response)
            case TransactionTimedOut(key=key):
                if (timed_out := self._clients.pop(key, None)) is not None:
                    timed_out(None)
            case TransactionTerminated(key=key):
                self._clients.pop(key, None)
            case StrayResponseReceived(response=response):
                leg = self._legs.get(response.call_id)
                is_2xx = response.is_success and response.cseq.method == "INVITE"
                if is_2xx and isinstance(leg, OutboundCall):
                    leg.receive_stray_2xx(response)
                else:
                    self._stats.unmatched += 1
            case AckReceived(request=request):
                if (acked := self._legs.get(request.call_id)) is not None:
                    acked.receive_ack(request)
                else:
                    self._stats.unmatched += 1
            case RequestReceived(request=request):
                self._receive_request(request)

    def _receive_request(self, request: SipRequest) -> None:
        source = source_address(request)
        if not self.config.is_trusted(source[0]):
            self._stats.untrusted_rejected += 1
            self._respond(request, 403)
            return
        if request.to_addr.tag is not None:
            leg = self._legs.get(request.call_id)
            if leg is None:
                self._stats.unmatched += 1
                self._respond(request, 481)
            else:
                leg.receive_in_dialog(request)
            return
        match request.method:
            case "INVITE":
                self._receive_invite(request, source)
            case "CANCEL":
                cancelled = self._legs.get(request.call_id)
                if isinstance(cancelled, InboundCall):
                    cancelled.receive_cancel(request)
                else:
                    self._respond(request, 481)
            case "OPTIONS":
                self._respond(request, 200, [("Allow", ALLOW), ("Accept", "application/sdp")])
            case "BYE":
                self._respond(request, 481)
            case _:
                self._respond(request, 405, [("Allow", ALLOW)])

    def _receive_invite(self, invite: SipRequest, source: Address) -> None:
        if invite.call_id in self._legs:
            self._respond(invite, 482)  # a second branch of a call we already have
            return
        if len(self._legs) >= self.config.max_concurrent_calls:
            self._stats.busy_refused += 1
            self._respond(invite, 503)
            return
        screened = screen_invite(self.config, invite)
        if isinstance(screened, Refusal):
            self._respond(invite, screened.code, reason=screened.reason)
            return
        caller, callee = screened
        on_invite = self.on_invite
        if on_invite is None:  # unset again after start: nobody takes calls now
            self._respond(invite, 503)
            return
        try:
            call = InboundCall(self, invite, source, caller=caller, callee=callee)
        except ValueError:
            self._respond(invite, 400)
            return
        self._legs[call.call_id] = call
        self._stats.calls_in += 1
        task = asyncio.get_running_loop().create_task(self._offer(call, on_invite))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offer(self, call: InboundCall, on_invite: OnInvite) -> None:
        try:
            await on_invite(call)
        except Exception:
            self._stats.handler_errors += 1
            log.exception("on_invite failed for call %s", call.call_id)
            if call.state in (LegState.OFFERED, LegState.EARLY):
                call.reject(500)

    def _respond(
        self,
        request: SipRequest,
        code: int,
        extra_headers: list[tuple[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        # Out-of-dialog finals need a To tag of their own (RFC 3261 8.2.6.2).
        response = create_response(
            request, code, reason, to_tag=new_tag(), extra_headers=extra_headers or []
        )
        self.send_response(response)
