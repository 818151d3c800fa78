"""Billing: may this account dial, how long may it talk (its reservation), balances and gifts.

Only answered SIP legs cost anything (app-to-app calls are free, CONTRACT §8). The tariff is
chosen by the account's *stored* group, never by what an app sends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lwork.billing.buckets import (
    Bucket,
    Grant,
    earliest_expiry,
    last_day,
    month_periods,
    unexpired,
    usable,
)
from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import UNLIMITED, Balance, Tariff, coins_value, to_cents
from lwork.billing.reservations import ReservationStore, TalkGrant
from lwork.errors import Failed
from lwork.settings import BillingSettings

log = logging.getLogger("lwork.billing")
MINUTES_GROUPS = frozenset({"dth"})
"""Groups that pay with package minutes; every other group pays coins."""


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    call_cents_per_minute: int
    """A call from an app to a phone number (direct or after the app-to-app fallback)."""
    callback_cents_per_leg_minute: int
    """Each of a callback's two legs."""
    gift_cents: int = 0
    """Welcome gift of a new coin-paying account."""
    gift_minutes: int = 0
    """Welcome gift of a new minute-paying account."""
    timezone: str = "UTC"
    """Where a calendar month starts, for ``month_consumed``."""
    max_concurrent_paid_calls: int = 2
    """Paid calls one account may have at once, over all nodes."""
    grant_minutes: int = 5
    """The most talk time one grant adds to a call (it asks again before it runs out)."""

    @classmethod
    def of(cls, section: BillingSettings) -> BillingPolicy:
        return cls(
            call_cents_per_minute=to_cents(section.call_coins_per_minute),
            callback_cents_per_leg_minute=to_cents(section.callback_coins_per_leg_minute),
            gift_cents=to_cents(section.signup_gift_coins),
            gift_minutes=section.signup_gift_minutes,
            timezone=section.timezone,
            max_concurrent_paid_calls=section.max_concurrent_paid_calls,
            grant_minutes=section.grant_minutes,
        )


class BillingService:
    def __init__(
        self,
        ledger: LedgerStore,
        group_of: Callable[[str], Awaitable[str | None]],
        policy: BillingPolicy,
        wall: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.reservations = ReservationStore(ledger.engine, ledger)
        self._group_of = group_of
        self._policy = policy
        self._zone = ZoneInfo(policy.timezone)
        self._wall = wall

    async def tariff(self, uuid: str, kind: str) -> Tariff:
        group = await self._group_of(uuid)
        if group in MINUTES_GROUPS:
            return Tariff(pays_minutes=True)
        rate = self._policy.call_cents_per_minute
        if kind == "callback":
            rate = self._policy.callback_cents_per_leg_minute
        return Tariff(pays_minutes=False, cents_per_minute=rate)

    async def hold(self, uuid: str, call_id: str, kind: str, legs: int, owner: str) -> Tariff:
        """Reserve the first minute of a paid call (CONTRACT §8): ``balance_not_enough`` when
        the balance, after what the account's other live calls may still spend, does not pay
        it, or when the account has ``max_concurrent_paid_calls`` already (the contract names
        no other reason a start may fail with for money)."""
        tariff = await self.tariff(uuid, kind)
        refused = await self.reservations.hold(
            call_id, uuid, tariff, legs, self._policy.max_concurrent_paid_calls, owner,
            self._wall(),
        )  # fmt: skip
        if refused is not None:
            log.info("call %s of %s refused: %s", call_id, uuid, refused.value)
            raise Failed("balance_not_enough")
        return tariff

    async def grant(
        self, uuid: str, call_id: str, tariff: Tariff, legs: int, owner: str, after_minutes: int
    ) -> TalkGrant | None:
        """Talk time at ``tariff`` for a call answered now, or again for one whose grant of
        ``after_minutes`` runs out: at most ``billing.grant_minutes`` more, reserved (None: the
        tariff is free)."""
        if tariff.affordable_minutes(Balance()) >= UNLIMITED:
            return None
        up_to = after_minutes + self._policy.grant_minutes
        return await self.reservations.cap(call_id, uuid, tariff, legs, owner, self._wall(), up_to)

    async def release(self, call_id: str) -> None:
        await self.reservations.release(call_id)

    async def credit(
        self, uuid: str, ref: str, amount: Balance, note: str | None = None,
        grants: Sequence[Grant] | None = None,
    ) -> bool:  # fmt: skip
        """Add ``amount`` once per ``ref``; its minutes as ``grants`` (dated buckets) or, with
        none, minutes that never expire."""
        return await self.ledger.credit(uuid, ref, amount, note, self._wall(), grants)

    async def package(
        self, uuid: str, ref: str, minutes: int, periods: int, start: dt.date
    ) -> bool:
        """Grant ``minutes`` per calendar month for ``periods`` months from ``start`` (a day of
        ``billing.timezone``), once per ``ref``."""
        grants = month_periods(minutes, periods, start, self._zone)
        note = f"package {minutes} min x {periods} month(s) from {start.isoformat()}"
        return await self.credit(uuid, ref, Balance(minutes=minutes * periods), note, grants)

    async def balance(self, uuid: str) -> Balance:
        """Coins, and the package minutes usable now."""
        return await self.ledger.balance(uuid, self._wall())

    async def minutes(self, uuid: str) -> tuple[int, str]:
        """``get_coin``'s ``minutes`` (usable now) and ``minutes_expire``: the last day the
        first of them to expire can be used (``YYYY-MM-DD`` in ``billing.timezone``; empty
        when none of them expires)."""
        now = self._wall()
        buckets = await self.ledger.buckets(uuid, now)
        expiry = earliest_expiry(buckets, now)
        day = "" if expiry is None else last_day(expiry, self._zone).isoformat()
        return sum(b.minutes_left for b in usable(buckets, now)), day

    async def packages(self, uuid: str) -> list[Bucket]:
        """Buckets with minutes left that have not expired (usable now or later), expiring
        first."""
        now = self._wall()
        return unexpired(await self.ledger.buckets(uuid, now), now)

    def day(self, at: float) -> str:
        """``at`` as ``YYYY-MM-DD`` in ``billing.timezone``."""
        return dt.datetime.fromtimestamp(at, self._zone).date().isoformat()

    def last_day(self, expires_at: float) -> str:
        return last_day(expires_at, self._zone).isoformat()

    async def coins(self, uuid: str) -> tuple[int | float, int | float, int | float]:
        """``get_coin``'s figures (CONTRACT §8): coins, gift coins, spent this month."""
        balance = await self.ledger.balance(uuid, self._wall())
        spent = await self.ledger.charged_since(uuid, self.month_start(self._wall()))
        return (
            coins_value(balance.coins),
            coins_value(balance.gift_coins),
            coins_value(spent.coins + spent.gift_coins),
        )

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def day_start(self, day: dt.date) -> float:
        """When ``day`` begins in the billing time zone (Unix time)."""
        return dt.datetime(day.year, day.month, day.day, tzinfo=self._zone).timestamp()

    def month_start(self, wall: float) -> float:
        local = dt.datetime.fromtimestamp(wall, self._zone)
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()

    async def welcome(self, uuid: str, group: str) -> None:
        """The welcome gift of a new account (once, whatever retries happen)."""
        if group in MINUTES_GROUPS:
            gift = Balance(minutes=self._policy.gift_minutes)
        else:
            gift = Balance(gift_coins=self._policy.gift_cents)
        if gift != Balance():
            await self.credit(uuid, "signup:" + uuid, gift, f"welcome gift ({group})")
