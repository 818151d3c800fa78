"""SIP message parsing and serialisation against captured carrier messages."""

from pathlib import Path

import pytest

from lwork.sip.builders import create_request, create_response
from lwork.sip.headers import CSeq, Headers, NameAddr, Via, canonical_name
from lwork.sip.message import SipLimits, SipRequest, SipResponse, parse_message
from lwork.sip.stream import SipStreamParser
from lwork.sip.uri import SipUri

DATA = Path(__file__).parents[2] / "data" / "sip"
CANONICAL = sorted(p.name for p in DATA.glob("*.sip") if p.name != "invite_compact.sip")


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", CANONICAL)
def test_canonical_capture_round_trips_byte_exact(name: str) -> None:
    data = load(name)
    assert b"\r\n\r\n" in data
    assert bytes(parse_message(data)) == data


def test_invite_capture_fields() -> None:
    invite = parse_message(load("invite.sip"))
    assert isinstance(invite, SipRequest)
    assert invite.method == "INVITE"
    assert invite.uri == SipUri("198.51.100.7", user="862150001234", port=5060)
    assert [via.branch for via in invite.vias] == [
        "z9hG4bK-524287-1---7a1e5c3f9b2d4e60",
        "z9hG4bK3f6b2e.0",
    ]
    assert invite.top_via.param("rport") == ""
    assert invite.top_via.rport is None
    assert invite.vias[1].received == "10.20.0.5"
    assert invite.from_addr.display_name == "8613912345678"
    assert invite.from_addr.tag == "as5c1b7e21"
    assert invite.to_addr.tag is None
    assert invite.cseq == CSeq(102, "INVITE")
    assert invite.call_id == "4d1b6e0f1c3a2b5e7f9a@203.0.113.10"
    assert [str(rr.uri) for rr in invite.record_routes] == ["sip:203.0.113.10;lr;ftag=as5c1b7e21"]
    assert invite.record_routes[0].uri.is_loose_router
    assert invite.contacts[0].uri.param("transport") == "udp"
    assert invite.content_type == "application/sdp"
    assert invite.body.startswith(b"v=0\r\n") and invite.body.endswith(b"a=sendrecv\r\n")
    assert invite.headers.get_list("Allow")[:3] == ["INVITE", "ACK", "CANCEL"]


def test_response_capture_fields() -> None:
    trying = parse_message(load("trying.sip"))
    assert isinstance(trying, SipResponse)
    assert (trying.status_code, trying.reason, trying.is_provisional) == (100, "Trying", True)
    assert trying.top_via.rport == 5060
    assert trying.top_via.received == "203.0.113.10"
    ok = parse_message(load("ok_invite.sip"))
    assert isinstance(ok, SipResponse) and ok.is_success
    assert ok.to_addr.tag == "9fxced76sl"


def test_compact_forms_expand_to_canonical_names() -> None:
    message = parse_message(load("invite_compact.sip"))
    names = [name for name, _ in message.headers]
    assert names == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact", "Supported",
        "Content-Type", "Content-Length",
    ]  # fmt: skip
    assert len(message.vias) == 2
    assert message.vias[1].host == "10.20.0.5" and message.vias[1].port is None
    assert message.from_addr.display_name == "Carrier Caller"
    output = bytes(message)
    assert b"\r\nCall-ID: a84b4c76e66710@203.0.113.10\r\n" in output
    assert bytes(parse_message(output)) == output


def test_header_lookup_is_case_insensitive_and_accepts_compact_names() -> None:
    message = parse_message(load("invite.sip"))
    assert message.headers.get("call-id") == message.headers.get("i") == message.call_id
    assert "CONTENT-TYPE" in message.headers and "c" in message.headers
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Carrier-Hint") == "X-Carrier-Hint"


def test_headers_set_replaces_all_lines_at_first_position() -> None:
    headers = Headers([("Route", "<sip:a;lr>"), ("To", "<sip:b@c>"), ("route", "<sip:d;lr>")])
    headers.set("Route", "<sip:e;lr>")
    assert list(headers) == [("Route", "<sip:e;lr>"), ("To", "<sip:b@c>")]
    headers.prepend("Via", "SIP/2.0/UDP h;branch=z9hG4bKx")
    headers.remove("to")
    assert [name for name, _ in headers] == ["Via", "Route"]


def test_empty_list_header_and_odd_names() -> None:
    message = parse_message(load("register.sip").replace(b"User-Agent: lwork/0.1", b"Supported:"))
    assert message.headers.get_list("Supported") == []
    assert "Supported" in message.headers and "no such header" not in message.headers


def test_folded_header_lines_are_joined() -> None:
    data = load("register.sip").replace(b"User-Agent: lwork/0.1", b"User-Agent: lwork/0.1\r\n  (x)")
    assert parse_message(data).headers.get("User-Agent") == "lwork/0.1 (x)"


