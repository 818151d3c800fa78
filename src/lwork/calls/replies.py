"""What the call endpoints answer (CONTRACT §6), as structs: the wire's field names and types in
one place, the same ones the OpenAPI document is generated from (``tests/api`` checks real
replies against it)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class StartCallResponse(Struct, kw_only=True):
    status: str = "ok"
    session_id: str
    ip: str
    port: int
    codec: int
    codec_name: str
    payload_mode: str
    rssrc: str


class CallStatus(Struct, kw_only=True):
    status: str = "ok"
    peer_status: str
    state: str
    stats: dict[str, Any]


class AnswerResponse(Struct, kw_only=True, omit_defaults=True):
    """The answering app's media: for an app's call its own session id; for a phone's call
    (``sip_call_in``) the call's id, with the invitation's ``event``, ``caller`` and
    ``callee`` repeated."""

    status: str
    session_id: str
    ip: str
    port: int
    codec_name: str
    payload_mode: str
    rssrc: str
    event: str | None = None
    caller: str | None = None
    callee: str | None = None


class PeerStatus(Struct, kw_only=True):
    status: str = "ok"
    peer_status: str
    stats: dict[str, Any]


class CallbackStarted(Struct, kw_only=True):
    status: str = "ok"
    session_id: str


class CallbackStatus(Struct, kw_only=True):
    status: str = "ok"
    local: str
    remote: str
