"""A call as a bridge of legs, pure: events and time in, actions out.

Theory of operation. Every call, whatever its kind, is a bridge between parties, each reached
through a *leg*: an app (HTTP status reads, push, relay ports) or a phone (a SIP dialog through
the trunk). A leg is ``idle`` until its party rings, ``ring`` until it answers (``hookoff``) and
``release`` once it has ended. Legs report the same neutral events whatever they are
(``LegRinging``, ``LegAnswered``, ``LegEnded``), and the bridge answers each with the actions the
adapter (``engine.py``) performs: dial a phone, invite an app, answer or hang up a SIP dialog,
open a call record, cap the talk time, warn, release everything.

The kinds of call are shapes of the same bridge (``SHAPES``):

- ``p2p``: the caller's app and the callee's app, invited through its mailbox. If the callee's
  app cannot be reached, or does not ring within the fallback delay, its leg is released and a
  third leg dials the callee's real phone (``phone``): from then on the app's late ringing,
  answer or reject are refused with ``already_call_real_phone``.
- ``out``: the caller's app and a phone dialled at once.
- ``in``: a phone (the SIP caller) and the app that owns the number it dialled.
- ``callback``: two phones, ``local`` dialled first, ``remote`` once local answered.

Any leg ending (but the p2p callee app the fallback replaced) ends the call, with that leg's
reason; the bridge hangs up the others. The first reason stays.

Time. ``due(now)`` applies what the passage of time does: the fallback, the ring timeout of an
app leg, the keep-alive of an answered app leg (a status read or RTP within ``keepalive_s``;
the bridge asks the adapter to look at the relay before it ends a leg for silence), the
talk-time cap of a paid leg with its warning, and a callback's maximum duration.
``next_deadline()`` tells the one ticker when to look again: events may bring it earlier, status
reads and RTP only ever push it later.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

CAP_MARGIN_S = 2.0
"""A talk-time cap hangs up this much early: the ticker's granularity and the BYE's round trip
must still land inside the last minute the balance paid for."""
REGRANT_LEAD_S = 20.0
"""A call asks for its next grant of talk time this long before the last one runs out, so a
slow database answer does not hang it up."""


class Shape(enum.StrEnum):
    P2P = "p2p"
    OUT = "out"
    IN = "in"
    CALLBACK = "callback"


class Medium(enum.StrEnum):
    APP = "app"
    SIP = "sip"


class LegState(enum.StrEnum):
    IDLE = "idle"
    RING = "ring"
    HOOKOFF = "hookoff"
    RELEASE = "release"


class Status(enum.StrEnum):
    """What an app's status read shows (CONTRACT §6.1)."""

    IDLE = "idle"
    RING = "ring"
    HOOKOFF = "hookoff"
    P2P_IDLE = "p2p_idle"
    P2P_RING = "p2p_ring"
    P2P_HOOKOFF = "p2p_hookoff"
    RELEASE = "release"


# Roles: who a leg reaches.
CALLER = "caller"
"""The app that started the call (p2p, out)."""
CALLEE = "callee"
"""The app invited to the call (p2p, in)."""
PHONE = "phone"
"""The phone on the SIP side of an app's call (out, in, a p2p call that fell back)."""
LOCAL = "local"
REMOTE = "remote"
"""A callback's two phones."""

SHAPES: dict[Shape, tuple[tuple[str, Medium], ...]] = {
    Shape.P2P: ((CALLER, Medium.APP), (CALLEE, Medium.APP)),
    Shape.OUT: ((CALLER, Medium.APP), (PHONE, Medium.SIP)),
    Shape.IN: ((PHONE, Medium.SIP), (CALLEE, Medium.APP)),
    Shape.CALLBACK: ((LOCAL, Medium.SIP), (REMOTE, Medium.SIP)),
}
"""The legs each shape starts with (a p2p call gains ``phone`` when it falls back)."""

PAID = {Shape.OUT: (PHONE,), Shape.P2P: (PHONE,), Shape.CALLBACK: (LOCAL, REMOTE)}
"""The legs whose answer starts a meter (a p2p call's only once it fell back)."""


# Events


@dataclass(frozen=True, slots=True)
class LegRinging:
    role: str


@dataclass(frozen=True, slots=True)
class LegAnswered:
    role: str


