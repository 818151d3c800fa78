"""What both kinds of trunk call leg share: the listener protocol, the host they run on, the
handling of in-dialog requests from the carrier, and 2xx retransmission (RFC 3261 13.3.1.4).

Legs import no asyncio: the trunk (``LegHost``) sends for them and runs their timers. A leg
reports to its ``LegListener`` with plain synchronous calls, made from the event loop thread;
a listener that needs to await something should schedule a task.
"""

import enum
import logging
from collections.abc import Callable
from typing import Protocol

from lwork.sip.builders import create_response
from lwork.sip.dialog import Dialog, SentBy
from lwork.sip.dialog_snapshot import DialogSnapshot
from lwork.sip.headers import NameAddr
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.sdp import SessionDescription
from lwork.sip.transaction import Address, TimerSettings
from lwork.sip.trunk.config import TrunkConfig
from lwork.sip.trunk.refresh_sdp import first_codec, refresh_answer

log = logging.getLogger(__name__)

SDP = "application/sdp"
ResponseHandler = Callable[[SipResponse | None], None]
"""Called with each response to a request we sent, or None when the transaction timed out."""


class LegListener(Protocol):
    """The call service's side of a trunk leg. Synchronous callbacks, called on the loop.

    After the leg's own ``hangup()`` no callback is made any more.
    """

    def ringing(self, early_sdp: str | None) -> None:
        """Outbound: 180/183 arrived; ``early_sdp`` is the carrier's early media answer."""

    def answered(self, sdp: str) -> None:
        """Outbound: 200 OK arrived (already ACKed); ``sdp`` is the carrier's answer."""

    def failed(self, code: int, reason: str) -> None:
        """Outbound: final failure before answer (4xx-6xx, or 408 for our timeouts)."""

    def ended(self, reason: str) -> None:
        """Either direction: "remote_bye", "cancelled" (inbound) or "ack_timeout" (inbound)."""

    def media_moved(self, sdp: str) -> None:
        """Either direction: a re-INVITE or UPDATE from the carrier names another audio address
        than its last SDP (``sdp``, the new one): its media comes from there now."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class LegHost(Protocol):
    """What a leg needs from the trunk: sending, timers and its own bookkeeping."""

    config: TrunkConfig
    timers: TimerSettings
    sent_by: SentBy
    contact: NameAddr

    def send_request(
        self, request: SipRequest, peer: Address, on_response: ResponseHandler | None
    ) -> None: ...

    def send_response(self, response: SipResponse) -> None: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...

    def leg_closed(self, leg: "SipLeg") -> None: ...

    def count_handler_error(self) -> None: ...


class CallStateError(RuntimeError):
    """The call service asked for something the leg's state does not allow."""


class LegState(enum.Enum):
    OFFERED = "offered"  # INVITE sent (outbound) or received (inbound), nothing else yet
    EARLY = "early"  # provisional response sent or received
    ANSWERED = "answered"  # 2xx sent or received
    ENDED = "ended"


