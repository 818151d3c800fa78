"""Common machinery of the four SIP transaction state machines (RFC 3261 section 17).

Each transaction is a pure object: the caller feeds it messages and the current time, then
drains ``messages_to_send()`` and ``next_event()``, and calls ``handle_timer(now)`` once the
deadline from ``get_timer()`` has passed. Timers are named after the RFC (A, B, D, ...) so the
tests can be read against its tables. Zero-length timers on reliable transports (D, I, J, K)
are not armed: the transaction terminates at once.
"""

import enum
from collections import deque
from dataclasses import dataclass

from lwork.sip.events import SipEvent, TransactionTerminated, TransactionTimedOut
from lwork.sip.matching import TransactionKey
from lwork.sip.message import SipRequest, SipResponse

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """RFC 3261 timer base values in seconds (T1 RTT estimate, T2 cap, T4 network lifetime)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0


DEFAULT_TIMERS = TimerSettings()


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message the transport must send to ``peer``."""

    message: SipRequest | SipResponse
    peer: Address


class TransactionState(enum.Enum):
    INITIAL = "initial"
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"  # RFC 6026: absorbs 2xx retransmissions / passes 2xx ACKs up
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class TransactionStateError(Exception):
    """Local misuse: the transaction user did something its state does not allow."""


class Transaction:
    """Outbox, event queue and named timers shared by all transaction kinds."""

    def __init__(
        self,
        key: TransactionKey,
        peer: Address,
        *,
        reliable: bool,
        timers: TimerSettings,
    ) -> None:
        self.key = key
        self.peer = peer
        self.reliable = reliable
        self.timers = timers
        self.state = TransactionState.INITIAL
        self._deadlines: dict[str, float] = {}
        self._outbox: list[OutgoingMessage] = []
        self._events: deque[SipEvent] = deque()

    @property
    def is_terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def get_timer(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def timer_deadline(self, name: str) -> float | None:
        return self._deadlines.get(name)

    def handle_timer(self, now: float) -> None:
        # Fire due timers in deadline order; a handler may re-arm or cancel the others.
        while self._deadlines:
            name, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self._deadlines[name]
            self._on_timer(name, now)

    def messages_to_send(self) -> list[OutgoingMessage]:
        messages, self._outbox = self._outbox, []
        return messages

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def _on_timer(self, name: str, now: float) -> None:
        raise NotImplementedError

    def _send(self, message: SipRequest | SipResponse) -> None:
        self._outbox.append(OutgoingMessage(message, self.peer))

    def _emit(self, event: SipEvent) -> None:
        self._events.append(event)

    def _arm(self, name: str, deadline: float) -> None:
        self._deadlines[name] = deadline

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _wait_then_terminate(self, timer: str, duration: float, now: float) -> None:
        if duration <= 0:
            self._terminate()
        else:
            self._arm(timer, now + duration)

    def _time_out(self, timer: str) -> None:
        self._emit(TransactionTimedOut(self.key, timer))
        self._terminate()

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self._deadlines.clear()
        self._emit(TransactionTerminated(self.key))

    def _require(self, *states: TransactionState) -> None:
        if self.state not in states:
            raise TransactionStateError(f"not allowed in state {self.state.value}")
