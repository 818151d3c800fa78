"""Framing of SIP messages on stream transports (TCP, TLS) by Content-Length."""

from lwork.sip.message import (
    DEFAULT_LIMITS,
    SipLimits,
    SipMessage,
    SipRequest,
    SipResponse,
    content_length,
    find_head_end,
    parse_head,
)


class SipStreamParser:
    """Cuts a byte stream into SIP messages.

    ``feed`` returns every message completed by the chunk. The buffer never holds more than
    ``limits.max_message_size`` bytes: a peer that sends a longer header block or announces a
    longer message gets a ValueError, after which the connection must be closed (the parser
    refuses further input because the stream position is lost). Work per byte stays constant
    however small the chunks: the header search resumes where it stopped and a parsed header
    block is kept while its body trickles in.
    """

    def __init__(self, limits: SipLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._failed = False
        self._scanned = 0  # header-end search resumes here
        self._pending: tuple[SipMessage, int, int] | None = None  # head, head size, body size
        self._gap = 0  # CR/LF bytes seen since the last message, for keep-alive counting
        self.keepalives_received = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[SipRequest | SipResponse]:
        if self._failed:
            raise ValueError("stream parser already failed")
        try:
            self._buffer += data
            return self._drain()
        except ValueError:
            self._failed = True
            self._buffer.clear()
            raise

    def _drain(self) -> list[SipRequest | SipResponse]:
        messages: list[SipRequest | SipResponse] = []
        while True:
            if self._pending is None:
                self._skip_keepalives()
                self._pending = self._parse_head()
                if self._pending is None:
                    return messages
            message, head_size, length = self._pending
            if len(self._buffer) < head_size + length:
                return messages
            message.body = bytes(self._buffer[head_size : head_size + length])
            del self._buffer[: head_size + length]
            self._pending = None
            message.validate()
            assert isinstance(message, SipRequest | SipResponse)
            messages.append(message)

    def _parse_head(self) -> tuple[SipMessage, int, int] | None:
        end = find_head_end(self._buffer, self._scanned)
        if end is None:
            if len(self._buffer) > self._limits.max_message_size:
                raise ValueError("header block exceeds the message size limit")
            self._scanned = max(0, len(self._buffer) - 3)  # a terminator may straddle chunks
            return None
        self._scanned = 0
        head_end, head_size = end
        message = parse_head(bytes(self._buffer[:head_end]), self._limits)
        length = content_length(message)
        if length is None:
            raise ValueError("Content-Length is mandatory on stream transports")
        if head_size + length > self._limits.max_message_size:
            raise ValueError("message exceeds the size limit")
        return message, head_size, length

    def _skip_keepalives(self) -> None:
        # RFC 5626 keep-alive pings are CRLFCRLF between messages; stray CRLFs are tolerated.
        if not self._buffer or self._buffer[0] not in b"\r\n":
            if self._buffer:
                self._gap = 0
            return
        stripped = self._buffer.lstrip(b"\r\n")
        counted = self._gap // 4
        self._gap += len(self._buffer) - len(stripped)
        self.keepalives_received += self._gap // 4 - counted
        self._buffer = bytearray(stripped)
        self._scanned = 0
        if self._buffer:
            self._gap = 0
