"""The ``data_enc`` envelope (CONTRACT §2): obfuscation the existing apps speak, not security."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

import msgspec

from lwork.http.decode import MAX_JSON_DEPTH, too_deep

_PREFIX_LEN = 7


class EnvelopeError(ValueError):
    """A ``data_enc`` body whose payload cannot be decoded."""


def unwrap_request(body: Any) -> Any:
    """Return the real request body for a parsed JSON ``body``.

    Only an object whose single key is ``data_enc`` holding a string of ≥ 7 bytes is an
    envelope; everything else is a plain body and is returned unchanged.
    """
    if not (isinstance(body, dict) and len(body) == 1 and "data_enc" in body):
        return body
    value = body["data_enc"]
    if not isinstance(value, str):
        return body
    raw = value.encode()
    if len(raw) < _PREFIX_LEN:
        return body
    payload = raw[_PREFIX_LEN:].strip()
    payload += b"=" * (-len(payload) % 4)
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("data_enc is not Base64") from exc
    if too_deep(decoded):
        raise EnvelopeError(f"data_enc nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return msgspec.json.decode(decoded)
    except msgspec.DecodeError as exc:
        raise EnvelopeError("data_enc does not hold JSON") from exc


def wrap_response(json_body: bytes, noise: tuple[str, str] | None = None) -> bytes:
    """Wrap a compact JSON response for ``/lwork/mobile1/``: Base64 with two letters inserted
    after the 3rd character (first from b..j, second from b..u, as the original)."""
    b64 = base64.b64encode(json_body).decode()
    if noise is None:
        noise = (chr(ord("b") + secrets.randbelow(9)), chr(ord("b") + secrets.randbelow(20)))
    return msgspec.json.encode({"data_enc": b64[:3] + noise[0] + noise[1] + b64[3:]})


def unwrap_response(wrapped: str) -> bytes:
    """What an app does with a wrapped response: drop characters 3 and 4, decode the rest."""
    return base64.b64decode(wrapped[:3] + wrapped[5:])
