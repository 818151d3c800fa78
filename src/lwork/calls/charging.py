"""The call service's side of billing and call records (CONTRACT §8, §9).

A paid leg (an app's call to a phone number, directly or after the app-to-app fallback) holds
a reservation from its start: ``balance_not_enough`` when the balance, after what the
account's other live calls may still spend, does not pay its first minute. When it answers its
talk time is capped at what is left after those calls, and reserved. Every leg, paid or not,
answered or not, leaves one record: opened at answer with its SIP dialog, closed and charged at
its end (``records_store.py``), so that a crash loses neither the record nor the charge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from lwork.billing.rating import Tariff
from lwork.billing.reservations import TalkGrant
from lwork.calls.bridge import CALLEE, CALLER, LOCAL, PAID, PHONE, REMOTE, Shape
from lwork.calls.live import LiveCall
from lwork.calls.records import CallRecord, leg_quality, sip_status
from lwork.calls.records_store import RecordStore
from lwork.telemetry import Telemetry

log = logging.getLogger("lwork.calls")


class CallBilling(Protocol):
    async def tariff(self, uuid: str, kind: str) -> Tariff: ...

    async def hold(self, uuid: str, call_id: str, kind: str, legs: int, owner: str) -> Tariff:
        """Raise ``Failed("balance_not_enough")`` unless the first minute is paid for; the
        tariff it was reserved at."""
        ...

    async def grant(
        self, uuid: str, call_id: str, tariff: Tariff, legs: int, owner: str, after_minutes: int
    ) -> TalkGrant | None: ...

    async def release(self, call_id: str) -> None: ...


class CallCharging:
    def __init__(
        self,
        billing: CallBilling | None,
        records: RecordStore | None,
        *,
        node: str,
        owner: str,
        wall: Callable[[], float],
        telemetry: Telemetry | None = None,
    ) -> None:
        """``billing`` and ``records`` None: calls are free and unrecorded (tests of the call
        flow alone). ``owner`` names this process's life on ``node`` (records it heart-beats)."""
        self.billing = billing
        self.records = records
        self.node = node
        self.owner = owner
        self._wall = wall
        self._telemetry = telemetry or Telemetry()

    async def hold(self, live: LiveCall) -> None:
        """A paid SIP leg is about to be placed: reserve the first minute of the call's paid
        legs (again: a no-op)."""
        kind = TARIFFS.get(live.shape)
        if self.billing is not None and kind is not None and live.tariff is None:
            legs = len(PAID[live.shape])
            live.tariff = await self.billing.hold(live.account, live.sid, kind, legs, self.owner)

    async def release(self, call_id: str) -> None:
        """A call that held a reservation failed to start."""
        if self.billing is not None:
            await self.billing.release(call_id)

    async def grant(self, live: LiveCall, legs: int, after_s: float) -> TalkGrant | None:
        """Talk time for ``legs`` answered legs of ``live``, which was granted ``after_s``
        seconds before (None: no limit)."""
        kind = TARIFFS.get(live.shape)
        if self.billing is None or kind is None:
            return None
        after_minutes = round(after_s / 60.0)
        tariff = live.tariff or await self.billing.tariff(live.account, kind)
        grant = await self.billing.grant(
            live.account, live.sid, tariff, legs, self.owner, after_minutes
        )
        if grant is not None and grant.final:
            log.info("call %s: talk time capped at %d min by the balance", live.sid, grant.minutes)
        return grant

    async def opened(self, live: LiveCall, role: str) -> None:
        """``role`` answered: open the record it is metered in, with its SIP dialog."""
        await self.open_record(self.record(live, record_role(live, role), ended=False))

    async def settle(self, live: LiveCall) -> None:
        """The call ended: close each of its records (written now if it never answered) and
        charge it; the last close drops the call's reservation."""
        roles = record_roles(live)
        for index, role in enumerate(roles):
            release = live.sid if index == len(roles) - 1 else None
            await self.close_record(self.record(live, role, ended=True), release, live.tariff)
        if not roles:
            await self.release(live.sid)

    async def open_record(self, record: CallRecord) -> None:
        if self.records is None:
            return
        try:
            await self.records.open(record, self.owner, self._wall())
        except Exception:  # not fatal: the record is inserted at its end instead
            log.exception("call %s: record not opened", record.id)

    async def close_record(
        self, record: CallRecord, release: str | None, tariff: Tariff | None = None
    ) -> bool:
        """Close and charge ``record`` at ``tariff`` (None: its account's tariff now, for a
        record another life of lwork opened), dropping the reservation ``release`` with it;
        False if it was closed before (by another node) or could not be written."""
        if self.records is None:
            return False
        try:
            if self.billing is None or record.tariff_kind is None:
                tariff = None
            elif tariff is None:
                tariff = await self.billing.tariff(record.account, record.tariff_kind)
            charge = await self.records.close(record, tariff, self._wall(), release=release)
        except Exception:  # the database failed: keep the record in the log, for the operator
            log.exception("CDR NOT WRITTEN, settle by hand: %s", record)
            return False
        if charge is not None:
            charged = self._telemetry.charged
            charged.inc("coin_cents", amount=charge.cents)
            charged.inc("package_minutes", amount=charge.minutes)
        return charge is not None

    def record(self, live: LiveCall, role: str, ended: bool) -> CallRecord:
        """The record of ``live``'s ``role`` leg: open (with its dialog) or, ``ended``, closed
        now."""
        bridge = live.bridge
        callback = live.shape is Shape.CALLBACK
        kind = f"callback_{role}" if callback else record_kind(live)
        now = self._wall()
        answered = live.answered_wall.get(role)
        started = live.dialled_wall.get(role, live.started_wall) if callback else live.started_wall
        leg = live.inbound if live.shape is Shape.IN else live.sip.get(role)
        reason = bridge.end_reason
        # A callback leg's SIP status is its own failure's, never the other leg's.
        own_reason = reason if not callback or reason.startswith(role) else ""
        if callback:
            caller, callee, measured = live.account, live.numbers[role], role
        elif live.shape is Shape.IN:
            caller, callee, measured = live.numbers[PHONE], live.numbers[CALLEE], PHONE
        else:
            callee = live.numbers.get(CALLEE) or live.numbers[PHONE]
            caller, measured = live.numbers[CALLER], CALLER if kind == "p2p" else PHONE
        return CallRecord(
            id=f"{live.sid}/{role}" if callback else live.sid,
            account=live.account,
            kind=kind,
            caller=caller,
            callee=callee,
            caller_id=live.caller_id if kind in ("out", *PAID_CALLBACK) else "",
            started_at=min(started, answered or started),
            answered_at=answered,
            ended_at=now if ended else None,
            end_reason=reason,
            sip_status=None if kind == "p2p" else sip_status(own_reason, answered is not None),
            quality=leg_quality(live.stats if ended else None, live.tag(measured)),
            node=self.node,
            carrier_codec=live.carrier_codec.get(role if callback else PHONE),
            dialog=leg.persisted_dialog() if leg is not None and not ended else None,
        )


TARIFFS = {Shape.OUT: "call", Shape.P2P: "call", Shape.CALLBACK: "callback"}
PAID_CALLBACK = ("callback_local", "callback_remote")


def record_kind(live: LiveCall) -> str:
    if live.shape is Shape.P2P:
        return "out" if live.bridge.fell_back else "p2p"
    return str(live.shape)


def record_role(live: LiveCall, role: str) -> str:
    """The leg whose record ``role``'s answer opens: a callback's own, else the call's one
    record, kept under the leg that is not the caller's app."""
    if live.shape is Shape.CALLBACK:
        return role
    if live.shape is Shape.P2P and not live.bridge.fell_back:
        return CALLEE
    return PHONE if live.shape is not Shape.IN else CALLEE


def record_roles(live: LiveCall) -> list[str]:
    """The records a call leaves: a callback one per leg it dialled, any other call one."""
    if live.shape is Shape.CALLBACK:
        return [role for role in (LOCAL, REMOTE) if role in live.dialled_wall]
    return [record_role(live, CALLEE)]
