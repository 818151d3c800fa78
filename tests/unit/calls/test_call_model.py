"""The call state machine and its timers, driven with time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.calls.model import (
    CAP_MARGIN_S,
    TRANSITIONS,
    Call,
    CalleeAnswered,
    CalleeRejected,
    CalleeRinging,
    Ended,
    Event,
    FallbackStarted,
    IllegalTransition,
    Status,
    TalkTimeWarning,
    Timing,
    TrunkAnswered,
    TrunkRinging,
)
from lwork.calls.quality import LABELS, level, total_eval

TIMING = Timing(fallback_s=5, ring_timeout_s=60, keepalive_s=60)
EVENTS: list[Event] = [CalleeRinging(), CalleeAnswered(), CalleeRejected(), FallbackStarted(),
                       TrunkRinging(), TrunkAnswered(), TalkTimeWarning(60),
                       Ended("x")]  # fmt: skip


def p2p_call(now: float = 100.0) -> Call:
    return Call("n1@@" + "a" * 32, "1380", "1390", "1390", True, now, TIMING)


def test_every_cell_of_the_table() -> None:
    for status in Status:
        for event in EVENTS:
            call = p2p_call()
            call.status = status
            expected = TRANSITIONS[status].get(type(event))
            if expected is None:
                with pytest.raises(IllegalTransition):
                    call.apply(event, 101.0)
                assert call.status is status
            else:
                assert call.apply(event, 101.0) is expected


def test_happy_p2p_path_records_history() -> None:
    call = p2p_call()
    call.apply(CalleeRinging(), 101)
    call.apply(CalleeAnswered(), 102)
    call.apply(Ended("hangup_caller"), 130)
    assert [s for _, s in call.history] == ["p2p_idle", "p2p_ring", "p2p_hookoff", "release"]
    assert call.end_reason == "hangup_caller"


def test_phone_call_starts_idle_and_rings_through_the_trunk() -> None:
    call = Call("sid", "1380", "02112345678", None, False, 0.0, TIMING)
    assert call.status is Status.IDLE
    call.apply(TrunkRinging(), 1)
    call.apply(TrunkAnswered(), 2)
    assert call.status is Status.HOOKOFF
    with pytest.raises(IllegalTransition):
        call.apply(CalleeRinging(), 3)


def test_a_capped_call_is_warned_then_ended_inside_its_last_paid_minute() -> None:
    call = Call("sid", "1380", "02112345678", None, False, 0.0, TIMING)
    call.apply(TrunkAnswered(), 10.0)
    call.cap_talk(10.0, 180.0, 60.0)  # the balance pays 3 minutes
    call.caller_alive_at = 200.0  # the app keeps polling
    end = 10.0 + 180.0 - CAP_MARGIN_S
    assert call.next_deadline() == end - 60.0
    assert call.due_events(end - 60.1) == []
    [warning] = call.due_events(end - 60.0)
    assert warning == TalkTimeWarning(60.0)
    call.apply(warning, end - 59.9)
    assert call.status is Status.HOOKOFF and call.due_events(end - 1) == []
    assert call.next_deadline() == end
    assert call.due_events(end) == [Ended("balance_exhausted")]


def test_a_cap_shorter_than_the_warning_just_ends_the_call() -> None:
    call = Call("sid", "1380", "02112345678", None, False, 0.0, TIMING)
    call.apply(TrunkAnswered(), 0.0)
    call.cap_talk(0.0, 30.0, 60.0)
    assert call.warn_at is None
    assert call.due_events(30.0 - CAP_MARGIN_S) == [Ended("balance_exhausted")]


def test_fallback_counts_from_the_start_without_rtp() -> None:
    call = p2p_call(now=100.0)
    assert call.due_events(104.9) == []
    assert call.due_events(105.0) == [FallbackStarted()]
    call.apply(FallbackStarted(), 105.0)
    assert call.fell_back and call.status is Status.IDLE
    assert call.due_events(200.0) == []


def test_fallback_counts_from_the_first_rtp_packet() -> None:
    call = p2p_call(now=100.0)
    call.first_rtp_at = 103.0
    assert call.due_events(107.9) == []
    assert call.due_events(108.0) == [FallbackStarted()]


def test_ringing_cancels_the_fallback_and_the_ring_timeout_ends_the_call() -> None:
    call = p2p_call(now=100.0)
    call.apply(CalleeRinging(), 101.0)
    assert call.due_events(110.0) == []
    assert call.due_events(160.0) == [Ended("ring_timeout")]


def test_silent_legs() -> None:
    call = p2p_call(now=0.0)
    assert call.silent_legs(59.0) == []
    assert call.silent_legs(60.0) == ["caller"]
    call.caller_alive_at = 50.0
    call.callee_sid = "callee"
    call.apply(CalleeAnswered(), 55.0)
    assert call.silent_legs(109.0) == []
    assert call.silent_legs(115.0) == ["caller", "callee"]


@pytest.mark.parametrize(
    ("value", "thresholds", "expected"),
    [
        (0.0, (0.0, 0.03), 0),
        (0.01, (0.0, 0.03), 1),
        (0.03, (0.0, 0.03), 1),
        (0.031, (0.0, 0.03), 2),
    ],
)
def test_level_counts_thresholds_exceeded(
    value: float, thresholds: tuple[float, ...], expected: int
) -> None:
    assert level(value, thresholds) == expected


def test_total_eval_is_the_worst_metric() -> None:
    assert total_eval(5, 5, 30, 0.0, 0.0) == LABELS[0]
    assert total_eval(25, 5, 30, 0.0, 0.0) == LABELS[1]
    assert total_eval(5, 5, 600, 0.0, 0.0) == LABELS[4]
    assert total_eval(5, 5, 30, 0.2, 0.0) == LABELS[5]
    assert total_eval(5, 160, 30, 0.0, 0.0) == LABELS[5]


_moments = st.floats(0, 400, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(list(Status)),
    inbound=st.booleans(),
    first_rtp=st.none() | _moments,
    caller_alive=_moments,
    callee=st.none() | _moments,
    cap=st.none() | st.tuples(_moments, st.floats(0, 400), st.floats(0, 120)),
    probes=st.lists(_moments, max_size=20),
)
def test_nothing_is_due_before_the_next_deadline_and_something_is_at_it(
    status: Status,
    inbound: bool,
    first_rtp: float | None,
    caller_alive: float,
    callee: float | None,
    cap: tuple[float, float, float] | None,
    probes: list[float],
) -> None:
    # The ticker skips a call until its next deadline: it must never skip something due.
    call = p2p_call(now=10.0)
    call.status, call.inbound, call.first_rtp_at = status, inbound, first_rtp
    call.caller_alive_at = caller_alive
    if callee is not None:
        call.callee_sid, call.callee_alive_at = "callee", callee
    if cap is not None:
        call.cap_talk(*cap)
    deadline = call.next_deadline()

    def due(now: float) -> bool:
        # An ended call has left the service, whatever its legs' silence.
        return bool(call.due_events(now) or (not call.ended and call.silent_legs(now)))

    if deadline is None:
        assert not any(due(t) for t in [*probes, 1e9])
        return
    assert due(deadline)
    assert not any(due(t) for t in probes if t < deadline)
