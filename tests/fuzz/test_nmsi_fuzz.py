"""Property tests: the NMSI decoder and command grammar take any bytes and text, however cut,
and answer frames, refusals or CommandError, never anything else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwork.boss.nmsi.commands import CommandError, parse_command
from lwork.boss.nmsi.framing import (
    COMMAND,
    HEADER_SIZE,
    BadFrame,
    CommandFrame,
    FrameDecoder,
    Heartbeat,
    encode_frame,
)  # fmt: skip

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_FRAME = 1024
GRAMMAR = st.text(alphabet=list('ABCDEFSN_019:=,;" \x00é\n'), max_size=80)
COMMANDS = [b'90000:1="oss",2="pw";', b"CREATE_SDN:SDN1=0215,DAS=5;", b"2101;", b"X;"]


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events += decoder.feed(data[start:cut])
        start = max(start, cut)
    return events


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=8))
def test_any_bytes_make_frames_or_refusals(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    events = feed_in_chunks(decoder, data, cuts)
    assert all(isinstance(e, CommandFrame | Heartbeat | BadFrame) for e in events)
    assert decoder.buffered < MAX_FRAME  # never more than one frame's worth is held
    fatal = [i for i, e in enumerate(events) if isinstance(e, BadFrame) and e.fatal]
    assert fatal in ([], [len(events) - 1])  # nothing after the stream is given up


@st.composite
def mutated_stream(draw: st.DrawFn) -> bytes:
    frames = draw(st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=4))
    data = bytearray(b"".join(encode_frame(COMMAND, text, tid=i) for i, text in enumerate(frames)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(mutated_stream(), st.lists(st.integers(0, 400), max_size=6))
def test_mutated_frames_make_frames_or_refusals(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    for event in feed_in_chunks(decoder, data, cuts):
        if isinstance(event, CommandFrame):
            assert len(event.text) == event.header.length - HEADER_SIZE
            try:
                parse_command(event.text.decode("ascii"))
            except (UnicodeDecodeError, CommandError):
                pass


@FUZZ
@given(st.lists(st.sampled_from(COMMANDS), max_size=6), st.lists(st.integers(0, 500)))
def test_valid_frames_come_back_whole_however_cut(texts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(encode_frame(COMMAND, t, eid=i, tid=i) for i, t in enumerate(texts))
    events = feed_in_chunks(FrameDecoder(MAX_FRAME), data, cuts)
    assert [(e.text, e.header.tid) for e in events if isinstance(e, CommandFrame)] == [
        (t, i) for i, t in enumerate(texts)]  # fmt: skip
    assert len(events) == len(texts)


@FUZZ
@given(GRAMMAR)
def test_any_text_is_a_command_or_command_error(text: str) -> None:
    try:
        name, _ = parse_command(text)
    except CommandError:
        return
    assert name and name == name.upper()
