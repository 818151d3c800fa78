"""The network-facing parsers as fuzz targets: bytes in, a value or the parser's documented error.

Each target mirrors what lwork does with a datagram or body from the wire (the HTTP edge's
order of checks, the SIP transport's lazy header reads, the relay's ng and RTP paths) and
swallows only the documented error; anything else escaping is a crash for the fuzzer.
Imported by bench/fuzz_parsers.py after atheris has hooked the imports (for coverage).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from lwork.accounts.api import LoginRequest
from lwork.errors import InvalidParams
from lwork.http.decode import parse_struct, too_deep
from lwork.http.envelope import EnvelopeError, unwrap_request
from lwork.http.server import HttpEdge
from lwork.media.ng import bencode
from lwork.media.ng.compact import parse_compact_stats
from lwork.media.ng.results import parse_call_stats
from lwork.media.ng.transport import to_text
from lwork.media.relay import rtcp
from lwork.media.relay.calls import CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import TelephoneEvent
from lwork.media.relay.ngserver import NgServer
from lwork.media.relay.rtp import RtpPacket, peek_header
from lwork.media.relay.sdp_rewrite import RewriteOptions, rewrite
from lwork.media.relay.session import Leg
from lwork.media.sdp_min import parse_sdp
from lwork.push.api import PollRequest
from lwork.sip.message import parse_message
from lwork.sip.sdp import SessionDescription

SIP_CAPTURES = Path(__file__).parents[1] / "tests" / "data" / "sip"


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    seeds: list[bytes]


def http_body(raw: bytes) -> None:
    """The edge's path for a request body: depth check, typed fast path, generic decode."""
    try:
        if too_deep(raw):
            return
        for struct in (LoginRequest, PollRequest):
            try:
                msgspec.json.decode(raw, type=struct)
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass
            body = HttpEdge._parse_body(raw)
            parse_struct(struct, {} if body is None else body)
    except InvalidParams:
        pass


def data_enc(raw: bytes) -> None:
    """An envelope's payload: the 7-character prefix, then (lenient) Base64 of JSON."""
    text = raw.decode("utf-8", "replace")
    for value in (text, "1234567" + base64.b64encode(raw).decode()):
        try:
            unwrap_request({"data_enc": value})
        except EnvelopeError:
            pass


def sip(raw: bytes) -> None:
    try:
        message = parse_message(raw)
    except ValueError:
        return
    for accessor in ("vias", "contacts", "record_routes", "routes", "from_addr", "to_addr", "cseq"):
        try:
            getattr(message, accessor)
        except ValueError:
            pass
    bytes(message)


def sdp(raw: bytes) -> None:
    text = raw.decode("utf-8", "surrogateescape")
    for parse in (
        SessionDescription.parse,
        lambda _: parse_sdp(text),
        lambda _: rewrite(text, "192.0.2.1", 30000, RewriteOptions(True, True, True)),
    ):
        try:
            parse(raw)
        except ValueError:
            pass


def rtp(raw: bytes) -> None:
    for parse in (RtpPacket.parse, peek_header, TelephoneEvent.parse):
        try:
            parse(raw)
        except ValueError:
            pass


def rtcp_compound(raw: bytes) -> None:
    try:
        rtcp.parse_compound(raw)
    except ValueError:
        pass


def ng_reply(raw: bytes) -> None:
    """What the ng client does with a relay's reply: bencode, then the statistics readers."""
    try:
        value = bencode.decode(raw)
    except ValueError:
        return
    if not isinstance(value, dict):
        return
    for parse in (lambda: parse_call_stats(to_text(value)), lambda: parse_compact_stats(value)):
        try:
            parse()
        except ValueError:
            pass


class _NoSockets:
    """The relay's port binder without sockets (the boundary, not lwork's logic)."""

    def open_pair(self, port: int) -> None:
        pass

    def attach(self, leg: Leg) -> None:
        pass

    def close_pair(self, port: int) -> None:
        pass

    def transcode(self, call: object, plan: object) -> bool:
        return False

    def untranscode(self, call: object) -> None:
        pass


def _fresh_ng_server() -> NgServer:
    table = CallTable(RelayConfig(port_min=30000, port_max=30100), _NoSockets(), lambda: 7)
    return NgServer(table, lambda *a: None, started_wall=0.0)


class _NgCommands:
    """The relay's ng server: answers a datagram or drops it, and never raises. A new cookie
    each time (a repeated one is answered from the retransmission cache without parsing), and a
    fresh server now and then (offers fill the port range)."""

    def __init__(self) -> None:
        self.count = 0
        self.server = _fresh_ng_server()

    def __call__(self, raw: bytes) -> None:
        self.count += 1
        if self.count % 500 == 0:
            self.server = _fresh_ng_server()
        cookie = b"c%d" % self.count
        now = float(self.count)
        reply = self.server.handle_datagram(cookie + b" " + raw, now, now, _NG_SOURCE)
        assert reply is None or reply.startswith(cookie + b" ")


_NG_SOURCE = ("127.0.0.1", 40000)
"""An allowed source (loopback): the fuzz is of the command parser, not of the source check."""

ng_command = _NgCommands()


def _sip_seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted(SIP_CAPTURES.glob("*.sip"))]


def _sdp_seeds() -> list[bytes]:
    bodies = [c.split(b"\r\n\r\n", 1)[1] for c in _sip_seeds() if b"application/sdp" in c]
    return [b for b in bodies if b] or [b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4 RTP/AVP 0\r\n"]


_LOGIN = b'{"acc":"13800000000","pwd":"p","device_id":"d","clidata":{"os_type":"android"}}'
_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 AMR/8000\r\n"
)
_OFFER = {b"command": b"offer", b"call-id": b"c", b"from-tag": b"a", b"sdp": _SDP}
_RTP = bytes.fromhex("80e0000100000a0000000001") + b"\x00" * 32
_RTCP = bytes.fromhex("81c9000700000001000000020000000000000001000000000000000000000000")

TARGETS: dict[str, Target] = {
    "http_body": Target(http_body, [_LOGIN, b'{"uuid":"138","session_id":"n1@x"}', b"[[[]]]"]),
    "data_enc": Target(data_enc, [_LOGIN, b'{"a":[1,{"b":null}]}']),
    "sip": Target(sip, _sip_seeds()),
    "sdp": Target(sdp, [_SDP, *_sdp_seeds()]),
    "rtp": Target(rtp, [_RTP, bytes.fromhex("80650001000000000000000105800140")]),
    "rtcp": Target(rtcp_compound, [_RTCP]),
    "ng_reply": Target(
        ng_reply, [b"d6:result2:oke", bencode.encode({b"result": b"ok", b"tags": {b"a": {}}})]
    ),
    "ng_command": Target(
        ng_command, [bencode.encode(_OFFER), b"d7:command4:pinge", b"d7:command4:liste"]
    ),
}