def test_datagram_drops_bytes_past_content_length_and_accepts_missing_length() -> None:
    data = load("invite.sip")
    assert parse_message(data + b"garbage").body == parse_message(data).body
    without_length = data.replace(b"Content-Length: ", b"X-Was-Length: ")
    assert parse_message(without_length).body == parse_message(data).body


def test_lf_only_line_endings_are_accepted() -> None:
    message = parse_message(load("bye.sip").replace(b"\r\n", b"\n"))
    assert message.cseq == CSeq(103, "BYE")


@pytest.mark.parametrize(
    ("find", "replace"),
    [
        (b"INVITE sip:", b"INVITE  sip:"),
        (b"SIP/2.0\r\n", b"SIP/3.0\r\n"),
        (b"INVITE sip:862150001234@198.51.100.7:5060", b"INVITE tel:+862150001234"),
        (b"CSeq: 102 INVITE", b"CSeq: 102 BYE"),
        (b"CSeq: 102 INVITE", b"CSeq: x INVITE"),
        (b"Call-ID: ", b"X-Call-ID: "),
        (b"Via: SIP/2.0/UDP 203", b"Via: SIP/1.0/UDP 203"),
        (b"From: ", b"From "),
        (b"To: <sip:862150001234@198.51.100.7>", b"To: <sip:862150001234@198.51.100.7"),
        (b"Content-Length: ", b"Content-Length: 9"),
        (b"Content-Length: ", b"Content-Length: -"),
        (b"\r\n\r\nv=0", b"\r\nv=0"),
        (b"Max-Forwards: 69", b"Max-Forwards: 6\x019"),
        (b"Contact: <sip:8613912345678@", b"Contact: <sip:8613912345678@@"),
    ],
)
def test_malformed_messages_raise_value_error(find: bytes, replace: bytes) -> None:
    data = load("invite.sip")
    assert find in data
    with pytest.raises(ValueError):
        message = parse_message(data.replace(find, replace, 1))
        message.contacts  # noqa: B018 - Contact is parsed lazily


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n\r\n", b"SIP/2.0 999 Nope\r\n\r\n", b"SIP/2.0 20 OK\r\n\r\n", b"\xff\xfe\r\n\r\n"],
)
def test_garbage_start_lines_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_message(data)


def test_limits_bound_size_and_header_count() -> None:
    data = load("invite.sip")
    with pytest.raises(ValueError, match="too large"):
        parse_message(data, SipLimits(max_message_size=len(data) - 1))
    with pytest.raises(ValueError, match="header lines"):
        parse_message(data, SipLimits(max_headers=10))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@atlanta.com", SipUri("atlanta.com", user="alice")),
        (
            "sips:alice:secret@atlanta.com:5061",
            SipUri("atlanta.com", "alice", 5061, "sips", "secret"),
        ),
        (
            "sip:+8613912345678@10.0.0.1;user=phone",
            SipUri("10.0.0.1", "+8613912345678", params=(("user", "phone"),)),
        ),
        (
            "sip:[2001:db8::1]:5060;transport=tcp",
            SipUri("[2001:db8::1]", None, 5060, params=(("transport", "tcp"),)),
        ),
        (
            "sip:gw.example;lr?Subject=call",
            SipUri("gw.example", params=(("lr", None),), headers="Subject=call"),
        ),
    ],
)
def test_uri_parse_and_serialise(text: str, expected: SipUri) -> None:
    assert SipUri.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "tel:+123",
        "sip:",
        "sip:alice@",
        "sip:host:99999",
        "sip:host:5x",
        "sip:[::1",
        "sip:a b@c",
        "sip:h;=x",
    ],
)
def test_invalid_uris_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        SipUri.parse(text)


def test_uri_helpers() -> None:
    uri = SipUri.parse("sips:proxy.example;lr;maddr=10.0.0.1?X=1")
    assert uri.is_loose_router and uri.transport == "TLS"
    assert str(uri.without_params()) == "sips:proxy.example"
    assert (
        str(uri.with_param("transport", "tcp"))
        == "sips:proxy.example;lr;maddr=10.0.0.1;transport=tcp?X=1"
    )


@pytest.mark.parametrize(
    ("text", "display", "uri", "tag"),
    [
        (
            '"Bob \\"B\\" Smith" <sip:bob@b.example>;tag=a1',
            'Bob "B" Smith',
            "sip:bob@b.example",
            "a1",
        ),
        ("Bob Smith <sip:bob@b.example>", "Bob Smith", "sip:bob@b.example", None),
        ("sip:bob@b.example;tag=x9", None, "sip:bob@b.example", "x9"),
        ("<sip:bob@b.example;transport=tcp>;tag=z", None, "sip:bob@b.example;transport=tcp", "z"),
    ],
)
def test_name_addr_forms(text: str, display: str | None, uri: str, tag: str | None) -> None:
    addr = NameAddr.parse(text)
    assert (addr.display_name, str(addr.uri), addr.tag) == (display, uri, tag)
    assert NameAddr.parse(str(addr)) == addr


