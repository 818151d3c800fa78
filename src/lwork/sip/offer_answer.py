"""SDP offer/answer for one audio stream (RFC 3264).

The answerer picks the first payload format of the offer that it supports (the offerer's
preference wins, as RFC 3264 6.1 recommends), keeps the offer's payload type numbers, and
adds telephone-event (RFC 4733) when both sides have it. AMR (RFC 4867) formats only match
when their octet-align setting agrees; the answer copies the offer's mode-set.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from lwork.sip.sdp import Connection, MediaDescription, Origin, SessionDescription

TELEPHONE_EVENT = "telephone-event"
# RFC 3551 static audio payload types, used when an offer omits the rtpmap.
_STATIC_AUDIO = {0: ("PCMU", 8000), 3: ("GSM", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
_DIRECTION_ANSWER = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class NoCommonCodec(ValueError):
    """The offer has no audio format we support (answer 488 Not Acceptable Here)."""


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """One audio payload format as offered or answered."""

    payload_type: int
    encoding: str
    clock_rate: int = 8000
    fmtp: str | None = None

    def fmtp_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for item in (self.fmtp or "").split(";"):
            name, _, value = item.strip().partition("=")
            if name:
                params[name.strip().lower()] = value.strip()
        return params

    def same_codec(self, other: "PayloadFormat") -> bool:
        if (self.encoding.lower(), self.clock_rate) != (other.encoding.lower(), other.clock_rate):
            return False
        if self.encoding.upper() in ("AMR", "AMR-WB"):
            return _octet_align(self) == _octet_align(other)
        return True


def _octet_align(fmt: PayloadFormat) -> bool:
    return fmt.fmtp_params().get("octet-align", "0") == "1"


@dataclass(frozen=True, slots=True)
class AudioSelection:
    """Outcome of the negotiation: the chosen codec and DTMF format, with offer numbers."""

    media_index: int
    codec: PayloadFormat
    telephone_event: PayloadFormat | None
    ptime: str | None
    direction: str


def audio_formats(media: MediaDescription) -> list[PayloadFormat]:
    """The payload formats of an audio section in offer order."""
    formats: list[PayloadFormat] = []
    for text in media.formats:
        if not text.isdigit() or int(text) > 127:
            raise ValueError(f"invalid RTP payload type {text[:10]!r}")
        payload_type = int(text)
        rtpmap = media.rtpmap(payload_type)
        if rtpmap is not None:
            encoding, clock_rate = rtpmap.encoding, rtpmap.clock_rate
        elif payload_type in _STATIC_AUDIO:
            encoding, clock_rate = _STATIC_AUDIO[payload_type]
        else:
            continue  # dynamic type without rtpmap: unusable
        formats.append(PayloadFormat(payload_type, encoding, clock_rate, media.fmtp(payload_type)))
    return formats


def select_audio(offer: SessionDescription, supported: Sequence[PayloadFormat]) -> AudioSelection:
    """Choose the codec for the first usable audio stream; raises NoCommonCodec."""
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.port == 0 or "RTP/" not in media.proto:
            continue
        offered = audio_formats(media)
        for candidate in offered:
            if candidate.encoding.lower() == TELEPHONE_EVENT:
                continue
            if any(candidate.same_codec(ours) for ours in supported):
                return AudioSelection(
                    media_index=index,
                    codec=_answer_codec(candidate),
                    telephone_event=_answer_telephone_event(offered, candidate, supported),
                    ptime=media.attribute("ptime"),
                    direction=media.direction,
                )
    raise NoCommonCodec("no common audio codec")


def _answer_codec(offered: PayloadFormat) -> PayloadFormat:
    if offered.encoding.upper() not in ("AMR", "AMR-WB"):
        return offered
    params = offered.fmtp_params()
    answer = []
    if params.get("octet-align") == "1":
        answer.append("octet-align=1")
    if "mode-set" in params:
        answer.append(f"mode-set={params['mode-set']}")
    return PayloadFormat(
        offered.payload_type, offered.encoding, offered.clock_rate, ";".join(answer) or None
    )


def _answer_telephone_event(
    offered: list[PayloadFormat], codec: PayloadFormat, supported: Sequence[PayloadFormat]
) -> PayloadFormat | None:
    if not any(fmt.encoding.lower() == TELEPHONE_EVENT for fmt in supported):
        return None
    for fmt in offered:
        if fmt.encoding.lower() == TELEPHONE_EVENT and fmt.clock_rate == codec.clock_rate:
            events = sorted(parse_event_list(fmt.fmtp or "0-15") & set(range(16)))
            if events:
                return PayloadFormat(
                    fmt.payload_type, fmt.encoding, fmt.clock_rate, format_event_list(events)
                )
    return None


def parse_event_list(text: str) -> set[int]:
    """RFC 4733 event list such as ``0-15,66``."""
    events: set[int] = set()
    for item in text.split(","):
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"invalid event list {text[:40]!r}")
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > 255:
            raise ValueError(f"invalid event range {item[:20]!r}")
        events.update(range(first, last + 1))
    return events


def format_event_list(events: Sequence[int]) -> str:
    ranges: list[str] = []
    start = previous = events[0]
    for event in [*events[1:], -1]:
        if event != previous + 1:
            ranges.append(str(start) if start == previous else f"{start}-{previous}")
            start = event
        previous = event
    return ",".join(ranges)


def audio_media(
    formats: Sequence[PayloadFormat], port: int, *, ptime: str | None, direction: str
) -> MediaDescription:
    media = MediaDescription(port=port, formats=[str(f.payload_type) for f in formats])
    for fmt in formats:
        media.attributes.append(("rtpmap", f"{fmt.payload_type} {fmt.encoding}/{fmt.clock_rate}"))
        if fmt.fmtp:
            media.attributes.append(("fmtp", f"{fmt.payload_type} {fmt.fmtp}"))
    if ptime is not None:
        media.attributes.append(("ptime", ptime))
    media.attributes.append((direction, None))
    return media


def build_offer(
    formats: Sequence[PayloadFormat],
    *,
    address: str,
    port: int,
    origin: Origin,
    ptime: str = "20",
    session_name: str = "-",
) -> SessionDescription:
    """An offer of one audio stream with ``formats`` in preference order."""
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=Connection(address),
        media=[audio_media(formats, port, ptime=ptime, direction="sendrecv")],
    )


def build_answer(
    offer: SessionDescription,
    selection: AudioSelection,
    *,
    address: str,
    port: int,
    origin: Origin,
    session_name: str = "-",
) -> SessionDescription:
    """The answer: our audio stream where selected, every other stream rejected (port 0)."""
    answer = SessionDescription(
        origin=origin, session_name=session_name, connection=Connection(address)
    )
    for index, offered in enumerate(offer.media):
        if index == selection.media_index:
            formats = [selection.codec]
            if selection.telephone_event is not None:
                formats.append(selection.telephone_event)
            direction = _DIRECTION_ANSWER[selection.direction]
            answer.media.append(
                audio_media(formats, port, ptime=selection.ptime, direction=direction)
            )
        else:
            answer.media.append(
                MediaDescription(
                    media=offered.media, port=0, proto=offered.proto, formats=offered.formats[:1]
                )
            )
    return answer
