"""``POST /channel/push_service``: the long-poll push channel (CONTRACT §5)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.phone import normalise_phone
from lwork.accounts.poll_touches import PollTouches
from lwork.accounts.store import AccountStore, Session
from lwork.errors import Failed, InvalidParams
from lwork.http.request import ApiRequest
from lwork.http.routing import AfterSend, Reply, Route
from lwork.ids import token_digest
from lwork.push.channel import Outcome, PollRegistry
from lwork.push.mailbox import Mailbox, device_key
from lwork.telemetry import Telemetry

CLIDATA_LIMIT = 2048
ACK_WAIT_S = 1.0


class PollRequest(Struct):
    acc: Annotated[str, Meta(min_length=1, max_length=64)]
    device_id: Annotated[str, Meta(min_length=1, max_length=128)]
    self_phone: Annotated[str, Meta(max_length=64)] | None = None
    clidata: Any = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class PollAnswer(Struct, kw_only=True):
    status: str = "ok"
    data: list[dict[str, Any]]
    clidata: Any = None


class PushChannelApi:
    def __init__(
        self,
        *,
        store: AccountStore,
        sessions: LiveSessions,
        touches: PollTouches,
        mailbox: Mailbox,
        registry: PollRegistry,
        hold_s: float,
        session_ttl_s: float,
        require_token: bool,
        wall: Callable[[], float],
        presence_changed: Callable[[str], None] = lambda uuid: None,
        telemetry: Telemetry | None = None,
        hold_spread: float = 0.0,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """Each poll is held ``hold_s * (1 - hold_spread * draw())`` (see ``push.hold_spread``)."""
        self._delivery = (telemetry or Telemetry()).push_delivery_seconds
        self._store = store
        self._sessions = sessions
        self._touches = touches
        self._presence_changed = presence_changed
        self._acknowledging: dict[str, asyncio.Future[None]] = {}
        self._mailbox = mailbox
        self._registry = registry
        self._hold_s = hold_s
        self._hold_spread = hold_spread
        self._draw = draw
        self._session_ttl_s = session_ttl_s
        self._require_token = require_token
        self._wall = wall

    def routes(self) -> list[Route]:
        return [
            Route(
                "POST", "/channel/push_service", self.poll, PollRequest, PollAnswer,
                summary="long poll: events for this device, or shake_hand after the hold",
            )
        ]  # fmt: skip

    async def poll(self, req: ApiRequest) -> Reply:
        body = req.parse(PollRequest)
        if body.clidata is not None and len(msgspec.json.encode(body.clidata)) > CLIDATA_LIMIT:
            raise InvalidParams("clidata", f"clidata is limited to {CLIDATA_LIMIT} bytes")
        clidata = body.clidata

        def answer(*events: dict[str, Any]) -> PollAnswer:
            return PollAnswer(data=list(events), clidata=clidata)

        uuid = normalise_phone(body.acc)
        now = self._wall()
        session, ended = await self._device_session(uuid, body.device_id, now)
        token = req.bearer or body.token
        if session is not None and (token or self._require_token):
            if token is None or token_digest(token) != session.token_hash:
                session, ended = None, None
        if session is None:
            event = "login_otherwhere" if ended == "login_otherwhere" else "unlogined"
            return answer({"event": event})

        key = device_key(uuid, body.device_id)
        await self._previous_answer_settled(key)
        # Recorded before the poll is held, so that once it is, its address vouches for the
        # device's requests that spend money (CONTRACT §3), on any node.
        await self._touches.touch(session.token_hash, now, req.client_ip)
        self._presence_changed(uuid)
        poll = await self._registry.open(key)
        path = "next_poll"
        try:
            events = await self._mailbox.pending(key, now)
            if not events:
                path = "held"
                hold_s = self._hold_s * (1.0 - self._hold_spread * self._draw())
                outcome = await poll.wait(hold_s, req.gone)
                if outcome is Outcome.REPLACED:
                    raise Failed("overtime", clidata=clidata)
                if outcome is Outcome.KICKED:
                    return answer({"event": "login_otherwhere"})
                if outcome is Outcome.ENDED:
                    return answer({"event": "unlogined"})
                if outcome is Outcome.WOKEN:
                    events = poll.take() or await self._mailbox.pending(key, self._wall())
        finally:
            await self._registry.close(poll)
        if not events:
            return answer({"event": "shake_hand"})
        answered = self._wall()
        for pending in events:
            if pending.queued_at:  # 0: carried from a node that did not say when
                self._delivery.observe(max(0.0, answered - pending.queued_at), path)
        delivered = [event.event_id for event in events]
        settled = asyncio.get_running_loop().create_future()
        self._acknowledging[key] = settled

        async def acknowledge() -> None:
            try:
                await self._mailbox.remove(delivered)
            finally:
                settled.set_result(None)
                if self._acknowledging.get(key) is settled:
                    del self._acknowledging[key]

        return AfterSend(answer(*(event.body for event in events)), acknowledge)

    async def _device_session(
        self, uuid: str, device_id: str, now: float
    ) -> tuple[Session | None, str | None]:
        """The device's live session (from the cache when it is the account's live device),
        else why its newest session ended."""
        live = await self._sessions.of(uuid)
        if live is not None and live.device_id == device_id:
            return live, None
        session, ended = await self._store.device_session(
            uuid, device_id, now - self._session_ttl_s
        )
        if session is not None:
            self._sessions.forget(uuid)  # the cache was behind a login on this device
        return session, ended

    async def _previous_answer_settled(self, key: str) -> None:
        """The app polls again as soon as it has our answer, usually before the events it
        carried were removed: wait for that (briefly; if the answer never reached the app the
        events stay and are delivered again, which is the at-least-once promise)."""
        settled = self._acknowledging.get(key)
        if settled is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(settled), ACK_WAIT_S)
