"""Bencode, the dictionary encoding of rtpengine's *ng* control protocol.

Decoding is defensive because the ng port is reachable from the network: nesting depth, element
count and string lengths are bounded, so a "bencode bomb" costs at most the size of the datagram.
Dictionary keys are accepted in any order (rtpengine itself does not sort them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

BValue: TypeAlias = "int | bytes | list[BValue] | dict[bytes, BValue]"
"""A decoded value: strings stay bytes, since SDP bodies need not be valid UTF-8."""

Encodable: TypeAlias = (
    "int | bytes | str | Sequence[Encodable] | Mapping[str, Encodable] | Mapping[bytes, Encodable]"
)
"""What `encode` accepts: str is sent as UTF-8, bool as 0/1, Mappings with str or bytes keys."""

MAX_DEPTH = 32
MAX_ITEMS = 100_000
_DIGITS = frozenset(b"0123456789")


def encode(value: Encodable) -> bytes:
    """Serialise `value`; dictionary keys are emitted in sorted order as the spec asks."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value: Encodable, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("bencode: nesting too deep")
    if isinstance(value, bool):
        out.append(b"i1e" if value else b"i0e")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes | str):
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, list | tuple):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, Mapping):
        items = [
            (k.encode("utf-8", "surrogateescape") if isinstance(k, str) else k, v)
            for k, v in value.items()
        ]
        items.sort(key=lambda kv: kv[0])
        out.append(b"d")
        for key, item in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise ValueError(f"bencode: cannot encode {type(value).__name__}")


def decode(data: bytes) -> BValue:
    """Parse exactly one value spanning all of `data`; raise ValueError on anything else."""
    decoder = _Decoder(data)
    value = decoder.value(0)
    if decoder.pos != len(data):
        raise ValueError("bencode: trailing data")
    return value


class _Decoder:
    """Iterative-enough recursive descent with explicit depth and item budgets."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.items = 0

    def value(self, depth: int) -> BValue:
        if depth > MAX_DEPTH:
            raise ValueError("bencode: nesting too deep")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise ValueError("bencode: too many items")
        data = self.data
        if self.pos >= len(data):
            raise ValueError("bencode: truncated")
        lead = data[self.pos]
        if lead == 0x69:  # i
            return self._int()
        if lead == 0x6C:  # l
            self.pos += 1
            items: list[BValue] = []
            while self._peek() != 0x65:
                items.append(self.value(depth + 1))
            self.pos += 1
            return items
        if lead == 0x64:  # d
            self.pos += 1
            result: dict[bytes, BValue] = {}
            while self._peek() != 0x65:
                key = self._string()
                result[key] = self.value(depth + 1)
            self.pos += 1
            return result
        if lead in _DIGITS:
            return self._string()
        raise ValueError(f"bencode: unexpected byte {lead:#x} at {self.pos}")

    def _peek(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("bencode: truncated")
        return self.data[self.pos]

    def _int(self) -> int:
        end = self.data.find(b"e", self.pos + 1)
        if end < 0:
            raise ValueError("bencode: unterminated integer")
        text = self.data[self.pos + 1 : end]
        digits = text[1:] if text[:1] == b"-" else text
        if not digits or len(digits) > 20 or not (digits.isascii() and digits.isdigit()):
            raise ValueError("bencode: bad integer")
        if (digits[:1] == b"0" and len(digits) > 1) or text == b"-0":
            raise ValueError("bencode: non-canonical integer")
        self.pos = end + 1
        return int(text)

    def _string(self) -> bytes:
        colon = self.data.find(b":", self.pos, self.pos + 12)
        if colon < 0:
            raise ValueError("bencode: bad string length")
        digits = self.data[self.pos : colon]
        if not digits or not (digits.isascii() and digits.isdigit()):
            raise ValueError("bencode: bad string length")
        length = int(digits)
        start = colon + 1
        if start + length > len(self.data):
            raise ValueError("bencode: string runs past the end")
        self.pos = start + length
        return self.data[start : self.pos]
