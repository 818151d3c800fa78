"""Alipay's gateway replies: ``{"<method>_response": {...}, "sign": "..."}`` where ``sign`` covers
the exact bytes of the response object as sent, so the object is cut out of the raw text
before it is parsed (re-serialising it would change spacing or escapes and break the check)."""

from __future__ import annotations

import json
from typing import Any


class Unreadable(Exception):
    """The reply is not the JSON shape Alipay documents."""


def response_text(raw: str, key: str) -> str:
    """The exact text of the object under ``key`` at the top level of ``raw``."""
    try:
        whole = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Unreadable("reply is not JSON") from exc
    if not isinstance(whole, dict) or not isinstance(whole.get(key), dict):
        raise Unreadable(f"reply has no {key} object")
    # The key is found as a top-level member by walking the top object's members in order.
    decoder = json.JSONDecoder()
    pos = _skip(raw, 0)
    if raw[pos : pos + 1] != "{":
        raise Unreadable("reply is not an object")
    pos += 1
    while True:
        pos = _skip(raw, pos)
        name, pos = decoder.raw_decode(raw, pos)
        pos = _skip(raw, pos)
        if raw[pos : pos + 1] != ":":
            raise Unreadable("malformed member")
        start = _skip(raw, pos + 1)
        _, end = decoder.raw_decode(raw, start)
        if name == key:
            return raw[start:end]
        pos = _skip(raw, end)
        if raw[pos : pos + 1] != ",":
            raise Unreadable(f"reply has no {key} object")
        pos += 1


def _skip(raw: str, pos: int) -> int:
    while pos < len(raw) and raw[pos] in " \t\r\n":
        pos += 1
    return pos


def parsed(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise Unreadable("response is not an object")
    return value
