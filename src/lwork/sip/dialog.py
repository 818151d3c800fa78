"""SIP dialogs (RFC 3261 section 12): the state two UAs share between INVITE and BYE.

A dialog is created by a UAC from a 1xx (early) or 2xx (confirmed) response to its INVITE,
or by a UAS from the INVITE it answers. It owns the CSeq counters, the remote target (the
peer's Contact, refreshed by re-INVITE) and the route set taken from Record-Route, and builds
every in-dialog request: BYE, re-INVITE, INFO, and the ACK of a 2xx.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from lwork.sip.builders import create_request
from lwork.sip.headers import NameAddr, Via
from lwork.sip.ids import new_branch
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.uri import SipUri

# Requests whose Contact replaces the remote target (RFC 3261 12.2, RFC 3311, RFC 6665).
_TARGET_REFRESH = {"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"}


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True)
class SentBy:
    """Our own address as written in the Via of requests we send."""

    transport: str
    host: str
    port: int | None = None

    def via(self, branch: str) -> Via:
        return Via(self.transport, self.host, self.port, (("branch", branch), ("rport", None)))


@dataclass(slots=True, kw_only=True)
class Dialog:
    """One dialog as seen from our side; ``local``/``remote`` are relative to us."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    local_seq: int
    remote_seq: int | None
    remote_target: SipUri
    route_set: list[NameAddr]
    local_contact: NameAddr
    sent_by: SentBy
    secure: bool = False
    state: DialogState = DialogState.EARLY

    @classmethod
    def from_uac_response(
        cls,
        request: SipRequest,
        response: SipResponse,
        *,
        local_contact: NameAddr,
        sent_by: SentBy,
        secure_transport: bool = False,
    ) -> "Dialog":
        """Dialog created by a 101-299 response to our ``request`` (RFC 3261 12.1.2)."""
        remote_tag = response.to_addr.tag
        local_tag = request.from_addr.tag
        if not 100 < response.status_code < 300 or remote_tag is None or local_tag is None:
            raise ValueError("response does not establish a dialog")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=request.from_addr,
            remote_uri=response.to_addr,
            local_seq=request.cseq.seq,
            remote_seq=None,
            remote_target=_contact_uri(response),
            route_set=list(reversed(response.record_routes)),
            local_contact=local_contact,
            sent_by=sent_by,
            secure=secure_transport and request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    @classmethod
    def from_uas_request(
        cls,
        request: SipRequest,
        *,
        local_tag: str,
        local_contact: NameAddr,
        sent_by: SentBy,
        secure_transport: bool = False,
    ) -> "Dialog":
        """Dialog we create when answering ``request`` with To tag ``local_tag`` (12.1.1)."""
        remote_tag = request.from_addr.tag
        if remote_tag is None:
            raise ValueError("request has no From tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=request.to_addr.with_tag(local_tag),
            remote_uri=request.from_addr,
            local_seq=0,  # RFC 3261 12.1.1: empty until we send our first request
            remote_seq=request.cseq.seq,
            remote_target=_contact_uri(request),
            route_set=request.record_routes,
            local_contact=local_contact,
            sent_by=sent_by,
            secure=secure_transport and request.uri.scheme == "sips",
        )

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    def matches(self, message: SipRequest | SipResponse) -> bool:
        """Whether an in-dialog ``message`` travelling in either direction belongs here."""
        from_tag, to_tag = message.from_addr.tag, message.to_addr.tag
        if message.call_id != self.call_id:
            return False
        incoming = isinstance(message, SipRequest)
        local, remote = (to_tag, from_tag) if incoming else (from_tag, to_tag)
        return local == self.local_tag and remote == self.remote_tag

    def receive_response(self, request: SipRequest, response: SipResponse) -> None:
        """Update the dialog from a response to an in-dialog or dialog-creating request.

        A response with another To tag belongs to another (forked) dialog: ValueError.
        """
        if response.to_addr.tag != self.remote_tag:
            raise ValueError("response belongs to another dialog")
        if response.is_success and request.method in _TARGET_REFRESH and response.contacts:
            self.remote_target = response.contacts[0].uri
        if request.method != "INVITE" or self.state is not DialogState.EARLY:
            return
        if response.is_success:
            self.state = DialogState.CONFIRMED
            self.route_set = list(reversed(response.record_routes))  # recomputed (12.2.1.2)
        elif response.status_code >= 300:
            self.state = DialogState.TERMINATED

    def receive_request(self, request: SipRequest) -> None:
        """Account for an in-dialog request; ValueError means "answer 500" (12.2.2)."""
        if request.method not in ("ACK", "CANCEL"):
            seq = request.cseq.seq
            if self.remote_seq is not None and seq < self.remote_seq:
                raise ValueError("CSeq lower than the remote sequence number")
            self.remote_seq = seq
        if request.method in _TARGET_REFRESH and request.contacts:
            self.remote_target = request.contacts[0].uri
        if request.method == "BYE":
            self.state = DialogState.TERMINATED

    def confirm(self) -> None:
        """The UAS sent its 2xx."""
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> SipRequest:
        """A new in-dialog request (BYE, re-INVITE, INFO, UPDATE...) with the next CSeq."""
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not built from the dialog's CSeq; see create_ack")
        self.local_seq += 1
        return self._build(method, self.local_seq, body, content_type, extra_headers)

    def create_ack(
        self,
        invite: SipRequest,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> SipRequest:
        """ACK for a 2xx to ``invite``: same CSeq number, new branch (RFC 3261 13.2.2.4)."""
        return self._build("ACK", invite.cseq.seq, body, content_type, extra_headers)

    def _build(
        self,
        method: str,
        cseq: int,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, str]],
    ) -> SipRequest:
        uri, routes = self._request_target()
        return create_request(
            method,
            uri,
            via=self.sent_by.via(new_branch()),
            from_addr=self.local_uri.with_tag(self.local_tag),
            to_addr=self.remote_uri.with_tag(self.remote_tag),
            call_id=self.call_id,
            cseq=cseq,
            contact=self.local_contact if method in _TARGET_REFRESH else None,
            routes=routes,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )

    def _request_target(self) -> tuple[SipUri, list[NameAddr]]:
        """Request-URI and Route headers from the route set (RFC 3261 12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.is_loose_router:
            return self.remote_target, list(self.route_set)
        # Strict router: it goes in the Request-URI, the remote target at the end of Route.
        return first.uri.without_params(), [*self.route_set[1:], NameAddr(self.remote_target)]


def _contact_uri(message: SipRequest | SipResponse) -> SipUri:
    contacts = message.contacts
    if not contacts:
        raise ValueError("dialog-creating message has no Contact")
    return contacts[0].uri
