"""Outbound trunk leg: our INVITE to the carrier, from first provisional to BYE.

Theory of operation. ``start()`` sends the INVITE (with the SDP the call service gave us) to
the proxy and arms two timers: no provisional response within ``provisional_timeout_s`` and
no answer within ``ring_timeout_s`` both end in failed(408). Responses come back through
``_on_invite_response``: 18x -> ringing, 2xx -> ACK + answered, 401/407 -> the INVITE is sent
once more with digest credentials, other finals -> failed. A 2xx seen again (retransmitted,
or reported as stray after the transaction ended) is ACKed again; a 2xx from another fork,
or one that arrives after we gave up, is ACKed and hung up at once.

``hangup()`` sends CANCEL before the answer (deferred until a provisional response arrives,
RFC 3261 9.1) and BYE after it. After a local hangup the listener hears nothing more;
``final_status`` still records the carrier's final answer (487 after a CANCEL).
"""

from lwork.sip.auth import (
    DigestChallenge,
    answer_challenge,
    authorization_header_name,
    challenge_header_name,
)
from lwork.sip.builders import create_cancel, create_request
from lwork.sip.dialog import Dialog
from lwork.sip.headers import NameAddr
from lwork.sip.ids import new_branch, new_call_id, new_cnonce, new_tag
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.trunk.legs import (
    SDP,
    CallStateError,
    Cancellable,
    LegHost,
    LegListener,
    LegState,
    SipLeg,
    body_text,
)
from lwork.sip.uri import SipUri

DTMF_DIGITS = frozenset("0123456789*#ABCD")


