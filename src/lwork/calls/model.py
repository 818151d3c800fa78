"""A call and its state machine, pure: events in, status out, time passed in.

Theory of operation. A call is created by the caller's start request and has one visible status
(CONTRACT §6.1 names). An app-to-app call (``p2p``) starts in ``p2p_idle`` while the callee app is
being informed; ``p2p_ringing`` moves it to ``p2p_ring``, ``p2p_answer`` to ``p2p_hookoff`` (the
callee then has a leg of its own), ``p2p_reject`` ends it. If the callee app does not ring within
the fallback delay (counted from the caller's first RTP packet, or from the start when none came),
the call falls back to the callee's real phone: ``FallbackStarted`` moves it to the SIP leg's
``idle``, after which the trunk drives ``ring`` and ``hookoff``, and the callee app's late
ringing/answer/reject are refused (``already_call_real_phone``). A call to a phone number starts
in ``idle`` directly. Every path ends in ``release`` with a reason.

Timers (``due_events``): the fallback deadline, the ring timeout of an app-ringing call, the
talk-time cap of a SIP call the caller's balance limits (``TalkTimeWarning`` ahead of it, then
``Ended("balance_exhausted")``), and each leg's keep-alive (a status read or RTP within
``keepalive_s``). The service asks the relay whether RTP flowed before it ends a leg for
silence. ``next_deadline`` tells the service's ticker when a call needs looking at again: status
reads and RTP only ever push it later, events may bring it earlier (so the service looks again
after each).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    IDLE = "idle"
    RING = "ring"
    HOOKOFF = "hookoff"
    P2P_IDLE = "p2p_idle"
    P2P_RING = "p2p_ring"
    P2P_HOOKOFF = "p2p_hookoff"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class CalleeRinging:
    pass


@dataclass(frozen=True, slots=True)
class CalleeAnswered:
    pass


@dataclass(frozen=True, slots=True)
class CalleeRejected:
    pass


@dataclass(frozen=True, slots=True)
class FallbackStarted:
    pass


@dataclass(frozen=True, slots=True)
class TrunkRinging:
    pass


@dataclass(frozen=True, slots=True)
class TrunkAnswered:
    pass


@dataclass(frozen=True, slots=True)
class TalkTimeWarning:
    seconds_left: float


@dataclass(frozen=True, slots=True)
class Ended:
    reason: str


Event = (
    CalleeRinging
    | CalleeAnswered
    | CalleeRejected
    | FallbackStarted
    | TrunkRinging
    | TrunkAnswered
    | TalkTimeWarning
    | Ended
)

TRANSITIONS: dict[Status, dict[type[Event], Status]] = {
    Status.P2P_IDLE: {
        CalleeRinging: Status.P2P_RING,
        CalleeAnswered: Status.P2P_HOOKOFF,
        CalleeRejected: Status.RELEASE,
        FallbackStarted: Status.IDLE,
        Ended: Status.RELEASE,
    },
    Status.P2P_RING: {
        CalleeAnswered: Status.P2P_HOOKOFF,
        CalleeRejected: Status.RELEASE,
        Ended: Status.RELEASE,
    },
    Status.P2P_HOOKOFF: {Ended: Status.RELEASE},
    Status.IDLE: {TrunkRinging: Status.RING, TrunkAnswered: Status.HOOKOFF, Ended: Status.RELEASE},
    Status.RING: {TrunkRinging: Status.RING, TrunkAnswered: Status.HOOKOFF, Ended: Status.RELEASE},
    Status.HOOKOFF: {TalkTimeWarning: Status.HOOKOFF, Ended: Status.RELEASE},
    Status.RELEASE: {},
}

CAP_MARGIN_S = 2.0
"""A talk-time cap hangs up this much early: the ticker's granularity and the BYE's round trip
must still land inside the last minute the balance paid for."""

SIP_STATUSES = frozenset({Status.IDLE, Status.RING, Status.HOOKOFF})


class IllegalTransition(Exception):
    def __init__(self, status: Status, event: Event) -> None:
        super().__init__(f"can't handle {type(event).__name__} in {status}")
        self.status = status
        self.event = event


@dataclass(frozen=True, slots=True)
class Timing:
    fallback_s: float
    ring_timeout_s: float
    keepalive_s: float


@dataclass
class Call:
    """One call as seen by its caller; ``callee_sid`` is the callee app's leg once answered."""

    sid: str
    caller: str
    callee_phone: str
    callee_uuid: str | None
    p2p: bool
    created_at: float
    timing: Timing
    status: Status = Status.P2P_IDLE
    end_reason: str = ""
    first_rtp_at: float | None = None
    caller_alive_at: float = 0.0
    callee_sid: str | None = None
    callee_alive_at: float = 0.0
    fell_back: bool = False
    inbound: bool = False
    """A call from the SIP trunk to an app: the app is the callee, the caller a phone."""
    history: list[tuple[float, Status]] = field(default_factory=list)
    talk_cap_at: float | None = None
    """When the SIP call must end because the caller's balance pays no longer."""
    warn_at: float | None = None
    """When to warn the caller that the cap is near (None: no warning, or given)."""

    def __post_init__(self) -> None:
        if not self.p2p:
            self.status = Status.IDLE
        self.caller_alive_at = self.created_at
        self.history.append((self.created_at, self.status))

    @property
    def ended(self) -> bool:
        return self.status is Status.RELEASE

    def apply(self, event: Event, now: float) -> Status:
        """Move to the status ``event`` leads to; IllegalTransition if it can't happen now."""
        target = TRANSITIONS[self.status].get(type(event))
        if target is None:
            raise IllegalTransition(self.status, event)
        if isinstance(event, FallbackStarted):
            self.fell_back = True
        if isinstance(event, CalleeAnswered):
            self.callee_alive_at = now
        if isinstance(event, TalkTimeWarning):
            self.warn_at = None
        if isinstance(event, Ended):
            self.end_reason = event.reason
        elif isinstance(event, CalleeRejected):
            self.end_reason = "rejected"
        self.status = target
        self.history.append((now, target))
        return target

    def fallback_deadline(self) -> float | None:
        if self.status is not Status.P2P_IDLE or self.inbound:
            return None
        start_deadline = self.created_at + self.timing.fallback_s
        if self.first_rtp_at is not None and self.first_rtp_at < start_deadline:
            return self.first_rtp_at + self.timing.fallback_s
        return start_deadline

    def due_events(self, now: float) -> list[Event]:
        """What the passage of time alone does to this call at ``now``."""
        if self.ended:
            return []
        fallback = self.fallback_deadline()
        if fallback is not None and now >= fallback:
            return [FallbackStarted()]
        if self.status in (Status.P2P_IDLE, Status.P2P_RING):
            if now >= self.created_at + self.timing.ring_timeout_s:
                return [Ended("ring_timeout")]
        if self.status is Status.HOOKOFF and self.talk_cap_at is not None:
            if now >= self.talk_cap_at:
                return [Ended("balance_exhausted")]
            if self.warn_at is not None and now >= self.warn_at:
                return [TalkTimeWarning(self.talk_cap_at - now)]
        return []

    def cap_talk(self, now: float, cap_s: float, warning_s: float) -> None:
        """Limit an answered SIP call to ``cap_s`` from ``now``, warning ``warning_s`` ahead."""
        cap_s = max(0.0, cap_s - CAP_MARGIN_S)
        self.talk_cap_at = now + cap_s
        if 0 < warning_s < cap_s:
            self.warn_at = self.talk_cap_at - warning_s

    def next_deadline(self) -> float | None:
        """The earliest time at which ``due_events`` or ``silent_legs`` can find something,
        as long as nothing happens to the call meanwhile; None once it has ended."""
        if self.ended:
            return None
        deadlines = []
        fallback = self.fallback_deadline()
        if fallback is not None:
            deadlines.append(fallback)
        if self.status in (Status.P2P_IDLE, Status.P2P_RING):
            deadlines.append(self.created_at + self.timing.ring_timeout_s)
        if self.status is Status.HOOKOFF and self.talk_cap_at is not None:
            deadlines.append(self.talk_cap_at if self.warn_at is None else self.warn_at)
        if not self.inbound:
            deadlines.append(self.caller_alive_at + self.timing.keepalive_s)
        if self.callee_sid is not None:
            deadlines.append(self.callee_alive_at + self.timing.keepalive_s)
        return min(deadlines, default=None)

    def silent_legs(self, now: float) -> list[str]:
        """Legs whose owner has neither polled status nor (as far as we know) sent RTP."""
        legs = []
        # Deadlines computed as in next_deadline: float rounding must not tell them apart.
        if not self.inbound and now >= self.caller_alive_at + self.timing.keepalive_s:
            legs.append("caller")
        if self.callee_sid is not None and now >= self.callee_alive_at + self.timing.keepalive_s:
            legs.append("callee")
        return legs
