"""Property tests: SIP, SDP and digest parsers return a value or raise ValueError, nothing else."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwork.sip.auth import DigestChallenge, DigestCredentials
from lwork.sip.headers import CSeq, NameAddr, Via
from lwork.sip.message import SipLimits, SipRequest, SipResponse, parse_message
from lwork.sip.offer_answer import PayloadFormat, select_audio
from lwork.sip.sdp import SessionDescription
from lwork.sip.stream import SipStreamParser
from lwork.sip.uri import SipUri

DATA = Path(__file__).parents[1] / "data" / "sip"
CAPTURES = [path.read_bytes() for path in sorted(DATA.glob("*.sip"))]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIP_ALPHABET = st.sampled_from(list(b'\r\n :;,<>"@=/.-_0123456789aAsSiIpPvV\t?[]\\\x00\xff'))


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CAPTURES)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(SIP_ALPHABET)
        if action == "insert" or position == len(data):
            data.insert(position, byte)
        elif action == "replace":
            data[position] = byte
        else:
            del data[position]
    return bytes(data)


def touch_everything(message: SipRequest | SipResponse) -> None:
    """Read every lazily parsed field; each may only fail with ValueError."""
    for accessor in ("vias", "contacts", "record_routes", "routes", "from_addr", "to_addr", "cseq"):
        try:
            getattr(message, accessor)
        except ValueError:
            pass


def parse_or_value_error(data: bytes) -> SipRequest | SipResponse | None:
    try:
        message = parse_message(data)
    except ValueError:
        return None
    touch_everything(message)
    # What we emit must be valid for us too.
    again = parse_message(bytes(message))
    assert bytes(again) == bytes(message)
    return message


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_give_a_message_or_value_error(data: bytes) -> None:
    parse_or_value_error(data)


@FUZZ
@given(mutated_capture())
def test_mutated_captures_give_a_message_or_value_error(data: bytes) -> None:
    parse_or_value_error(data)


@FUZZ
@given(st.text(max_size=200))
def test_header_value_parsers_raise_only_value_error(text: str) -> None:
    for parse in (SipUri.parse, NameAddr.parse, Via.parse, CSeq.parse):
        try:
            parse(text)
        except ValueError:
            pass


@FUZZ
@given(st.sampled_from(CAPTURES), st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_stream_chunking_does_not_change_the_messages(capture: bytes, cuts: list[int]) -> None:
    stream = capture + b"\r\n\r\n" + capture
    parser = SipStreamParser()
    messages = []
    position = 0
    for size in [*cuts, len(stream)]:
        messages += parser.feed(stream[position : position + size])
        position += size
    assert [bytes(m) for m in messages] == [bytes(parse_message(capture))] * 2


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=400), mutated_capture()), max_size=30))
def test_stream_parser_buffer_stays_bounded(chunks: list[bytes]) -> None:
    limits = SipLimits(max_message_size=3000)
    parser = SipStreamParser(limits)
    for chunk in chunks:
        try:
            for message in parser.feed(chunk):
                touch_everything(message)
        except ValueError:
            return  # the adapter closes the connection here
        assert parser.buffered <= limits.max_message_size


SDP_BODIES = [parse_message(c).body for c in CAPTURES if b"application/sdp" in c]


@FUZZ
@given(st.one_of(st.binary(max_size=600), st.sampled_from(SDP_BODIES)), st.data())
def test_sdp_parse_and_negotiate_raise_only_value_error(body: bytes, data: st.DataObject) -> None:
    mutated = bytearray(body)
    for _ in range(data.draw(st.integers(0, 4))):
        if mutated:
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(
                st.sampled_from(list(b" =:/-0123456789am\r\n"))
            )
    try:
        sdp = SessionDescription.parse(bytes(mutated))
    except ValueError:
        return
    assert SessionDescription.parse(bytes(sdp)) is not None
    try:
        select_audio(
            sdp, [PayloadFormat(96, "AMR", 8000, "octet-align=1"), PayloadFormat(0, "PCMU")]
        )
    except ValueError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_digest_parsers_raise_only_value_error(text: str) -> None:
    for parse in (DigestChallenge.parse, DigestCredentials.parse):
        try:
            parse(text)
            parse("Digest " + text)
        except ValueError:
            pass
