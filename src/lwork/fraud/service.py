"""The fraud guard: one call before every SIP leg to a phone number and every SMS code.

What is shared and what is per node. Overrides, alarms and the blocks they set live in the
database, so every node (and ``lwork fraud`` on the command line) sees a block as soon as it is
raised, and it outlives a restart. Spending (daily cap, spending rate) is read from the ledger
and the call records, shared too. Call counts (per account, per destination range) are kept in
each node's memory: counting every call attempt in the database or Redis would add a write to
each call start for a figure that only needs to be roughly right, so with N nodes behind a
load balancer a threshold is met on one node at up to N times the configured rate overall.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lwork.billing.service import BillingService
from lwork.errors import Failed
from lwork.fraud.limits import (
    Limits,
    Override,
    day_start,
    is_own_number,
    passes_daily_cap,
    spend_rate,
)
from lwork.fraud.prefixes import NumberPlan
from lwork.fraud.store import ACCOUNT, PREFIX, Alarm, FraudStore
from lwork.fraud.velocity import WindowCounter

log = logging.getLogger("lwork.fraud")
WINDOW_S = 60.0
ACCOUNT_BLOCKED = "not_actived"
"""What a blocked account's calls answer: the apps show it as "this account may not call"."""
DESTINATION_REFUSED = "invalid_phone"
CAP_REACHED = "balance_not_enough"
SMS_REFUSED = "sms_failed"
"""``sms/auth_code`` knows no reason for a refused number; the app says the SMS failed."""


@dataclass(frozen=True, slots=True)
class FraudPolicy:
    groups: dict[str, Limits]
    """Limits per account group; accounts of any other group get ``common``'s."""
    plan: NumberPlan
    timezone: str
    prefix_digits: int
    prefix_calls_per_minute: int
    block_s: float
    node: str


