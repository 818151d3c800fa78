"""Construction of requests (RFC 3261 8.1.1) and responses (8.2.6) from their parts."""

from collections.abc import Iterable, Sequence

from lwork.sip.headers import CSeq, Headers, NameAddr, Via
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.uri import SipUri

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 301: "Moved Permanently",
    302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 407: "Proxy Authentication Required",
    408: "Request Timeout", 415: "Unsupported Media Type", 420: "Bad Extension",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

# Responses to these requests may create a dialog, so they echo Record-Route (RFC 3261 12.1.1).
_DIALOG_CREATING = {"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"}


def create_request(
    method: str,
    uri: SipUri,
    *,
    via: Via,
    from_addr: NameAddr,
    to_addr: NameAddr,
    call_id: str,
    cseq: int,
    contact: NameAddr | None = None,
    routes: Sequence[NameAddr] = (),
    max_forwards: int = 70,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> SipRequest:
    """A request with the mandatory headers in the customary order."""
    headers = Headers([("Via", str(via))])
    for route in routes:
        headers.add("Route", str(route))
    headers.add("Max-Forwards", str(max_forwards))
    headers.add("From", str(from_addr))
    headers.add("To", str(to_addr))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", str(CSeq(cseq, method)))
    if contact is not None:
        headers.add("Contact", str(contact))
    for name, value in extra_headers:
        headers.add(name, value)
    if body and content_type is not None:
        headers.add("Content-Type", content_type)
    headers.add("Content-Length", str(len(body)))
    return SipRequest(method=method, uri=uri, headers=headers, body=body)


def create_cancel(request: SipRequest) -> SipRequest:
    """CANCEL for a pending ``request`` (RFC 3261 9.1): same branch, Route and CSeq number."""
    headers = Headers([("Via", str(request.top_via))])
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        headers.add(name, request.headers.get(name) or "")
    headers.add("CSeq", str(CSeq(request.cseq.seq, "CANCEL")))
    headers.add("Content-Length", "0")
    return SipRequest(method="CANCEL", uri=request.uri, headers=headers)


def create_response(
    request: SipRequest,
    status_code: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: NameAddr | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> SipResponse:
    """A response that echoes Via, From, To, Call-ID and CSeq of ``request``.

    ``to_tag`` is added to To unless the request already carries one (an in-dialog request).
    """
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    if request.method in _DIALOG_CREATING and 100 < status_code < 300:
        for record_route in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", record_route)
    headers.add("From", request.headers.get("From") or "")
    to_addr = request.to_addr
    if to_tag is not None and to_addr.tag is None and status_code > 100:
        headers.add("To", str(to_addr.with_tag(to_tag)))
    else:
        headers.add("To", request.headers.get("To") or "")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", str(request.cseq))
    if contact is not None:
        headers.add("Contact", str(contact))
    for name, value in extra_headers:
        headers.add(name, value)
    if body and content_type is not None:
        headers.add("Content-Type", content_type)
    headers.add("Content-Length", str(len(body)))
    if reason is None:
        reason = REASON_PHRASES.get(status_code, "Unknown")
    return SipResponse(status_code=status_code, reason=reason, headers=headers, body=body)
