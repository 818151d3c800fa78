"""Small HTTP helpers shared by the providers: Retry-After parsing, transport-error mapping."""

from __future__ import annotations

import email.utils
import json
import math
from typing import Any

import httpx

from lwork.push.providers.base import PushTimeoutError, TemporaryPushError

#: Statuses every provider treats as "try again later" unless its own table says otherwise.
TEMPORARY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from an HTTP Retry-After value (delta-seconds or HTTP-date).

    `now` is the current wall-clock time (Unix seconds), used for the HTTP-date form. Returns
    None when the header is absent or unreadable; never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and text.isascii():
        return float(int(text)) if len(text) <= 15 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        delay = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    if not math.isfinite(delay):
        return None
    return max(0.0, delay)


def loads_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object; anything else (bad UTF-8, bad JSON, not an object) -> ValueError."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("JSON body is not an object")
    return data


def dumps_compact(data: object) -> str:
    """The JSON form we put on the wire: compact, UTF-8 kept as is."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


async def post(
    client: httpx.AsyncClient, url: str, *, timeout: float, **kwargs: Any
) -> httpx.Response:
    """POST through `client`; timeouts and network/protocol errors become TemporaryPushError."""
    try:
        return await client.post(url, timeout=timeout, **kwargs)
    except httpx.TimeoutException as exc:
        raise PushTimeoutError(f"timeout ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise TemporaryPushError(f"network error ({type(exc).__name__}: {exc})") from exc