class FraudService:
    def __init__(
        self,
        store: FraudStore,
        billing: BillingService,
        policy: FraudPolicy,
        group_of: Callable[[str], Awaitable[str | None]],
        did_of: Callable[[str], Awaitable[str | None]],
        wall: Callable[[], float],
    ) -> None:
        self.store = store
        self.policy = policy
        self._billing = billing
        self.group_of = group_of
        """The account's stored group; None: no such account."""
        self._did_of = did_of
        self._wall = wall
        self._zone = ZoneInfo(policy.timezone)
        self._account_calls = WindowCounter(WINDOW_S)
        self._range_calls = WindowCounter(WINDOW_S)

    async def limits(self, uuid: str) -> tuple[str, Limits, Override | None]:
        """The account's group, its limits (the group's with its override) and the override."""
        group = await self.group_of(uuid) or "common"
        override = await self.store.override(uuid)
        limits = self.policy.groups.get(group) or self.policy.groups["common"]
        return group, limits if override is None else override.applied_to(limits), override

    def range_of(self, e164: str) -> str:
        return e164[: 1 + self.policy.prefix_digits]

    async def check_call(self, uuid: str, number: str, kind: str = "call", legs: int = 1) -> None:
        """Raise ``Failed`` unless ``uuid`` may dial ``number`` now; counts the attempt."""
        _, limits, _ = await self.limits(uuid)
        e164 = self._destination(uuid, number, limits)
        await self._within_limits(uuid, e164, limits, kind, legs)

    async def check_callback(self, uuid: str, local: str, remote: str) -> None:
        """Both legs of a callback: each destination, the cap for two legs, one attempt."""
        _, limits, _ = await self.limits(uuid)
        self._destination(uuid, local, limits)
        e164 = self._destination(uuid, remote, limits)
        await self._within_limits(uuid, e164, limits, "callback", 2)

    async def check_callback_local(self, uuid: str, local: str) -> None:
        """CONTRACT §6.3: ``local`` is the account's own number (its uuid for ``common``
        accounts, its bound DID) or one the operator allowed for it; else ``invalid_phone``."""
        group, _, override = await self.limits(uuid)
        key = self.policy.plan.key
        own = [key(uuid)] if group == "common" else []
        did = await self._did_of(uuid)
        if did:
            own.append(key(did))
        allowed = [key(n) for n in override.callback_local] if override else []
        if not is_own_number(key(local), own, allowed):
            log.warning("callback of %s refused: local %s is not the account's own", uuid, local)
            raise Failed(DESTINATION_REFUSED)

    async def check_sms(self, phone: str) -> None:
        """Raise ``Failed("sms_failed")`` unless an SMS code may be sent to ``phone``."""
        group = await self.group_of(phone) or "common"
        limits = self.policy.groups.get(group) or self.policy.groups["common"]
        e164 = self.policy.plan.e164(phone)
        if not limits.sms.permits(e164):
            log.warning("SMS code to %s refused: denied by %s", phone, limits.sms.denied_by(e164))
            raise Failed(SMS_REFUSED)

    async def spent_today(self, uuid: str, pays_minutes: bool, now: float) -> int:
        """What the account's calls cost since the day began (``billing.timezone``), in its
        unit: from the ledger, so every node agrees."""
        spent = await self._billing.ledger.charged_since(uuid, day_start(now, self._zone))
        return spent.minutes if pays_minutes else spent.coins + spent.gift_coins

    # the steps

    def _destination(self, uuid: str, number: str, limits: Limits) -> str | None:
        e164 = self.policy.plan.e164(number)
        if not limits.calls.permits(e164):
            log.warning("call of %s to %s refused: destination denied by %s", uuid, number,
                        limits.calls.denied_by(e164))  # fmt: skip
            raise Failed(DESTINATION_REFUSED)
        return e164

    async def _within_limits(
        self, uuid: str, e164: str | None, limits: Limits, kind: str, legs: int
    ) -> None:
        now = self._wall()
        span = self.range_of(e164) if e164 else None
        blocked = await self.store.blocked([uuid] + ([span] if span else []), now)
        if uuid in blocked:
            log.info("call of %s refused: the account is blocked by a fraud alarm", uuid)
            raise Failed(ACCOUNT_BLOCKED)
        if span in blocked:
            log.info("call of %s refused: range %s is blocked by a fraud alarm", uuid, span)
            raise Failed(DESTINATION_REFUSED)
        if limits.daily_cap:
            await self._check_daily_cap(uuid, limits, kind, legs, now)
        if limits.spend_per_minute:
            rate = spend_rate(await self.store.spending(uuid, now - WINDOW_S), now - WINDOW_S, now)
            if rate >= limits.spend_per_minute:
                await self._alarm(ACCOUNT, uuid, f"spent {rate} (limit {limits.spend_per_minute}, "
                                  "cents or minutes) in the last 60 s", now)  # fmt: skip
                raise Failed(ACCOUNT_BLOCKED)
        if limits.calls_per_minute:  # counted only where a limit applies: memory
            calls = self._account_calls.add(uuid, now)
            if calls > limits.calls_per_minute:
                self._account_calls.reset(uuid)
                facts = (
                    f"{calls} calls in 60 s (limit {limits.calls_per_minute}), the last to {e164}"
                )
                await self._alarm(ACCOUNT, uuid, facts, now)
                raise Failed(ACCOUNT_BLOCKED)
        threshold = self.policy.prefix_calls_per_minute
        if span is not None and threshold:
            to_range = self._range_calls.add(span, now)
            if to_range > threshold:
                self._range_calls.reset(span)
                await self._alarm(PREFIX, span, f"{to_range} calls in 60 s to {span} (limit "
                                  f"{threshold}), the last from {uuid}", now)  # fmt: skip
                raise Failed(DESTINATION_REFUSED)

    async def _check_daily_cap(
        self, uuid: str, limits: Limits, kind: str, legs: int, now: float
    ) -> None:
        tariff = await self._billing.tariff(uuid, kind)
        today = await self.spent_today(uuid, tariff.pays_minutes, now)
        first = legs * (1 if tariff.pays_minutes else tariff.cents_per_minute)
        if not passes_daily_cap(limits, today, first):
            log.warning("call of %s refused: spent %d today, the daily cap is %d", uuid, today,
                        limits.daily_cap)  # fmt: skip
            raise Failed(CAP_REACHED)

    async def _alarm(self, kind: str, subject: str, facts: str, now: float) -> None:
        until = now + self.policy.block_s
        log.warning("FRAUD ALARM: %s %s blocked for %.0f s: %s", kind, subject,
                    self.policy.block_s, facts)  # fmt: skip
        await self.store.raise_alarm(Alarm(kind, subject, facts, self.policy.node, now, until))
