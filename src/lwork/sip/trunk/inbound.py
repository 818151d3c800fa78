"""Inbound trunk leg: an INVITE from the carrier, answered by the call service.

Theory of operation. The trunk builds an ``InboundCall`` for a new INVITE from a trusted
address and hands it to the call service's ``on_invite``. The service then decides: ``ring()``
(180, or 183 with early SDP), ``answer(sdp)`` (200, re-sent until the ACK comes, RFC 3261
13.3.1.4; no ACK within 64*T1 -> BYE and ended("ack_timeout")), ``reject(code)``. A CANCEL
before the answer gets 200, the INVITE 487 and the listener ended("cancelled"); a BYE gets 200
and ended("remote_bye"). The listener may be attached after the call has ended (a CANCEL can
beat the service): ``attach`` then reports the end at once.
"""

from dataclasses import dataclass

from lwork.sip.builders import create_response
from lwork.sip.dialog import Dialog
from lwork.sip.ids import new_tag
from lwork.sip.message import SipRequest
from lwork.sip.offer_answer import NoCommonCodec, select_audio
from lwork.sip.sdp import SessionDescription
from lwork.sip.transaction import Address
from lwork.sip.trunk.config import TrunkConfig
from lwork.sip.trunk.legs import (
    SDP,
    AckWaiter,
    CallStateError,
    LegHost,
    LegListener,
    LegState,
    SipLeg,
    body_text,
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the trunk answers a new INVITE itself instead of offering it to the call service."""

    code: int
    reason: str | None = None


def screen_invite(config: TrunkConfig, invite: SipRequest) -> tuple[str, str] | Refusal:
    """(caller, callee) of an acceptable new INVITE, or the refusal to answer it with.

    The callee must normalise to E.164 (else 404); the caller is kept as sent when it does not
    ("anonymous"). An SDP offer must parse (else 400) and share a codec with ``config.codecs``
    (else 488). An INVITE without an offer passes: the answer will carry ours.
    """
    try:
        callee = config.normalise(invite.uri.user or "")
    except ValueError:
        return Refusal(404)
    caller = invite.from_addr.uri.user or "anonymous"
    try:
        caller = config.normalise(caller)
    except ValueError:
        pass
    offer = body_text(invite)
    if offer:
        try:
            select_audio(SessionDescription.parse(offer), config.payload_formats())
        except NoCommonCodec:
            return Refusal(488)
        except ValueError:
            return Refusal(400, "Bad SDP")
    return caller, callee


def source_address(request: SipRequest) -> Address:
    """Where a request came from: the socket's address, which the transport stamped into its
    top Via as ``received`` (always) and ``rport`` (when asked for).

    Without ``rport`` the port is the Via's sent-by port, where RFC 3261 18.2.2 sends responses;
    only the host decides trust, and the host is never the sender's own claim.
    """
    via = request.top_via
    # No stamp means the request never came through a socket: an empty host, trusted by none.
    return via.received or "", via.rport or via.port or 5060


class InboundCall(SipLeg):
    """A call the carrier offers us.

    ``caller`` and ``callee`` are E.164 (``callee`` always; ``caller`` as sent when it is not
    a number, e.g. "anonymous"); ``remote_sdp`` is the carrier's offer ('' for none).
    """

    def __init__(
        self, host: LegHost, invite: SipRequest, peer: Address, *, caller: str, callee: str
    ) -> None:
        super().__init__(host, invite.call_id, peer, None)
        self.invite = invite
        self.caller = caller
        self.callee = callee
        self.remote_sdp: str = body_text(invite) or ""
        self._local_tag = new_tag()
        self._ack_waiter: AckWaiter | None = None
        self._acked = False
        # Raises ValueError (answer 400) for an INVITE without Contact or From tag.
        self.dialog = Dialog.from_uas_request(
            invite, local_tag=self._local_tag, local_contact=host.contact, sent_by=host.sent_by
        )

    @property
    def acked(self) -> bool:
        """Whether the carrier acknowledged our 200 OK."""
        return self._acked

    def attach(self, listener: LegListener) -> None:
        """Set the listener; if the call already ended, it hears ``ended`` at once."""
        self.listener = listener
        if self.end_reason is not None:
            reason = self.end_reason
            self._notify(lambda leg_listener: leg_listener.ended(reason))

    def ring(self, early_sdp: str | None = None) -> None:
        """180 Ringing, or 183 Session Progress carrying ``early_sdp``."""
        self._require(LegState.OFFERED, LegState.EARLY)
        if early_sdp is None:
            response = create_response(
                self.invite, 180, to_tag=self._local_tag, contact=self.host.contact
            )
        else:
            self.local_sdp = early_sdp
            response = create_response(
                self.invite,
                183,
                to_tag=self._local_tag,
                contact=self.host.contact,
                body=early_sdp.encode(),
                content_type=SDP,
            )
        self.state = LegState.EARLY
        self.host.send_response(response)

    def answer(self, sdp: str) -> None:
        """200 OK with our ``sdp``; re-sent until the carrier's ACK arrives."""
        self._require(LegState.OFFERED, LegState.EARLY)
        self.local_sdp = sdp
        ok = self._ok_with_sdp(self.invite, to_tag=self._local_tag)
        self.state = LegState.ANSWERED
        assert self.dialog is not None
        self.dialog.confirm()
        self.host.send_response(ok)
        self._ack_waiter = AckWaiter(
            self.host, ok, reliable=self._reliable, on_give_up=self._ack_timeout
        )

    def reject(self, code: int = 486, reason: str | None = None) -> None:
        """A final failure (486 busy, 404 unknown number, 480, 603...)."""
        if not 300 <= code <= 699:
            raise ValueError(f"not a failure status: {code}")
        self._require(LegState.OFFERED, LegState.EARLY)
        self.host.send_response(create_response(self.invite, code, reason, to_tag=self._local_tag))
        self._close()

    def hangup(self) -> None:
        """BYE after the answer, 480 before it; idempotent."""
        if self._closed:
            return
        if self.state is LegState.ANSWERED:
            self._send_bye()
            self._close()
        else:
            self.reject(480)

    def receive_cancel(self, cancel: SipRequest) -> None:
        self._respond(cancel, 200)
        if self.state in (LegState.OFFERED, LegState.EARLY):
            self.host.send_response(create_response(self.invite, 487, to_tag=self._local_tag))
            self._end("cancelled")

    def receive_ack(self, request: SipRequest) -> None:
        if self._ack_waiter is not None and request.cseq.seq == self.invite.cseq.seq:
            self._ack_waiter.acked()
            self._ack_waiter = None
            self._acked = True
            return
        super().receive_ack(request)

    def _ack_timeout(self) -> None:
        self._ack_waiter = None
        self._send_bye()
        self._end("ack_timeout")

    def _require(self, *states: LegState) -> None:
        if self.state not in states:
            raise CallStateError(f"not allowed once the call is {self.state.value}")

    def _cancel_timers(self) -> None:
        if self._ack_waiter is not None:
            self._ack_waiter.acked()
            self._ack_waiter = None