class SipLeg:
    """State common to both directions; subclasses drive the INVITE transaction."""

    def __init__(
        self, host: LegHost, call_id: str, peer: Address, listener: LegListener | None
    ) -> None:
        self.host = host
        self.call_id = call_id
        self.peer = peer
        self.listener = listener
        self.state = LegState.OFFERED
        self.dialog: Dialog | None = None
        self.local_sdp = ""
        self.remote_sdp: str | None = None
        """The carrier's latest SDP (None: none yet)."""
        self.end_reason: str | None = None
        self._closed = False
        self._refresh_ack: AckWaiter | None = None
        self._sdp_changes = 0
        """Times our answer to a re-INVITE changed codec: its origin version is this much
        past our SDP's (RFC 3264 §8)."""
        self._answered_codec: str | None = None
        self.codecs_sdp: str | None = None
        """Our SDP of the dialog listing every codec we take in a re-offer, when that is more
        than ``local_sdp`` (an inbound call answered G.711 alone may move to AMR); None:
        ``local_sdp``."""

    @property
    def is_active(self) -> bool:
        return self.state is not LegState.ENDED

    def persisted_dialog(self) -> str | None:
        """The confirmed dialog as JSON (``DialogSnapshot``), for a BYE after a crash."""
        if self.dialog is None or self.state is not LegState.ANSWERED:
            return None
        return DialogSnapshot.of(self.dialog, self.peer).to_json()

    def receive_in_dialog(self, request: SipRequest) -> None:
        """An in-dialog request from the carrier (RFC 3261 12.2.2)."""
        if self.dialog is None or not self.dialog.matches(request):
            self._respond(request, 481)
            return
        try:
            self.dialog.receive_request(request)
        except ValueError:
            self._respond(request, 500)
            return
        match request.method:
            case "BYE":
                self._respond(request, 200)
                self._end("remote_bye")
            case "INVITE" | "UPDATE":
                self._answer_refresh(request)
            case "INFO" | "OPTIONS" | "NOTIFY":
                self._respond(request, 200)
            case _:
                self._respond(request, 501)

    def receive_ack(self, request: SipRequest) -> None:
        if self._refresh_ack is not None:
            self._refresh_ack.acked()
            self._refresh_ack = None

    def _answer_refresh(self, request: SipRequest) -> None:
        # We keep our media where it is: a session refresh is answered with our SDP as it was,
        # an offer whose first codec our SDP lists but is not the agreed one with that codec
        # alone (`refresh_sdp`). The carrier's media may have moved; the relay takes media
        # only from where it was told, and transcodes only while the codecs differ.
        offer = body_text(request)
        answer = None
        if offer:
            ours = self.codecs_sdp or self.local_sdp
            answer = refresh_answer(ours, offer, self._sdp_changes + 1)
            agreed = self._answered_codec or first_codec(self.remote_sdp or "")
            if answer is None or first_codec(answer) == agreed:
                answer = None  # a session refresh: our SDP as it was
            else:
                self._sdp_changes += 1
                self._answered_codec = first_codec(answer)
        ok = self._ok_with_sdp(request, body=answer)
        self.host.send_response(ok)
        if request.method == "INVITE" and self.state is LegState.ANSWERED:
            if self._refresh_ack is not None:
                self._refresh_ack.acked()
            self._refresh_ack = AckWaiter(self.host, ok, reliable=self._reliable, on_give_up=None)
        if not offer or audio_address(offer) is None:
            return
        before = self.remote_sdp or ""
        moved = audio_address(offer) != audio_address(before)
        recoded = answer is not None and first_codec(offer) != first_codec(before)
        if moved or recoded:
            self.remote_sdp = offer
            self._notify(lambda listener: listener.media_moved(offer))

    def _ok_with_sdp(
        self, request: SipRequest, to_tag: str | None = None, body: str | None = None
    ) -> SipResponse:
        """A 200 with ``body``, by default our SDP of the dialog."""
        return create_response(
            request,
            200,
            to_tag=to_tag,
            contact=self.host.contact,
            body=(self.local_sdp if body is None else body).encode(),
            content_type=SDP,
        )

    @property
    def _reliable(self) -> bool:
        return self.host.sent_by.transport != "UDP"

    def _respond(self, request: SipRequest, code: int, to_tag: str | None = None) -> None:
        self.host.send_response(create_response(request, code, to_tag=to_tag))

    def _send_bye(self) -> None:
        if self.dialog is not None:
            self.host.send_request(self.dialog.create_request("BYE"), self.peer, None)
            self.dialog.terminate()

    def _end(self, reason: str) -> None:
        """The carrier ended the call: tell the listener, then forget the leg."""
        if self.state is LegState.ENDED:
            return
        self.state = LegState.ENDED
        self.end_reason = reason
        self._notify(lambda listener: listener.ended(reason))
        self._close()

    def _close(self) -> None:
        self.state = LegState.ENDED
        if self._refresh_ack is not None:
            self._refresh_ack.acked()
            self._refresh_ack = None
        self._cancel_timers()
        # The INVITE's client transaction keeps this leg for Timer M (32 s after the 2xx, RFC
        # 6026) to acknowledge a retransmitted 2xx; without its listener it no longer keeps
        # the whole call (engine state, records, statistics) alive that long.
        self.listener = None
        if not self._closed:
            self._closed = True
            self.host.leg_closed(self)

    def _cancel_timers(self) -> None:
        """Subclasses stop their own timers here."""

    def _notify(self, callback: Callable[[LegListener], None]) -> None:
        if self.listener is None:
            return
        try:
            callback(self.listener)
        except Exception:
            self.host.count_handler_error()
            log.exception("leg listener failed for call %s", self.call_id)


def audio_address(sdp: str) -> tuple[str, int] | None:
    """(connection address, port) of the first audio stream of ``sdp``; None when it has none
    or does not parse."""
    try:
        description = SessionDescription.parse(sdp)
    except ValueError:
        return None
    for media in description.media:
        if media.media == "audio" and media.port:
            connection = media.connection or description.connection
            return (connection.address if connection else "", media.port)
    return None


def body_text(message: SipRequest | SipResponse) -> str | None:
    """The SDP body as text, or None when there is none."""
    if not message.body or message.content_type != SDP:
        return None
    return message.body.decode("utf-8", errors="replace")


class AckWaiter:
    """Re-sends our 2xx to an INVITE until its ACK arrives (RFC 3261 13.3.1.4).

    Intervals start at T1 and double up to T2 on UDP; on any transport, 64*T1 without an ACK
    calls ``on_give_up`` (the caller sends BYE).
    """

    def __init__(
        self,
        host: LegHost,
        response: SipResponse,
        *,
        reliable: bool,
        on_give_up: Callable[[], None] | None,
    ) -> None:
        self._host = host
        self._response = response
        self._interval = host.timers.t1
        self._on_give_up = on_give_up
        self._resend: Cancellable | None = None
        if not reliable:
            self._resend = host.call_later(self._interval, self._retransmit)
        self._give_up = host.call_later(64 * host.timers.t1, self._expire)

    def acked(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        self._give_up.cancel()

    def _retransmit(self) -> None:
        self._host.send_response(self._response)
        self._interval = min(2 * self._interval, self._host.timers.t2)
        self._resend = self._host.call_later(self._interval, self._retransmit)

    def _expire(self) -> None:
        self.acked()
        if self._on_give_up is not None:
            self._on_give_up()
