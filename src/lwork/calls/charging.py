"""The call service's side of billing (CONTRACT §8): a balance check before every SIP leg to a
callee's phone, the talk-time cap when that leg answers, the CDR when the call ends.

App-to-app calls never come here; calls *from* the trunk to an app are not charged either
(the app's user did not place them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from lwork.billing.ledger import Cdr
from lwork.billing.rating import Charge
from lwork.calls.active import Active

log = logging.getLogger("lwork.calls")


class CallBilling(Protocol):
    async def check_can_dial(self, uuid: str, kind: str = "call", legs: int = 1) -> None:
        """Raise ``Failed("balance_not_enough")`` unless the first minute is paid for."""
        ...

    async def talk_cap_s(self, uuid: str, kind: str = "call", legs: int = 1) -> float | None: ...

    async def settle(self, cdr: Cdr) -> Charge | None: ...


class CallCharging:
    def __init__(
        self, billing: CallBilling | None, wall: Callable[[], float], warning_s: float
    ) -> None:
        """``billing`` None: calls are free (tests of the call flow alone)."""
        self._billing = billing
        self._wall = wall
        self._warning_s = warning_s

    async def check(self, uuid: str) -> None:
        if self._billing is not None:
            await self._billing.check_can_dial(uuid)

    async def answered(self, active: Active, now: float) -> None:
        """The SIP leg answered: start the meter and cap the talk at what the balance pays."""
        active.answered_wall = self._wall()
        if self._billing is None or active.inbound is not None:
            return
        cap = await self._billing.talk_cap_s(active.call.caller)
        if cap is not None:
            active.call.cap_talk(now, cap, self._warning_s)
            log.info("call %s: talk time capped at %.0f s by the balance", active.call.sid, cap)

    async def ended(self, active: Active) -> None:
        """Write the CDR of an answered outbound SIP leg and charge it."""
        call = active.call
        if self._billing is None or active.answered_wall is None or active.inbound is not None:
            return
        cdr = Cdr(id=call.sid, uuid=call.caller, kind="call", callee=call.callee_phone,
                  answered_at=active.answered_wall, ended_at=self._wall(),
                  end_reason=call.end_reason[:64])  # fmt: skip
        try:
            await self._billing.settle(cdr)
        except Exception:  # the database failed: keep the CDR in the log, for the operator
            log.exception("CDR NOT WRITTEN, settle by hand: %s", cdr)