@dataclass(frozen=True, slots=True)
class LegEnded:
    """A leg's party or network ended it (a SIP failure is ``sip_<code>``)."""

    role: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The invited app has no live session to tell, nor a push channel."""

    role: str


@dataclass(frozen=True, slots=True)
class MediaSeen:
    """RTP from ``role``'s party reached the relay since the adapter last looked."""

    role: str


@dataclass(frozen=True, slots=True)
class MediaSilent:
    """A silent app leg sent no RTP either: it is gone."""

    role: str


@dataclass(frozen=True, slots=True)
class StatusRead:
    """The app on ``role`` read its call's status: it is alive."""

    role: str


@dataclass(frozen=True, slots=True)
class Capped:
    """The balance pays the answered paid legs ``seconds`` from their last answer; not
    ``final``: it may pay more, asked for again shortly before that runs out."""

    seconds: float
    final: bool = True


@dataclass(frozen=True, slots=True)
class Release:
    """End the whole call: a hang-up, the account deactivated, the relay lost, a shutdown."""

    reason: str


Event = (
    LegRinging
    | LegAnswered
    | LegEnded
    | Unreachable
    | MediaSeen
    | MediaSilent
    | StatusRead
    | Capped
    | Release
)


# Actions


@dataclass(frozen=True, slots=True)
class Dial:
    """Place a SIP leg to ``role``'s number (a paid leg: after its first minute is reserved)."""

    role: str


@dataclass(frozen=True, slots=True)
class Invite:
    """Tell ``role``'s app of the call (mailbox and push)."""

    role: str


@dataclass(frozen=True, slots=True)
class Uninvite:
    """Take back the invitation (and any warning) waiting in a mailbox."""


@dataclass(frozen=True, slots=True)
class Ring:
    """Tell the phone that called (180) that the app rings."""

    role: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the phone that called (200)."""

    role: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End ``role``'s SIP leg: CANCEL or a refusal before its answer, BYE after."""

    role: str
    reason: str


@dataclass(frozen=True, slots=True)
class OpenRecord:
    """``role`` answered: open the call's record for it, with its SIP dialog."""

    role: str


@dataclass(frozen=True, slots=True)
class Cap:
    """Ask how long the balance pays the answered paid legs, which it was known to pay
    ``after_s`` before (the answer is ``Capped``)."""

    legs: int
    after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Warn:
    """Tell the caller the balance ends the call in ``seconds_left``."""

    seconds_left: float


@dataclass(frozen=True, slots=True)
class WatchMedia:
    """Look (without waiting) whether ``role`` sent RTP yet: ``MediaSeen`` if it did."""

    role: str


@dataclass(frozen=True, slots=True)
class CheckMedia:
    """``role`` stopped reading its status: ``MediaSeen`` if RTP still flows, else
    ``MediaSilent``."""

    role: str


@dataclass(frozen=True, slots=True)
class Released:
    """The call ended: free its media, close its records and charge them."""

    reason: str


Action = (
    Dial
    | Invite
    | Uninvite
    | Ring
    | Answer
    | Hangup
    | OpenRecord
    | Cap
    | Warn
    | WatchMedia
    | CheckMedia
    | Released
)