def test_name_addr_with_tag_and_canonical_output() -> None:
    addr = NameAddr.parse("Bob <sip:bob@b.example>").with_tag("t1")
    assert str(addr) == '"Bob" <sip:bob@b.example>;tag=t1'


def test_via_parse_and_update() -> None:
    via = Via.parse("SIP / 2.0 / tcp  10.0.0.1:5070;branch=z9hG4bKab;rport")
    assert (via.transport, via.host, via.port, via.branch) == ("TCP", "10.0.0.1", 5070, "z9hG4bKab")
    filled = via.with_param("rport", "40123").with_param("received", "198.51.100.9")
    assert (
        str(filled)
        == "SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKab;rport=40123;received=198.51.100.9"
    )
    assert filled.rport == 40123


def test_contact_wildcard_gives_no_contacts() -> None:
    data = load("register.sip").replace(
        b"Contact: <sip:862150001234@198.51.100.7:5060;transport=tcp>;expires=3600", b"Contact: *"
    )
    assert parse_message(data).contacts == []


def test_built_request_and_response_parse_back() -> None:
    invite = create_request(
        "INVITE",
        SipUri.parse("sip:8613800138000@trunk.example"),
        via=Via("UDP", "198.51.100.7", 5060, (("branch", "z9hG4bKabc"),)),
        from_addr=NameAddr.parse("<sip:862150001234@trunk.example>;tag=f1"),
        to_addr=NameAddr.parse("<sip:8613800138000@trunk.example>"),
        call_id="c1@198.51.100.7",
        cseq=1,
        contact=NameAddr.parse("<sip:862150001234@198.51.100.7:5060>"),
        routes=[NameAddr.parse("<sip:sbc.example;lr>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    parsed = parse_message(bytes(invite))
    assert isinstance(parsed, SipRequest)
    assert parsed.routes[0].uri.host == "sbc.example"
    assert parsed.body == b"v=0\r\n"
    ringing = create_response(parsed, 180, to_tag="t9")
    assert (ringing.reason, ringing.to_addr.tag) == ("Ringing", "t9")
    assert ringing.headers.get_all("Via") == parsed.headers.get_all("Via")
    trying = create_response(parsed, 100, to_tag="t9")
    assert trying.to_addr.tag is None


def test_response_to_dialog_creating_request_echoes_record_route() -> None:
    invite = parse_message(load("invite.sip"))
    assert isinstance(invite, SipRequest)
    ok = create_response(invite, 200, to_tag="abc", body=b"v=0\r\n", content_type="application/sdp")
    assert ok.headers.get_all("Record-Route") == invite.headers.get_all("Record-Route")
    assert create_response(invite, 486).headers.get("Record-Route") is None


class TestStreamParser:
    def test_byte_by_byte_feed_yields_each_message_once(self) -> None:
        stream = load("invite.sip") + b"\r\n\r\n" + load("register.sip") + load("bye.sip")
        parser = SipStreamParser()
        messages = [m for i in range(len(stream)) for m in parser.feed(stream[i : i + 1])]
        assert [bytes(m) for m in messages] == [
            load(n) for n in ("invite.sip", "register.sip", "bye.sip")
        ]
        assert parser.keepalives_received == 1
        assert parser.buffered == 0

    def test_several_messages_in_one_chunk_and_partial_body(self) -> None:
        invite = load("invite.sip")
        parser = SipStreamParser()
        first = parser.feed(load("trying.sip") + invite[:-10])
        assert [m.start_line() for m in first] == ["SIP/2.0 100 Trying"]
        assert [bytes(m) for m in parser.feed(invite[-10:])] == [invite]

    def test_missing_content_length_is_fatal(self) -> None:
        parser = SipStreamParser()
        with pytest.raises(ValueError, match="mandatory"):
            parser.feed(load("bye.sip").replace(b"Content-Length: 0\r\n", b""))
        with pytest.raises(ValueError, match="already failed"):
            parser.feed(load("bye.sip"))

    def test_endless_header_block_is_refused_at_the_limit(self) -> None:
        parser = SipStreamParser(SipLimits(max_message_size=2000))
        parser.feed(b"INVITE sip:a@b SIP/2.0\r\n")
        with pytest.raises(ValueError, match="size limit"):
            for _ in range(100):
                parser.feed(b"X-Filler: " + b"y" * 50 + b"\r\n")
        assert parser.buffered == 0

    def test_announced_body_over_the_limit_is_refused_before_it_arrives(self) -> None:
        parser = SipStreamParser(SipLimits(max_message_size=4000))
        with pytest.raises(ValueError, match="size limit"):
            parser.feed(load("bye.sip").replace(b"Content-Length: 0", b"Content-Length: 5000"))
