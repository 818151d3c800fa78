"""Async client of rtpengine's *ng* control protocol (bencode over UDP), lwork's only way to
drive a media relay: the built-in `lwork relay` or an rtpengine cluster.

The commands lwork uses, over the transport in ``transport.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lwork.media.ng import bencode
from lwork.media.ng.compact import COMPACT_REPLY_KEY, parse_compact_stats
from lwork.media.ng.results import (
    CallStats,
    LegInfo,
    LegQuality,
    SsrcInfo,
    StreamInfo,
    call_status_stats,
    parse_call_stats,
)
from lwork.media.ng.transport import NgError, NgTimeout, NgTransport, to_text
from lwork.media.sdp_min import MediaAddress, parse_sdp

log = logging.getLogger("lwork.media")


@dataclass(frozen=True, slots=True)
class SdpResult:
    """A rewritten SDP and the relay address in it."""

    sdp: str
    media: MediaAddress
    warning: str | None = None


__all__ = [
    "CallStats",
    "LegInfo",
    "LegQuality",
    "NgClient",
    "NgError",
    "NgTimeout",
    "SdpResult",
    "SsrcInfo",
    "StreamInfo",
    "call_status_stats",
    "parse_call_stats",
]


class NgClient(NgTransport):
    """Talks to one ng endpoint. Use as `async with NgClient(host, port) as ng:`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        secret: str = "",
        sdp_flags: Sequence[str] = (),
    ) -> None:
        super().__init__(host, port, timeout_s=timeout_s, retries=retries, secret=secret)
        self.sdp_flags = tuple(sdp_flags)
        """Flags every offer and answer carries besides its own (e.g. ``strict source``)."""
        self.offer_codecs: Callable[[str], dict[str, bencode.Encodable] | None] | None = None
        """The ng ``codec`` option for an offer of a given SDP (``ng_transcoding``: asks an
        external relay to transcode); None: offers carry none."""
        self.compact_stats: bool | None = None
        """Whether the relay answers `lwork stats`: None until asked, False from rtpengine."""

    async def ping(self) -> bool:
        reply = await self.request({"command": "ping"})
        return reply.get("result") == "pong"

    async def offer(
        self,
        call_id: str,
        from_tag: str,
        sdp: str,
        *,
        flags: Sequence[str] = (),
        replace: Sequence[str] = ("origin", "session-connection"),
        ice: str | None = "remove",
    ) -> SdpResult:
        """Caller's SDP in; SDP for the callee out (its address is where the callee sends)."""
        flags = (*self.sdp_flags, *flags)
        message = _sdp_message("offer", call_id, from_tag, sdp, flags, replace, ice)
        codec = self.offer_codecs(sdp) if self.offer_codecs is not None else None
        if codec is not None:
            message["codec"] = codec
        return _sdp_result(await self.request(message))

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: str,
        *,
        flags: Sequence[str] = (),
        replace: Sequence[str] = ("origin", "session-connection"),
        ice: str | None = "remove",
    ) -> SdpResult:
        """Callee's SDP in; SDP for the caller out (its address is where the caller sends)."""
        flags = (*self.sdp_flags, *flags)
        message = _sdp_message("answer", call_id, from_tag, sdp, flags, replace, ice)
        message["to-tag"] = to_tag
        return _sdp_result(await self.request(message))

    async def delete(self, call_id: str, from_tag: str | None = None) -> CallStats | None:
        """End the call; return its final statistics, or None if the relay did not know it.

        The request asks for the compact reply of `lwork stats` (``lwork reply``: a key that
        rtpengine ignores, answering its full `query`-like reply): decoding the full one cost
        the API node about as much as the rest of a call's set-up and tear-down requests."""
        message: dict[str, bencode.Encodable] = {
            "command": "delete", "call-id": call_id, COMPACT_REPLY_KEY: "compact"
        }  # fmt: skip
        if from_tag is not None:
            message["from-tag"] = from_tag
        reply = await self._exchange(message)
        if b"fields" in reply:
            try:
                return parse_compact_stats(reply).get(call_id)
            except ValueError as exc:
                raise NgError(f"malformed compact stats: {exc}") from exc
        return parse_call_stats(to_text(reply)) if b"tags" in reply else None

    async def forget(self, call_id: str) -> None:
        """`delete` for callers that want neither the final statistics nor an error: the reply
        is awaited, so that a lost request is sent again, but not decoded (compact from the
        built-in relay, ~2.5 KB from rtpengine). NgTimeout if none came."""
        await self._round_trip(
            {"command": "delete", "call-id": call_id, COMPACT_REPLY_KEY: "compact"}
        )

    async def query(self, call_id: str, from_tag: str | None = None) -> CallStats:
        message: dict[str, bencode.Encodable] = {"command": "query", "call-id": call_id}
        if from_tag is not None:
            message["from-tag"] = from_tag
        return parse_call_stats(await self.request(message))

    async def query_many(self, call_ids: Sequence[str]) -> dict[str, CallStats]:
        """Statistics of many calls as a call status needs them: one `lwork stats` request to
        the built-in relay (see `compact`); from a relay that refuses it (rtpengine), one
        `query` per call, concurrently. A call absent from the result is one the relay said it
        does not know; a relay that left any request unanswered raises NgTimeout instead, so
        absence never stands for silence."""
        if self.compact_stats is not False:
            try:
                reply = await self._exchange({"command": "lwork stats", "call-ids": list(call_ids)})
            except NgTimeout:
                raise
            except NgError as exc:
                if self.compact_stats:  # it answered before: this is a real error
                    raise
                log.info("relay %s:%s refused lwork stats (%s): querying call by call",
                         *self.address, exc)  # fmt: skip
                self.compact_stats = False
            else:
                self.compact_stats = True
                try:
                    return parse_compact_stats(reply)
                except ValueError as exc:
                    raise NgError(f"malformed compact stats: {exc}") from exc
        replies = await asyncio.gather(
            *(self.query(call_id) for call_id in call_ids), return_exceptions=True
        )
        found: dict[str, CallStats] = {}
        for call_id, reply_or_error in zip(call_ids, replies, strict=True):
            if isinstance(reply_or_error, CallStats):
                found[call_id] = reply_or_error
            elif isinstance(reply_or_error, NgTimeout) or not isinstance(reply_or_error, NgError):
                raise reply_or_error
        return found

    async def relay_address(self, call_id: str, tag: str) -> tuple[str, int]:
        """Where party `tag` must send its RTP (the relay port of its own leg).

        The `offer` reply describes the callee's side; the caller's port is known from the
        relay's statistics after the offer (rtpengine allocates both legs at offer time too).
        """
        stats = (await self.query_many([call_id])).get(call_id)
        leg = stats.legs.get(tag) if stats is not None else None
        if leg is None or leg.rtp is None or leg.rtp.local_port is None:
            raise NgError(f"relay reports no port for tag {tag!r}")
        address = leg.rtp.local_address or self.address[0]
        return (address, leg.rtp.local_port)

    async def list(self, limit: int = 32) -> list[str]:
        reply = await self.request({"command": "list", "limit": limit})
        calls = reply.get("calls", [])
        return [str(c) for c in calls] if isinstance(calls, list) else []

    async def play_dtmf(
        self, call_id: str, from_tag: str, digit: str, *, duration_ms: int = 250
    ) -> None:
        """Inject one RFC 4733 event as if `from_tag` pressed `digit` (sent to the other party)."""
        await self.request(
            {
                "command": "play DTMF",
                "call-id": call_id,
                "from-tag": from_tag,
                "code": digit,
                "duration": duration_ms,
            }
        )

    async def statistics(self) -> dict[str, Any]:
        reply = await self.request({"command": "statistics"})
        stats = reply.get("statistics", {})
        return stats if isinstance(stats, dict) else {}


def _sdp_message(
    command: str,
    call_id: str,
    from_tag: str,
    sdp: str,
    flags: Sequence[str],
    replace: Sequence[str],
    ice: str | None,
) -> dict[str, bencode.Encodable]:
    message: dict[str, bencode.Encodable] = {
        "command": command,
        "call-id": call_id,
        "from-tag": from_tag,
        "sdp": sdp,
    }
    if flags:
        message["flags"] = list(flags)
    if replace:
        message["replace"] = list(replace)
    if ice:
        message["ICE"] = ice
    return message


def _sdp_result(reply: dict[str, Any]) -> SdpResult:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise NgError("ng reply carries no SDP")
    try:
        media = parse_sdp(sdp)
    except ValueError as exc:
        raise NgError(f"relay returned unusable SDP: {exc}") from exc
    warning = reply.get("warning")
    return SdpResult(sdp, media, warning if isinstance(warning, str) else None)
