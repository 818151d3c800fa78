"""``notify`` and ``cancel``: how the rest of lwork reaches an app (CONTRACT §5).

An event goes into the device's durable mailbox and wakes its long poll on whichever node holds
it; when no node holds a poll for the device, the same event also goes out through the device's
third-party push registrations (Baidu, FCM, APNs), so a sleeping app wakes up and polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.store import AccountStore
from lwork.push.bus import Bus, BusUnavailable, Kick, SessionEnded, Wake
from lwork.push.mailbox import Mailbox, device_key
from lwork.push.providers import PushMessage, PushProvider, PushTarget
from lwork.telemetry import Telemetry

log = logging.getLogger("lwork.push")

# Which registration serves which kind of push. A VoIP (PushKit) token only takes call pushes and
# an alert token only alerts: sending the wrong kind gets the token reported dead.
# The Chinese phone makers' services take both kinds (their tokens are not kind-specific).
_VENDORS = tuple((name, name) for name in ("huawei", "xiaomi", "oppo", "vivo", "honor", "jpush"))
_REGISTRATIONS = {
    "call": (("baidu", "baidu"), ("fcm", "fcm"), ("apns_voip", "apns"), *_VENDORS),
    "account": (("baidu", "baidu"), ("fcm", "fcm"), ("apns", "apns"), *_VENDORS),
}


@dataclass(frozen=True)
class PushPolicy:
    invite_ttl_s: float
    account_event_ttl_s: float


class PushService:
    def __init__(
        self,
        *,
        store: AccountStore,
        sessions: LiveSessions,
        mailbox: Mailbox,
        bus: Bus,
        providers: Mapping[str, PushProvider],
        policy: PushPolicy,
        wall: Callable[[], float],
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or Telemetry()
        self._store = store
        self._sessions = sessions
        self._mailbox = mailbox
        self._bus = bus
        self._providers = providers
        self._policy = policy
        self._wall = wall
        self._sending: set[asyncio.Task[None]] = set()

    async def notify(
        self, uuid: str, event: dict[str, Any], *, call_id: str | None = None
    ) -> str | None:
        """Queue ``event`` for the account's live device; None when it has no live session.

        Events with a ``call_id`` are call invitations: they expire with ``push.invite_ttl_s``
        and ``cancel_call`` removes them when the call ends."""
        session = await self._sessions.of(uuid)
        if session is None:
            return None
        kind = "call" if call_id is not None else "account"
        ttl = self._policy.invite_ttl_s if kind == "call" else self._policy.account_event_ttl_s
        key = device_key(uuid, session.device_id)
        queued = self._wall()
        event_id = await self._mailbox.put(key, event, queued, ttl, call_id)
        try:
            await self._bus.publish(Wake(key, event_id, event, queued))
            held = await self._bus.is_held(key)
        except BusUnavailable as exc:
            # The event waits in the mailbox: a poll held on another node reads it when the
            # bus returns (Resync). Whether one is held is unknown, so the push wakes the phone.
            log.warning("event %s for %s: the bus is down (%s); queued only", event_id, key, exc)
            held = False
        if not held:
            self._push_later(uuid, session.device_id, event, kind, ttl)
        return event_id

    async def cancel(self, event_ids: list[str]) -> None:
        await self._mailbox.remove(event_ids)

    async def cancel_call(self, call_id: str) -> None:
        """The call ended: its invitation must never ring (CONTRACT §5)."""
        await self._mailbox.remove_call(call_id)

    async def device_kicked(self, uuid: str, device_id: str) -> None:
        """The account logged in elsewhere: tell the old device, held poll or asleep."""
        key = device_key(uuid, device_id)
        if await self._bus.is_held(key):
            await self._bus.publish(Kick(key))
        else:
            event = {"event": "login_otherwhere"}
            self._push_later(uuid, device_id, event, "account", self._policy.account_event_ttl_s)

    async def session_ended(self, uuid: str, device_id: str) -> None:
        """A logout or a password change ended the device's session: a poll it holds (on any
        node) answers ``unlogined`` now rather than at the end of its hold."""
        await self._bus.publish(SessionEnded(device_key(uuid, device_id)))

    def _push_later(
        self, uuid: str, device_id: str, event: dict[str, Any], kind: str, ttl: float
    ) -> None:
        task = asyncio.create_task(self._push(uuid, device_id, event, kind, int(ttl)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _push(
        self, uuid: str, device_id: str, event: dict[str, Any], kind: str, ttl: int
    ) -> None:
        if not self._providers:
            return
        tokens = await self._store.push_registrations(uuid, device_id)
        message = PushMessage(
            event=str(event.get("event", "")),
            payload=event,
            kind="call" if kind == "call" else "account",
            ttl_s=ttl,
        )
        for registration, provider_name in _REGISTRATIONS[kind]:
            token = tokens.get(registration)
            provider = self._providers.get(provider_name)
            if token is None or provider is None:
                continue
            pushes = self._telemetry.pushes
            try:
                result = await provider.send(message, PushTarget(provider_name, token))
            except Exception:  # a provider bug must not take the caller down
                pushes.inc(provider_name, "error")
                log.exception("push via %s failed", provider_name)
                continue
            if result.delivered:
                pushes.inc(provider_name, "delivered")
            else:
                pushes.inc(provider_name, "dead_token" if result.rejected_tokens else "failed")
            if result.rejected_tokens:
                log.info("dropping dead %s registration of %s", registration, uuid)
                await self._store.remove_push_token(uuid, device_id, registration)
            elif not result.delivered:
                log.warning("push via %s not delivered: %s", provider_name, result.failure)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
