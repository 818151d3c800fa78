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
from lwork.calls.active import Active
from lwork.calls.records import CallRecord, leg_quality, sip_status
from lwork.calls.records_store import RecordStore

log = logging.getLogger("lwork.calls")


class Persistable(Protocol):
    def persisted_dialog(self) -> str | None: ...


class CallBilling(Protocol):
    async def tariff(self, uuid: str, kind: str) -> Tariff: ...

    async def hold(self, uuid: str, call_id: str, kind: str, legs: int, owner: str) -> None:
        """Raise ``Failed("balance_not_enough")`` unless the first minute is paid for."""
        ...

    async def cap_s(
        self, uuid: str, call_id: str, kind: str, legs: int, owner: str
    ) -> float | None: ...

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
        monotonic: Callable[[], float],
        warning_s: float,
    ) -> None:
        """``billing`` and ``records`` None: calls are free and unrecorded (tests of the call
        flow alone). ``owner`` names this process's life on ``node`` (records it heart-beats)."""
        self.billing = billing
        self.records = records
        self.node = node
        self.owner = owner
        self._wall = wall
        self._monotonic = monotonic
        self._warning_s = warning_s

    async def check(self, uuid: str, call_id: str) -> None:
        """A SIP leg to a phone is about to be placed: reserve its first minute."""
        if self.billing is not None:
            await self.billing.hold(uuid, call_id, "call", 1, self.owner)

    async def release(self, call_id: str) -> None:
        """A call that held a reservation failed to start."""
        if self.billing is not None:
            await self.billing.release(call_id)

    async def answered(self, active: Active, now: float) -> None:
        """A leg answered: open its record and, if it is paid, cap its talk time."""
        active.answered_wall = self._wall()
        record = self.record(active)
        await self.open_record(record)
        if self.billing is None or record.tariff_kind is None:
            return
        call = active.call
        cap = await self.billing.cap_s(call.caller, call.sid, record.tariff_kind, 1, self.owner)
        if cap is not None:
            call.cap_talk(now, cap, self._warning_s)
            log.info("call %s: talk time capped at %.0f s by the balance", call.sid, cap)

    async def ended(self, active: Active) -> None:
        """Close the leg's record (written now if it never answered) and charge it."""
        await self.close_record(self.record(active, ended=True), release=active.call.sid)

    async def open_record(self, record: CallRecord) -> None:
        if self.records is None:
            return
        try:
            await self.records.open(record, self.owner, self._wall())
        except Exception:  # not fatal: the record is inserted at its end instead
            log.exception("call %s: record not opened", record.id)

    async def close_record(self, record: CallRecord, release: str | None) -> bool:
        """Close and charge ``record``, dropping the reservation ``release`` with it; False if
        it was closed before (by another node) or could not be written."""
        if self.records is None:
            return False
        try:
            tariff = None
            if self.billing is not None and record.tariff_kind is not None:
                tariff = await self.billing.tariff(record.account, record.tariff_kind)
            charge = await self.records.close(record, tariff, self._wall(), release=release)
        except Exception:  # the database failed: keep the record in the log, for the operator
            log.exception("CDR NOT WRITTEN, settle by hand: %s", record)
            return False
        return charge is not None

    def record(self, active: Active, ended: bool = False) -> CallRecord:
        """The record of ``active``'s leg: open (with its dialog) or, ``ended``, closed now."""
        call = active.call
        leg: Persistable | None
        if active.inbound is not None:  # a phone called an app: the app's account
            kind, account, leg, tag = (
                "in",
                call.callee_uuid or call.callee_phone,
                active.inbound,
                "sip",
            )
        else:
            kind = "p2p" if call.p2p and not call.fell_back else "out"
            account, leg = call.caller, active.sip_leg
            tag = "caller" if kind == "p2p" else "callee"  # whose media the relay measured
        now = self._wall()
        answered = active.answered_wall
        started = min(now - (self._monotonic() - call.created_at), answered or now)
        return CallRecord(
            id=call.sid,
            account=account,
            kind=kind,
            caller=call.caller,
            callee=call.callee_phone,
            caller_id=active.caller_id if kind == "out" else "",
            started_at=started,
            answered_at=answered,
            ended_at=now if ended else None,
            end_reason=call.end_reason,
            sip_status=None if kind == "p2p" else sip_status(call.end_reason, answered is not None),
            quality=leg_quality(active.stats if ended else None, tag),
            node=self.node,
            dialog=leg.persisted_dialog() if leg is not None and not ended else None,
        )
