"""The bridge's state table and timers, driven with time passed in (a manual clock)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.calls.bridge import (
    CALLEE,
    CALLER,
    CAP_MARGIN_S,
    LOCAL,
    PHONE,
    REGRANT_LEAD_S,
    REMOTE,
    SHAPES,
    Action,
    Answer,
    Bridge,
    Cap,
    Capped,
    CheckMedia,
    Dial,
    Event,
    Hangup,
    Invite,
    LegAnswered,
    LegEnded,
    LegRinging,
    LegState,
    MediaSeen,
    MediaSilent,
    OpenRecord,
    Refused,
    Release,
    Released,
    Ring,
    Shape,
    Status,
    StatusRead,
    Timing,
    Uninvite,
    Unreachable,
    Warn,
    WatchMedia,
)

T0 = 100.0
TIMING = Timing(fallback_s=5, ring_timeout_s=60, keepalive_s=30, warning_s=60)


def bridge(shape: Shape, timing: Timing = TIMING) -> Bridge:
    return Bridge(shape, T0, timing)


# What each leg event does to a leg in its first state, shape by shape: (actions, leg after).
FROM_IDLE: dict[tuple[Shape, str, type[Event]], list[Action]] = {
    (Shape.P2P, CALLEE, LegRinging): [],
    (Shape.P2P, CALLEE, LegAnswered): [OpenRecord(CALLEE), Uninvite()],
    (Shape.P2P, CALLEE, LegEnded): [Released("why")],
    (Shape.P2P, CALLER, LegEnded): [Released("why")],
    (Shape.OUT, PHONE, LegRinging): [],
    (Shape.OUT, PHONE, LegAnswered): [OpenRecord(PHONE), Cap(1)],
    (Shape.OUT, PHONE, LegEnded): [Released("why")],
    (Shape.OUT, CALLER, LegEnded): [Hangup(PHONE, "why"), Released("why")],
    (Shape.IN, CALLEE, LegRinging): [Ring(PHONE)],
    (Shape.IN, CALLEE, LegAnswered): [Answer(PHONE), OpenRecord(CALLEE), Uninvite()],
    (Shape.IN, CALLEE, LegEnded): [Hangup(PHONE, "why"), Released("why")],
    (Shape.IN, PHONE, LegEnded): [Released("why")],
    (Shape.CALLBACK, LOCAL, LegRinging): [],
    (Shape.CALLBACK, LOCAL, LegAnswered): [OpenRecord(LOCAL), Dial(REMOTE), Cap(1)],
    (Shape.CALLBACK, LOCAL, LegEnded): [Hangup(REMOTE, "local_why"), Released("local_why")],
    (Shape.CALLBACK, REMOTE, LegRinging): [],
    (Shape.CALLBACK, REMOTE, LegAnswered): [OpenRecord(REMOTE), Cap(1)],
    (Shape.CALLBACK, REMOTE, LegEnded): [Hangup(LOCAL, "remote_why"), Released("remote_why")],
}
LEG_AFTER = {LegRinging: LegState.RING, LegAnswered: LegState.HOOKOFF, LegEnded: LegState.RELEASE}


def leg_event(kind: type[Event], role: str) -> Event:
    if kind is LegEnded:
        return LegEnded(role, "why")
    return LegRinging(role) if kind is LegRinging else LegAnswered(role)


@pytest.mark.parametrize(("shape", "role", "kind"), list(FROM_IDLE))
def test_each_leg_event_from_idle(shape: Shape, role: str, kind: type[Event]) -> None:
    call = bridge(shape)
    assert call.handle(leg_event(kind, role), T0 + 1) == FROM_IDLE[shape, role, kind]
    assert call.legs[role].state is LEG_AFTER[kind]
    assert call.ended is (kind is LegEnded)


@pytest.mark.parametrize("shape", list(Shape))
@pytest.mark.parametrize("state", list(LegState))
@pytest.mark.parametrize("kind", [LegRinging, LegAnswered, LegEnded])
def test_every_cell_of_the_leg_table(shape: Shape, state: LegState, kind: type[Event]) -> None:
    for role, _ in SHAPES[shape]:
        call = bridge(shape)
        call.legs[role].state = state
        event = leg_event(kind, role)
        if state is LegState.RELEASE or (state is LegState.HOOKOFF and kind is LegAnswered):
            with pytest.raises(Refused):
                call.handle(event, T0 + 1)
            assert call.legs[role].state is state
            continue
        actions = call.handle(event, T0 + 1)
        if state is LegState.HOOKOFF and kind is LegRinging:
            assert actions == [] and call.legs[role].state is LegState.HOOKOFF  # a late 180
        else:
            assert call.legs[role].state is LEG_AFTER[kind]
            assert call.ended is (kind is LegEnded)


@pytest.mark.parametrize("shape", list(Shape))
def test_the_first_actions(shape: Shape) -> None:
    first = {Shape.P2P: Invite(CALLEE), Shape.IN: Invite(CALLEE), Shape.OUT: Dial(PHONE),
             Shape.CALLBACK: Dial(LOCAL)}  # fmt: skip
    assert bridge(shape).start(T0) == [first[shape]]


def test_an_app_call_shows_p2p_statuses_until_it_ends() -> None:
    call = bridge(Shape.P2P)
    assert call.status() is Status.P2P_IDLE
    call.handle(LegRinging(CALLEE), T0 + 1)
    assert call.status() is Status.P2P_RING
    call.handle(LegAnswered(CALLEE), T0 + 2)
    assert call.status() is Status.P2P_HOOKOFF
    assert call.handle(Release("hangup_caller"), T0 + 3) == [Released("hangup_caller")]
    assert call.status() is Status.RELEASE and call.end_reason == "hangup_caller"


def test_a_phone_call_shows_the_phone_leg() -> None:
    call = bridge(Shape.OUT)
    assert call.status() is Status.IDLE
    call.handle(LegRinging(PHONE), T0 + 1)
    call.handle(LegRinging(PHONE), T0 + 1.5)  # 180 then 183: still ringing
    assert call.status() is Status.RING
    call.handle(LegAnswered(PHONE), T0 + 2)
    assert call.status() is Status.HOOKOFF


def test_a_phone_calling_an_app_shows_the_app_leg() -> None:
    call = bridge(Shape.IN)
    assert call.status() is Status.P2P_IDLE
    assert call.handle(LegRinging(CALLEE), T0 + 1) == [Ring(PHONE)]
    assert call.handle(LegRinging(CALLEE), T0 + 1) == []  # one 180 is enough
    call.handle(LegAnswered(CALLEE), T0 + 2)
    assert call.status() is Status.P2P_HOOKOFF


def test_the_first_end_wins_and_releases_once() -> None:
    call = bridge(Shape.CALLBACK)
    call.handle(LegAnswered(LOCAL), T0 + 1)
    assert call.handle(Release("hangup"), T0 + 2) == [
        Hangup(LOCAL, "hangup"),
        Hangup(REMOTE, "hangup"),
        Released("hangup"),
    ]
    assert call.handle(Release("later"), T0 + 3) == []
    with pytest.raises(Refused):
        call.handle(LegEnded(LOCAL, "bye"), T0 + 3)
    assert call.end_reason == "hangup"
    assert (call.leg_state(LOCAL), call.leg_state(REMOTE)) == (LegState.RELEASE,) * 2


def test_a_callback_caps_by_both_answered_legs() -> None:
    call = bridge(Shape.CALLBACK)
    assert Cap(1) in call.handle(LegAnswered(LOCAL), T0 + 1)
    assert call.handle(LegAnswered(REMOTE), T0 + 2) == [OpenRecord(REMOTE), Cap(2)]


# fallback


def test_fallback_counts_from_the_start_without_rtp() -> None:
    call = bridge(Shape.P2P)
    assert call.next_deadline() == T0 + 5
    assert call.due(T0 + 4.9) == [WatchMedia(CALLER)]
    assert call.due(T0 + 5) == [WatchMedia(CALLER), Uninvite(), Dial(PHONE)]
    assert call.fell_back and call.status() is Status.IDLE
    assert call.legs[CALLEE].state is LegState.RELEASE


def test_fallback_counts_from_the_first_rtp_packet() -> None:
    call = bridge(Shape.P2P)
    call.handle(MediaSeen(CALLER), T0 + 2)
    assert not call.watching_media()
    assert call.next_deadline() == T0 + 7
    assert call.due(T0 + 6) == []
    assert call.due(T0 + 7) == [Uninvite(), Dial(PHONE)]


def test_an_unreachable_app_falls_back_at_once_and_an_unreachable_callee_ends_an_inbound_call() -> (
    None
):
    p2p = bridge(Shape.P2P)
    assert p2p.handle(Unreachable(CALLEE), T0) == [Uninvite(), Dial(PHONE)]
    inbound = bridge(Shape.IN)
    assert inbound.handle(Unreachable(CALLEE), T0) == [
        Hangup(PHONE, "callee_unreachable"),
        Released("callee_unreachable"),
    ]


def test_after_the_fallback_the_apps_late_words_are_refused() -> None:
    # original-behavior §12 rows 19 and 20: a late answer or reject must not touch the call.
    call = bridge(Shape.P2P)
    call.due(T0 + 5)
    for late in (LegRinging(CALLEE), LegAnswered(CALLEE), LegEnded(CALLEE, "rejected")):
        with pytest.raises(Refused) as refused:
            call.handle(late, T0 + 6)
        assert refused.value.reason == "already_call_real_phone"
    assert not call.ended
    call.handle(LegAnswered(PHONE), T0 + 8)
    assert call.status() is Status.HOOKOFF


def test_ringing_stops_the_fallback_and_the_ring_timeout_ends_the_call() -> None:
    call = bridge(Shape.P2P)
    call.handle(LegRinging(CALLEE), T0 + 1)
    assert call.next_deadline() == T0 + 30  # the caller's keep-alive comes first
    call.handle(StatusRead(CALLER), T0 + 29)
    call.handle(StatusRead(CALLER), T0 + 58)
    assert call.next_deadline() == T0 + 60
    assert call.due(T0 + 60) == [Released("ring_timeout")]


# keep-alive


def test_a_silent_app_is_checked_in_the_relay_before_it_is_ended() -> None:
    call = bridge(Shape.P2P)
    call.handle(LegAnswered(CALLEE), T0 + 1)
    assert call.due(T0 + 30) == [CheckMedia(CALLER)]
    assert call.due(T0 + 30.5) == []  # one question at a time
    call.handle(MediaSeen(CALLER), T0 + 31)
    assert call.next_deadline() == T0 + 31  # the callee's keep-alive, from its answer
    assert call.due(T0 + 31) == [CheckMedia(CALLEE)]
    assert call.handle(MediaSilent(CALLEE), T0 + 32) == [Released("keepalive_timeout_callee")]


def test_a_status_read_while_the_relay_is_asked_keeps_the_leg() -> None:
    call = bridge(Shape.OUT)
    assert call.due(T0 + 30) == [CheckMedia(CALLER)]
    call.handle(StatusRead(CALLER), T0 + 30.1)
    assert call.handle(MediaSilent(CALLER), T0 + 30.2) == []
    assert not call.ended


def test_a_callback_needs_no_keep_alive_and_ends_at_its_longest() -> None:
    call = bridge(Shape.CALLBACK, Timing(max_s=3600))
    call.handle(LegAnswered(LOCAL), T0 + 1)
    call.handle(LegAnswered(REMOTE), T0 + 2)
    assert call.next_deadline() == T0 + 3600
    assert call.due(T0 + 3599) == []
    assert call.due(T0 + 3600) == [
        Hangup(LOCAL, "max_duration"),
        Hangup(REMOTE, "max_duration"),
        Released("max_duration"),
    ]


# talk-time cap


def test_a_capped_call_is_warned_then_ended_inside_its_last_paid_minute() -> None:
    call = bridge(Shape.OUT, Timing(keepalive_s=1000, warning_s=60))
    call.handle(LegAnswered(PHONE), T0)
    call.handle(Capped(180), T0)
    end = T0 + 180 - CAP_MARGIN_S
    assert call.next_deadline() == end - 60
    assert call.due(end - 60) == [Warn(60)]
    call.handle(StatusRead(CALLER), end - 1)
    assert call.due(end - 1) == []
    assert call.due(end) == [Hangup(PHONE, "balance_exhausted"), Released("balance_exhausted")]


def test_a_cap_shorter_than_the_warning_just_ends_the_call() -> None:
    call = bridge(Shape.OUT, Timing(keepalive_s=1000, warning_s=60))
    call.handle(LegAnswered(PHONE), T0)
    call.handle(Capped(30), T0)
    assert call.warn_at is None
    assert call.next_deadline() == T0 + 30 - CAP_MARGIN_S


def test_a_call_granted_part_of_its_balance_asks_again_before_the_grant_ends() -> None:
    call = bridge(Shape.OUT, Timing(keepalive_s=1000, warning_s=60))
    assert call.handle(LegAnswered(PHONE), T0) == [OpenRecord(PHONE), Cap(1)]
    call.handle(Capped(300, final=False), T0 + 1)
    ask = T0 + 300 - CAP_MARGIN_S - REGRANT_LEAD_S
    assert call.warn_at is None and call.next_deadline() == ask
    assert call.due(ask - 1) == []
    assert call.due(ask) == [Cap(1, 300)]
    assert call.due(ask + 1) == []  # asked once
    call.handle(StatusRead(CALLER), ask + 2)
    call.handle(Capped(420, final=True), ask + 2)  # the last two minutes the balance pays
    end = T0 + 420 - CAP_MARGIN_S
    assert call.next_deadline() == end - 60
    assert call.due(end - 60) == [Warn(60)]
    assert call.due(end) == [Hangup(PHONE, "balance_exhausted"), Released("balance_exhausted")]


def test_a_grant_that_never_comes_back_ends_the_call_at_the_last_one() -> None:
    call = bridge(Shape.OUT, Timing(keepalive_s=1000, warning_s=60))
    call.handle(LegAnswered(PHONE), T0)
    call.handle(Capped(300, final=False), T0)
    assert call.due(T0 + 300 - CAP_MARGIN_S - REGRANT_LEAD_S) == [Cap(1, 300)]
    end = T0 + 300 - CAP_MARGIN_S  # the database did not answer
    assert call.next_deadline() == end
    assert call.due(end) == [Hangup(PHONE, "balance_exhausted"), Released("balance_exhausted")]


def test_a_callbacks_second_answer_starts_its_grants_again() -> None:
    call = bridge(Shape.CALLBACK, Timing(keepalive_s=1000, max_s=None))
    call.handle(LegAnswered(LOCAL), T0)
    call.handle(Capped(300, final=False), T0)
    assert call.handle(LegAnswered(REMOTE), T0 + 10) == [OpenRecord(REMOTE), Cap(2)]


# properties

_events = st.sampled_from(
    [LegRinging(r) for r in (CALLEE, PHONE, LOCAL, REMOTE)]
    + [LegAnswered(r) for r in (CALLEE, PHONE, LOCAL, REMOTE)]
    + [LegEnded(r, "bye") for r in (CALLER, CALLEE, PHONE, LOCAL, REMOTE)]
    + [Unreachable(CALLEE), MediaSeen(CALLER), StatusRead(CALLER), StatusRead(CALLEE)]
    + [MediaSilent(CALLER), Capped(120), Capped(300, final=False), Release("hangup")]
)
_steps = st.lists(st.tuples(_events, st.floats(0, 200)), max_size=12)


@settings(max_examples=400, deadline=None)
@given(shape=st.sampled_from(list(Shape)), steps=_steps)
def test_any_history_releases_once_and_legs_never_go_back(
    shape: Shape, steps: list[tuple[Event, float]]
) -> None:
    call = bridge(shape)
    order = list(LegState)
    released = 0
    now = T0
    for event, gap in steps:
        now += gap
        before = {role: leg.state for role, leg in call.legs.items()}
        actions: list[Action] = []
        try:
            actions += call.handle(event, now)
        except Refused:
            pass
        actions += call.due(now)
        released += sum(isinstance(action, Released) for action in actions)
        for role, state in before.items():
            assert order.index(call.legs[role].state) >= order.index(state)
        assert (
            not any(isinstance(a, Dial) for a in actions)
            or not call.ended
            or any(isinstance(a, Released) for a in actions)
        )
    assert released == (1 if call.ended else 0)
    if shape is not Shape.CALLBACK:  # a callback has no app to show a status to
        assert (call.status() is Status.RELEASE) is call.ended


_moments = st.floats(0, 400, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    shape=st.sampled_from(list(Shape)),
    ringing=st.booleans(),
    answered=st.booleans(),
    media_at=st.none() | _moments,
    reads=st.lists(st.tuples(st.sampled_from([CALLER, CALLEE]), _moments), max_size=4),
    cap=st.none() | st.floats(0, 400),
    probes=st.lists(_moments, max_size=20),
)
def test_nothing_is_due_before_the_next_deadline_and_something_is_at_it(
    shape: Shape,
    ringing: bool,
    answered: bool,
    media_at: float | None,
    reads: list[tuple[str, float]],
    cap: float | None,
    probes: list[float],
) -> None:
    # The ticker skips a call until its next deadline: it must never skip something due.
    call = bridge(shape, Timing(fallback_s=5, ring_timeout_s=60, keepalive_s=30, warning_s=60,
                                max_s=300 if shape is Shape.CALLBACK else None))  # fmt: skip
    other = next(role for role, _ in SHAPES[shape] if role != CALLER)
    if ringing:
        call.handle(LegRinging(other), T0)
    if answered:
        call.handle(LegAnswered(other), T0)
    if media_at is not None:
        call.media_at = T0 + media_at
    for role, at in reads:
        if role in call.legs:
            call.handle(StatusRead(role), T0 + at)
    if cap is not None:
        call.handle(Capped(cap), T0)
    deadline = call.next_deadline()

    def due(now: float) -> bool:
        probe = copy.deepcopy(call)  # probing must change nothing
        return any(not isinstance(action, WatchMedia) for action in probe.due(now))

    assert deadline is not None
    assert due(deadline)
    assert not any(due(t) for t in probes if t < deadline)


def test_the_cap_counts_from_the_answer_however_late_the_balance_answers() -> None:
    call = bridge(Shape.OUT, Timing(keepalive_s=1000, warning_s=60))
    call.handle(LegAnswered(PHONE), T0)
    call.handle(Capped(180), T0 + 5)  # the database was slow
    assert call.cap_at == T0 + 180 - CAP_MARGIN_S


def test_the_app_a_phone_called_is_kept_alive_once_it_answered() -> None:
    call = bridge(Shape.IN)
    assert call.next_deadline() == T0 + 60  # ringing: only the ring timeout
    call.handle(LegAnswered(CALLEE), T0 + 10)
    assert call.next_deadline() == T0 + 40
    assert call.due(T0 + 40) == [CheckMedia(CALLEE)]
    assert call.handle(MediaSilent(CALLEE), T0 + 41) == [
        Hangup(PHONE, "keepalive_timeout_callee"),
        Released("keepalive_timeout_callee"),
    ]
