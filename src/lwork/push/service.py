"""``notify`` and ``cancel``: how the rest of lwork reaches an app (CONTRACT §5).

An event goes into the device's durable mailbox and wakes its long poll on whichever node holds
it; when no node holds a poll for the device, the same event also goes out through the device's
third-party push registrations (Baidu, FCM, APNs, the phone makers' channels), so a sleeping app
wakes up and polls.

An incoming call's invitation is raced (issue 18): it goes out on the held poll *and* on every
push registration of the device at once, each registration's send on its own, whether or not a
poll is held. A poll the server believes held can be dead (a mobile NAT or a radio switch dropped
the connection without a FIN; Android's Doze froze the app with its socket open), and the
caller waits on whichever channel is slow; the phone maker's channel is the one the system keeps
alive. Every copy carries the same invitation, so the same ``opdata.session_id``: the app acts
on the first and drops the others (a call no longer in ``p2p_idle`` is not rung again), and
the server answers a second ``p2p_answer`` for it with ``session_not_exist``.
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
#: Events that are raced over every channel at once (the others go to push registrations only
#: when the device holds no poll): a call invitation, whose every second of delay is heard.
RACED_EVENTS = frozenset({"p2p_inform_called"})
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
        raced = kind == "call" and event.get("event") in RACED_EVENTS
        try:
            await self._bus.publish(Wake(key, event_id, event, queued))
            # An invitation races every channel (the app acts on whichever comes first); any
            # other event is pushed only to a device that holds no poll.
            push = raced or not await self._bus.is_held(key)
        except BusUnavailable as exc:
            # The event waits in the mailbox: a poll held on another node reads it when the
            # bus returns (Resync). Whether one is held is unknown, so the push wakes the phone.
            log.warning("event %s for %s: the bus is down (%s); queued only", event_id, key, exc)
            push = True
        if push:
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
        sends = []
        for registration, provider_name in _REGISTRATIONS[kind]:
            token = tokens.get(registration)
            provider = self._providers.get(provider_name)
            if token is not None and provider is not None:
                target = PushTarget(provider_name, token)
                sends.append(self._send(uuid, device_id, registration, provider, target, message))
        # Side by side: a vendor that is slow or retrying holds up no other channel, and one
        # that fails (its registration's removal included) fails alone.
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("push of %s to %s failed", message.event, uuid, exc_info=outcome)

    async def _send(
        self,
        uuid: str,
        device_id: str,
        registration: str,
        provider: PushProvider,
        target: PushTarget,
        message: PushMessage,
    ) -> None:
        name = target.provider
        pushes = self._telemetry.pushes
        try:
            result = await provider.send(message, target)
        except Exception:  # a provider bug must not take the caller down
            pushes.inc(name, "error")
            log.exception("push via %s failed", name)
            return
        if result.delivered:
            pushes.inc(name, "delivered")
        else:
            pushes.inc(name, "dead_token" if result.rejected_tokens else "failed")
        if result.rejected_tokens:
            log.info("dropping dead %s registration of %s", registration, uuid)
            await self._store.remove_push_token(uuid, device_id, registration)
        elif not result.delivered:
            log.warning("push via %s not delivered: %s", name, result.failure)

    @property
    def in_flight(self) -> int:
        """Third-party push rounds still under way (each for one event, on every channel)."""
        return len(self._sending)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