class Refused(Exception):
    """An event that cannot happen in the call's state; ``reason`` is the wire's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Timing:
    fallback_s: float = 4.0
    ring_timeout_s: float = 60.0
    keepalive_s: float = 60.0
    warning_s: float = 0.0
    """How long before the talk-time cap the caller is warned (0: not)."""
    max_s: float | None = None
    """The longest the call may last from its start (None: no limit)."""


@dataclass(slots=True)
class Leg:
    role: str
    medium: Medium
    state: LegState = LegState.IDLE
    answered_at: float | None = None
    alive_at: float = 0.0
    """The last sign of life of an app leg (a status read, RTP)."""
    checking: bool = False
    """A ``CheckMedia`` is out: the keep-alive waits for its answer."""

    @property
    def live(self) -> bool:
        return self.state is not LegState.RELEASE


@dataclass
class Bridge:
    shape: Shape
    created_at: float
    timing: Timing
    legs: dict[str, Leg] = field(default_factory=dict)
    end_reason: str = ""
    fell_back: bool = False
    media_at: float | None = None
    """When the caller's first RTP reached the relay (p2p: the fallback counts from there)."""
    cap_at: float | None = None
    warn_at: float | None = None
    granted_s: float = 0.0
    """Talk time granted so far, from the last paid answer (``Capped``)."""
    regrant_at: float | None = None
    """When to ask for the next grant (None: none asked for)."""

    def __post_init__(self) -> None:
        for role, medium in SHAPES[self.shape]:
            self.legs[role] = Leg(role, medium, alive_at=self.created_at)

    # what the apps see

    @property
    def ended(self) -> bool:
        return bool(self.end_reason)

    def status(self) -> Status:
        """The call's status as the app that started it, or the app a phone calls, sees it."""
        if self.ended:
            return Status.RELEASE
        if self.shape is Shape.IN or (self.shape is Shape.P2P and not self.fell_back):
            return Status("p2p_" + self.legs[CALLEE].state)
        return Status(self.legs[PHONE].state)

    def leg_state(self, role: str) -> LegState:
        leg = self.legs.get(role)
        return LegState.RELEASE if leg is None or self.ended else leg.state

    def paid_legs(self) -> tuple[str, ...]:
        return tuple(role for role in PAID.get(self.shape, ()) if role in self.legs)

    # events

    def start(self, now: float) -> list[Action]:
        """What the call does first."""
        if self.shape is Shape.P2P or self.shape is Shape.IN:
            return [Invite(CALLEE)]
        return [Dial(PHONE if self.shape is Shape.OUT else LOCAL)]

    def handle(self, event: Event, now: float) -> list[Action]:
        """The actions ``event`` leads to; ``Refused`` when it cannot happen now."""
        if isinstance(event, Release):
            return self._end(event.reason, None)
        if isinstance(event, Capped):
            return self._cap(event, now)
        leg = self._leg(event.role)
        if isinstance(event, StatusRead | MediaSeen):
            leg.alive_at = max(leg.alive_at, now)
            leg.checking = False
            if isinstance(event, MediaSeen) and event.role == CALLER and self.media_at is None:
                self.media_at = now
            return []
        if isinstance(event, MediaSilent):
            if not leg.checking:  # read its status while the relay was asked: alive
                return []
            return self._end(f"keepalive_timeout_{event.role}", None)
        if isinstance(event, Unreachable):
            return (
                self._fall_back(now)
                if self.shape is Shape.P2P
                else self._end("callee_unreachable", None)
            )
        if isinstance(event, LegEnded):
            return self._end(self._reason(event.role, event.reason), event.role)
        if isinstance(event, LegRinging):
            if leg.state is LegState.HOOKOFF:
                return []  # a late or repeated word: nothing to change
            first = leg.state is LegState.IDLE
            leg.state = LegState.RING
            return [Ring(PHONE)] if first and self.shape is Shape.IN else []
        return self._answered(leg, now)

    def _leg(self, role: str) -> Leg:
        """The live leg ``role``; a late word from an app whose leg the fallback released is
        refused as the contract says, any other word about a leg that ended as unknown."""
        leg = self.legs.get(role)
        if leg is not None and leg.live and not self.ended:
            return leg
        if self.fell_back and role == CALLEE and not self.ended:
            raise Refused("already_call_real_phone")
        raise Refused("session_not_exist")

    def _answered(self, leg: Leg, now: float) -> list[Action]:
        if leg.state is LegState.HOOKOFF:
            raise Refused("session_not_exist")
        leg.state = LegState.HOOKOFF
        leg.answered_at = leg.alive_at = now
        actions: list[Action] = [OpenRecord(leg.role)]
        if self.shape is Shape.IN:
            actions = [Answer(PHONE), *actions, Uninvite()]
        elif self.shape is Shape.P2P and leg.role == CALLEE:
            actions.append(Uninvite())
        elif self.shape is Shape.CALLBACK and leg.role == LOCAL:
            actions.append(Dial(REMOTE))
        if leg.role in self.paid_legs():
            self.granted_s = 0.0  # the meter starts again from this answer
            actions.append(Cap(self._paid_answered()))
        return actions

    def _paid_answered(self) -> int:
        return sum(self.legs[r].state is LegState.HOOKOFF for r in self.paid_legs())

    def _fall_back(self, now: float) -> list[Action]:
        callee = self.legs[CALLEE]
        if self.fell_back or callee.state is not LegState.IDLE:
            return []
        callee.state = LegState.RELEASE
        self.fell_back = True
        self.legs[PHONE] = Leg(PHONE, Medium.SIP, alive_at=now)
        return [Uninvite(), Dial(PHONE)]

    def _reason(self, role: str, reason: str) -> str:
        return f"{role}_{reason}" if self.shape is Shape.CALLBACK else reason

    def _end(self, reason: str, by: str | None) -> list[Action]:
        if self.ended:
            return []
        self.end_reason = reason or "ended"
        actions: list[Action] = [
            Hangup(leg.role, self.end_reason)
            for leg in self.legs.values()
            if leg.medium is Medium.SIP and leg.live and leg.role != by
        ]
        for leg in self.legs.values():
            leg.state = LegState.RELEASE
        return [*actions, Released(self.end_reason)]

    def _cap(self, capped: Capped, now: float) -> list[Action]:
        """The meter runs from the last paid answer, whenever the balance's answer comes."""
        if self.ended:
            return []
        answers = [self.legs[role].answered_at for role in self.paid_legs()]
        since = max((at for at in answers if at is not None), default=now)
        self.granted_s = capped.seconds
        cap_s = max(0.0, capped.seconds - CAP_MARGIN_S)
        self.cap_at = since + cap_s
        self.warn_at = self.regrant_at = None
        if not capped.final:
            self.regrant_at = max(now, self.cap_at - REGRANT_LEAD_S)
            return []
        warning_s = self.timing.warning_s
        self.warn_at = self.cap_at - warning_s if 0 < warning_s < cap_s else None
        return []

    # time

    def _fallback_at(self) -> float | None:
        if self.shape is not Shape.P2P or self.fell_back:
            return None
        if self.legs[CALLEE].state is not LegState.IDLE:
            return None
        from_start = self.created_at + self.timing.fallback_s
        if self.media_at is not None and self.media_at < from_start:
            return self.media_at + self.timing.fallback_s
        return from_start

    def _ring_timeout_at(self) -> float | None:
        callee = self.legs.get(CALLEE)
        if callee is None or callee.state not in (LegState.IDLE, LegState.RING):
            return None
        return self.created_at + self.timing.ring_timeout_s

    def _kept_alive(self) -> list[Leg]:
        """App legs whose owner must show it is there: the caller from the start, an invited
        app once it answered."""
        return [
            leg
            for leg in self.legs.values()
            if leg.medium is Medium.APP
            and leg.live
            and (leg.role == CALLER or leg.state is LegState.HOOKOFF)
        ]

    def watching_media(self) -> bool:
        """The fallback counts from the caller's first RTP: watched at every tick until then."""
        return self._fallback_at() is not None and self.media_at is None

    def next_deadline(self) -> float | None:
        """The earliest time ``due`` can find something, as long as nothing happens
        meanwhile; None once the call has ended."""
        if self.ended:
            return None
        deadlines = [
            self._fallback_at(),
            self._ring_timeout_at(),
            self.warn_at if self.warn_at is not None else self.cap_at,
            self.regrant_at,
            None if self.timing.max_s is None else self.created_at + self.timing.max_s,
        ]
        deadlines += [
            leg.alive_at + self.timing.keepalive_s for leg in self._kept_alive() if not leg.checking
        ]
        return min((d for d in deadlines if d is not None), default=None)

    def due(self, now: float) -> list[Action]:
        """What the passage of time alone does to the call at ``now``."""
        if self.ended:
            return []
        actions: list[Action] = []
        if self.watching_media():
            actions.append(WatchMedia(CALLER))
        fallback = self._fallback_at()
        if fallback is not None and now >= fallback:
            return [*actions, *self._fall_back(now)]
        ring_timeout = self._ring_timeout_at()
        if ring_timeout is not None and now >= ring_timeout:
            return self._end("ring_timeout", None)
        if self.timing.max_s is not None and now >= self.created_at + self.timing.max_s:
            return self._end("max_duration", None)
        if self.cap_at is not None and now >= self.cap_at:
            return self._end("balance_exhausted", None)
        if self.regrant_at is not None and now >= self.regrant_at:
            self.regrant_at = None  # asked once; the answer (Capped) sets the next
            actions.append(Cap(self._paid_answered(), self.granted_s))
        if self.warn_at is not None and self.cap_at is not None and now >= self.warn_at:
            self.warn_at = None
            actions.append(Warn(self.cap_at - now))
        for leg in self._kept_alive():
            if not leg.checking and now >= leg.alive_at + self.timing.keepalive_s:
                leg.checking = True
                actions.append(CheckMedia(leg.role))
        return actions