class OutboundCall(SipLeg):
    """A call we place through the trunk. Created by ``Trunk.dial``."""

    def __init__(
        self, host: LegHost, *, number: str, caller_id: str, sdp: str, listener: LegListener
    ) -> None:
        config = host.config
        super().__init__(host, new_call_id(config.request_domain), config.proxy_address, listener)
        self.number = number
        self.caller_id = caller_id
        self.local_sdp = sdp
        self.remote_sdp: str | None = None
        self.final_status: int | None = None
        self._local_tag = new_tag()
        self._cseq = 1
        self._invite = self._build_invite()
        self._auth_tried = False
        self._rang = False
        self._early_sdp_sent = False
        self._cancel_requested = False
        self._cancel_sent = False
        self._ack: SipRequest | None = None
        self._timers: list[Cancellable] = []

    def start(self) -> None:
        config = self.host.config
        self._timers = [
            self.host.call_later(config.provisional_timeout_s, self._no_provisional),
            self.host.call_later(config.ring_timeout_s, self._no_answer),
        ]
        self._send_invite()

    def hangup(self) -> None:
        """CANCEL before the answer, BYE after it; idempotent."""
        if self._closed:
            return
        if self.state is LegState.ANSWERED:
            self._send_bye()
        else:
            self._cancel()
        self._close()

    def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """One DTMF digit as SIP INFO application/dtmf-relay, for trunks without RFC 4733."""
        if digit.upper() not in DTMF_DIGITS or len(digit) != 1:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if self.state is not LegState.ANSWERED or self.dialog is None:
            raise CallStateError("DTMF needs an answered call")
        body = f"Signal={digit.upper()}\r\nDuration={duration_ms}\r\n".encode()
        info = self.dialog.create_request("INFO", body=body, content_type="application/dtmf-relay")
        self.host.send_request(info, self.peer, None)

    def receive_stray_2xx(self, response: SipResponse) -> None:
        """A 2xx retransmission after the INVITE transaction is gone: ACK it again."""
        self._on_2xx(response)

    def _build_invite(self, authorization: tuple[str, str] | None = None) -> SipRequest:
        config = self.host.config
        domain = config.request_domain
        try:
            caller = config.dial_string(config.normalise(self.caller_id))
        except ValueError:
            caller = self.caller_id  # "anonymous" and other non-numbers pass as given
        headers = [("User-Agent", config.user_agent)]
        if authorization is not None:
            headers.append(authorization)
        return create_request(
            "INVITE",
            SipUri(domain, config.dial_string(self.number)),
            via=self.host.sent_by.via(new_branch()),
            from_addr=NameAddr(SipUri(domain, caller)).with_tag(self._local_tag),
            to_addr=NameAddr(SipUri(domain, config.dial_string(self.number))),
            call_id=self.call_id,
            cseq=self._cseq,
            contact=self.host.contact,
            body=self.local_sdp.encode(),
            content_type=SDP,
            extra_headers=headers,
        )

    def _send_invite(self) -> None:
        self.host.send_request(self._invite, self.peer, self._on_invite_response)

    def _on_invite_response(self, response: SipResponse | None) -> None:
        if response is None:  # timer B: nothing at all from the carrier
            self._fail(408, "Request Timeout")
            return
        code = response.status_code
        if code < 200:
            self._on_provisional(response)
        elif code < 300:
            self._on_2xx(response)
        elif code in (401, 407) and self._retry_with_credentials(response):
            return
        else:
            self.final_status = code
            self._fail(code, response.reason)

    def _on_provisional(self, response: SipResponse) -> None:
        if self.state is LegState.OFFERED:
            self.state = LegState.EARLY
        if self._cancel_requested and not self._cancel_sent:
            self._send_cancel()
        if self._closed or response.status_code == 100:
            return
        sdp = body_text(response)
        if not self._rang or (sdp is not None and not self._early_sdp_sent):
            self._rang = True
            self._early_sdp_sent = sdp is not None
            self._notify(lambda listener: listener.ringing(sdp))

    def _on_2xx(self, response: SipResponse) -> None:
        host = self.host
        if self.dialog is not None:
            if response.to_addr.tag == self.dialog.remote_tag:
                if self._ack is not None:
                    host.send_request(self._ack, self.peer, None)
                return
            self._ack_and_bye(response)  # a second fork answered too
            return
        self.final_status = response.status_code
        if self._closed:
            self._ack_and_bye(response)  # answered after we hung up or gave up
            return
        try:
            dialog = Dialog.from_uac_response(
                self._invite, response, local_contact=host.contact, sent_by=host.sent_by
            )
        except ValueError:
            self._ack_and_bye(response)
            self._fail(502, "Bad Gateway")
            return
        self.dialog = dialog
        self._ack = dialog.create_ack(self._invite)
        host.send_request(self._ack, self.peer, None)
        self.state = LegState.ANSWERED
        self.remote_sdp = body_text(response) or ""
        self._cancel_timers()
        sdp = self.remote_sdp
        self._notify(lambda listener: listener.answered(sdp))

    def _ack_and_bye(self, response: SipResponse) -> None:
        try:
            dialog = Dialog.from_uac_response(
                self._invite, response, local_contact=self.host.contact, sent_by=self.host.sent_by
            )
        except ValueError:
            return  # no Contact or tag: nothing we could address an ACK to
        self.host.send_request(dialog.create_ack(self._invite), self.peer, None)
        self.host.send_request(dialog.create_request("BYE"), self.peer, None)

    def _retry_with_credentials(self, response: SipResponse) -> bool:
        config = self.host.config
        if self._auth_tried or self._closed or config.username is None:
            return False
        if config.password is None:
            return False
        try:
            challenge = DigestChallenge.parse(
                response.headers.get(challenge_header_name(response.status_code)) or ""
            )
            credentials = answer_challenge(
                challenge,
                username=config.username,
                password=config.password,
                method="INVITE",
                uri=str(self._invite.uri),
                cnonce=new_cnonce(),
            )
        except ValueError:
            return False
        self._auth_tried = True
        self._cseq += 1
        header = (authorization_header_name(response.status_code), str(credentials))
        self._invite = self._build_invite(header)
        self._send_invite()
        return True

    def _cancel(self) -> None:
        self._cancel_requested = True
        if self.state is LegState.EARLY:
            self._send_cancel()

    def _send_cancel(self) -> None:
        self._cancel_sent = True
        self.host.send_request(create_cancel(self._invite), self.peer, None)

    def _no_provisional(self) -> None:
        if self.state is LegState.OFFERED:
            self._fail(408, "Request Timeout")

    def _no_answer(self) -> None:
        if self.state in (LegState.OFFERED, LegState.EARLY) and not self._closed:
            self._cancel()
            self._fail(408, "Request Timeout")

    def _fail(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._notify(lambda listener: listener.failed(code, reason))
        self._close()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []
