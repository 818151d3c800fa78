"""The ng control protocol server side: cookie framing, retransmission cache, commands. Pure.

A request is `<cookie> <bencoded dictionary>`; the reply repeats the cookie. Replies are cached
per cookie and request for `ng_cache_s`, so a retransmitted `offer` gets the same ports instead
of a second allocation, while another request that reuses a cookie is carried out and answered
on its own. Keys and reply shapes follow rtpengine's ng protocol documentation.

Requests are taken only from `ng_allowed_sources` (others are dropped unanswered) and, with an
`ng_secret`, only with a valid signature in their cookie (`lwork.media.ng.auth`).

One command is lwork's own: `lwork stats` answers for many calls at once with only what a call
status shows (`COMPACT_LEG_FIELDS`), because a `query` reply is ~2.5 KB of bencode per call and
the API node refreshes a thousand calls' statistics every two seconds. rtpengine refuses it as
an unknown command, and the API node then falls back to `query`.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from lwork.media.ng import bencode
from lwork.media.ng.auth import SourcePolicy, request_digest, verify_cookie
from lwork.media.ng.compact import (
    COMPACT_LEG_FIELDS,
    COMPACT_REPLY_KEY,
    MAX_COMPACT_CALLS,
    compact_leg,
)
from lwork.media.relay.calls import Call, CallError, CallTable
from lwork.media.relay.dtmf import ScheduledPacket, digit_code
from lwork.media.relay.ports import PortsExhausted
from lwork.media.relay.sdp_codecs import add_codecs
from lwork.media.relay.sdp_rewrite import RewriteOptions
from lwork.media.relay.session import Address, Leg
from lwork.media.relay.wire import call_to_query

MAX_CACHED = 10_000

DtmfSink = Callable[[Leg, Address, list[ScheduledPacket], float], None]
"""Receives generated DTMF packets (target, destination, packets, start delay) to send."""


@dataclass(slots=True)
class NgCounters:
    """Per-command counters for `statistics` and for monitoring bad input."""

    commands: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    malformed: int = 0
    retransmissions: int = 0
    refused_sources: int = 0
    """Datagrams from outside `ng_allowed_sources`, dropped unanswered."""
    unauthenticated: int = 0
    """Requests without a valid signature while an `ng_secret` is set."""


class NgServer:
    """Turns ng request datagrams into reply datagrams against a `CallTable`."""

    def __init__(self, table: CallTable, dtmf_sink: DtmfSink, started_wall: float) -> None:
        self.table = table
        self.dtmf_sink = dtmf_sink
        self.started_wall = started_wall
        self.counters = NgCounters()
        self.sources = SourcePolicy(table.config.ng_allowed_sources)
        self._secret = table.config.ng_secret.encode()
        self._cache: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self.transcodes: Callable[[], bool] = lambda: False
        """Whether this relay's transcoding workers run: then an offer's ``codec.transcode``
        codecs are added to its SDP (`sdp_codecs`), as rtpengine does."""

    def handle_datagram(
        self, data: bytes, now: float, wall: float, source: Address
    ) -> bytes | None:
        """Reply to one request datagram from `source`; None for a source that is not allowed
        or input too broken to carry a cookie."""
        if not self.sources.allows(source[0]):
            self.counters.refused_sources += 1
            return None
        cookie, sep, body = data.partition(b" ")
        if not sep or not cookie or len(cookie) > 128:
            self.counters.malformed += 1
            return None
        if self._secret and not verify_cookie(
            self._secret, cookie, body, wall, self.table.config.ng_cache_s
        ):
            self.counters.unauthenticated += 1
            return cookie + b" " + bencode.encode(_error("Authentication failed"))
        key = cookie + b" " + request_digest(body)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.table.config.ng_cache_s:
            self.counters.retransmissions += 1
            return cached[1]
        reply = cookie + b" " + bencode.encode(self.handle_body(body, now, wall))
        self._remember(key, reply, now)
        return reply

    def _remember(self, key: bytes, reply: bytes, now: float) -> None:
        self._cache[key] = (now, reply)
        self._cache.move_to_end(key)
        horizon = now - self.table.config.ng_cache_s
        while self._cache and (
            len(self._cache) > MAX_CACHED or next(iter(self._cache.values()))[0] < horizon
        ):
            self._cache.popitem(last=False)

    def handle_body(self, body: bytes, now: float, wall: float) -> dict[str, bencode.Encodable]:
        try:
            message = bencode.decode(body)
        except ValueError as exc:
            self.counters.malformed += 1
            return _error(f"Failed to decode bencode: {exc}")
        if not isinstance(message, dict):
            self.counters.malformed += 1
            return _error("Message is not a dictionary")
        request = Request(message)
        try:
            command = request.text("command")
            self.counters.commands[command] = self.counters.commands.get(command, 0) + 1
            return self._dispatch(command, request, now, wall)
        except (CallError, PortsExhausted, ValueError) as exc:
            self.counters.errors += 1
            return _error(str(exc))

    def _dispatch(
        self, command: str, request: Request, now: float, wall: float
    ) -> dict[str, bencode.Encodable]:
        table = self.table
        if command == "ping":
            return {"result": "pong"}
        if command in ("offer", "answer"):
            options = request.rewrite_options()
            flags = {flag.replace("-", " ").replace("_", " ") for flag in request.flags()}
            # rtpengine's flags: `strict source` locks the leg to its SDP's host; `media
            # handover` asks for the opposite (latch wherever the media comes from).
            strict = "strict source" in flags and "media handover" not in flags
            if command == "offer":
                sdp = table.offer(
                    request.text("call-id"),
                    request.text("from-tag"),
                    request.text("sdp"),
                    options,
                    now,
                    wall,
                    strict,
                )
                wanted = request.codec_option("transcode")
                if wanted and self.transcodes():
                    with contextlib.suppress(ValueError):  # an SDP only our parser takes
                        sdp = add_codecs(sdp, wanted)
            else:
                sdp = table.answer(
                    request.text("call-id"),
                    request.text("from-tag"),
                    request.text("to-tag"),
                    request.text("sdp"),
                    options,
                    wall,
                    strict,
                )
            return {"result": "ok", "sdp": sdp}
        if command == "delete":
            call = table.delete(request.text("call-id"))
            if call is None:
                if "fatal" in request.flags():
                    raise CallError("Call-ID not found or tags didn't match")
                return {"result": "ok", "warning": "Call-ID not found or tags didn't match"}
            if request.get(COMPACT_REPLY_KEY) == b"compact":
                return self._compact_reply({call.call_id: call})
            return {"result": "ok", **call_to_query(call, self.table.config.sdp_address, now, wall)}
        if command == "query":
            call = self._call(request)
            return {"result": "ok", **call_to_query(call, self.table.config.sdp_address, now, wall)}
        if command == "lwork stats":
            return self._compact_stats(request)
        if command == "list":
            limit = request.integer("limit", 32)
            if limit <= 0:
                raise ValueError("limit must be > 0")
            return {"result": "ok", "calls": list(table.calls)[:limit]}
        if command == "play DTMF":
            call = self._call(request)
            code_value = request.get("code") if "code" in request else request.get("digit")
            if isinstance(code_value, bytes):
                code = digit_code(code_value.decode("ascii", "replace"))
            elif isinstance(code_value, int):
                code = digit_code(code_value)
            else:
                raise ValueError("No valid 'code' or 'digit' in message")
            target, destination, packets, delay = table.play_dtmf(
                call.call_id,
                request.text("from-tag"),
                code,
                request.integer("duration", 250),
                abs(request.integer("volume", 8)),
                request.integer("pause", 100),
                now,
            )
            self.dtmf_sink(target, destination, packets, delay)
            return {"result": "ok"}
        if command == "statistics":
            return {"result": "ok", "statistics": self._statistics(now, wall)}
        raise CallError(f"Unrecognized command: {command}")

    def _call(self, request: Request) -> Call:
        call = self.table.calls.get(request.text("call-id"))
        if call is None:
            raise CallError("Unknown call-id")
        return call

    def _compact_stats(self, request: Request) -> dict[str, bencode.Encodable]:
        call_ids = request.strings("call-ids")
        if len(call_ids) > MAX_COMPACT_CALLS:
            raise ValueError(f"at most {MAX_COMPACT_CALLS} call-ids per request")
        known = {call_id: self.table.calls.get(call_id) for call_id in call_ids}
        # unknown calls are left out, as `query` would refuse them
        return self._compact_reply({key: call for key, call in known.items() if call is not None})

    def _compact_reply(self, calls: dict[str, Call]) -> dict[str, bencode.Encodable]:
        return {
            "result": "ok",
            "fields": list(COMPACT_LEG_FIELDS),
            "local address": self.table.config.sdp_address,
            "calls": {
                call_id: {leg.tag: compact_leg(leg) for leg in call.legs()}
                for call_id, call in calls.items()
            },
        }

    def _statistics(self, now: float, wall: float) -> dict[str, bencode.Encodable]:
        table = self.table
        totals = table.totals
        relayed = errors = 0
        for call in table.calls.values():
            for leg in call.legs():
                relayed += leg.rtp.packets + leg.rtcp.packets
                errors += leg.rtp.errors + leg.rtcp.errors
        commands = self.counters.commands
        return {
            "currentstatistics": {
                "sessionsown": len(table.calls),
                "sessionsforeign": 0,
                "sessionstotal": len(table.calls),
                "portsinuse": table.pool.in_use * 2,
                "portsfree": (table.pool.capacity - table.pool.in_use) * 2,
            },
            "totalstatistics": {
                "uptime": str(int(wall - self.started_wall)),
                "managedsessions": totals.managed,
                "rejectedsessions": totals.rejected,
                "timeoutsessions": totals.timed_out,
                "regularterminatedsessions": totals.deleted - totals.timed_out,
                "relayedpackets": relayed,
                "relayedpacketerrors": errors,
            },
            "controlstatistics": {
                "totalpingcount": commands.get("ping", 0),
                "totaloffercount": commands.get("offer", 0),
                "totalanswercount": commands.get("answer", 0),
                "totaldeletecount": commands.get("delete", 0),
                "totalquerycount": commands.get("query", 0),
                "totallistcount": commands.get("list", 0),
                "totalplaydtmf": commands.get("play DTMF", 0),
                "totalstatistics": commands.get("statistics", 0),
                "totalerrorcount": self.counters.errors,
                "malformedcount": self.counters.malformed,
            },
        }


class Request:
    """Typed access to a decoded request dictionary."""

    def __init__(self, message: dict[bytes, bencode.BValue]) -> None:
        self._message = message

    def __contains__(self, key: str) -> bool:
        return key.encode() in self._message

    def get(self, key: str) -> bencode.BValue | None:
        return self._message.get(key.encode())

    def text(self, key: str) -> str:
        value = self._message.get(key.encode())
        if not isinstance(value, bytes):
            raise ValueError(f"No '{key}' in message")
        return value.decode("utf-8", "surrogateescape")

    def integer(self, key: str, default: int) -> int:
        value = self._message.get(key.encode())
        if value is None:
            return default
        if isinstance(value, int):
            return value
        if isinstance(value, bytes) and value.strip().lstrip(b"-").isdigit() and len(value) < 12:
            return int(value)
        raise ValueError(f"'{key}' is not an integer")

    def strings(self, key: str) -> list[str]:
        value = self._message.get(key.encode())
        if value is None:
            return []
        if isinstance(value, bytes):
            return [value.decode("utf-8", "replace")]
        if isinstance(value, list):
            return [v.decode("utf-8", "replace") for v in value if isinstance(v, bytes)]
        raise ValueError(f"'{key}' is not a list of strings")

    def codec_option(self, key: str) -> list[str]:
        """The codec names of the ``codec`` dictionary's `key` (``transcode``, ...); [] when
        absent or not a list of strings."""
        codec = self._message.get(b"codec")
        if not isinstance(codec, dict):
            return []
        value = codec.get(key.encode())
        if not isinstance(value, list):
            return []
        return [v.decode("utf-8", "replace") for v in value if isinstance(v, bytes)]

    def flags(self) -> set[str]:
        return {flag.lower() for flag in self.strings("flags")}

    def rewrite_options(self) -> RewriteOptions:
        replace = {
            item.lower().replace("_", "-").replace(" ", "-") for item in self.strings("replace")
        }
        ice = self._message.get(b"ICE")
        return RewriteOptions(
            replace_origin="origin" in replace,
            replace_session_connection="session-connection" in replace,
            remove_ice=isinstance(ice, bytes) and ice.lower() in (b"remove", b"force"),
        )


def _error(reason: str) -> dict[str, bencode.Encodable]:
    return {"result": "error", "error-reason": reason}
