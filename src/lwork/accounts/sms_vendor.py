"""What the vendor SMS providers share: one bounded HTTP exchange and a safe rendering of the
vendor's error code for our log."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass

import httpx

from lwork.accounts.sms import SmsError

_CODE_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,80}")


@dataclass(frozen=True)
class HttpRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def vendor_code(value: object) -> str:
    """The vendor's error code if it looks like one, else a placeholder: the text goes into our
    log and must not carry whatever a broken or hostile reply put there."""
    return value if isinstance(value, str) and _CODE_SHAPE.fullmatch(value) else "<malformed>"


def json_object(body: bytes) -> dict[str, object] | None:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else None


async def exchange(
    client: httpx.AsyncClient, vendor: str, request: HttpRequest, timeout_s: float
) -> tuple[int, bytes]:
    """POST ``request``; the whole exchange, a reply that trickles in included, ends within
    ``timeout_s`` (httpx's own timeout bounds each read, not their sum)."""
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.post(
                request.url, content=request.body, headers=request.headers, timeout=timeout_s
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise SmsError(f"{vendor} did not answer within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise SmsError(f"{vendor} unreachable: {type(exc).__name__}") from exc
    return response.status_code, response.content
