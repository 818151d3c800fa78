"""The pure state of a callback: leg statuses and the end reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lwork.calls.callback import placeholder_offer
from lwork.calls.callback_state import LOCAL, REMOTE, Callback, LegStatus
from lwork.media.sdp_min import parse_sdp


def new() -> Callback:
    return Callback("n1@@" + "0" * 32, "13800000001", "02079460001", "02079460002", "13800000001")


def test_a_callback_rings_local_then_remote() -> None:
    callback = new()
    assert callback.legs == {LOCAL: LegStatus.IDLE, REMOTE: LegStatus.IDLE}
    callback.ringing(LOCAL)
    assert callback.legs[LOCAL] is LegStatus.RING
    assert callback.answered(LOCAL)
    assert not callback.answered(LOCAL)  # a retransmitted 200 changes nothing
    callback.ringing(LOCAL)
    assert callback.legs[LOCAL] is LegStatus.HOOKOFF
    assert callback.answered(REMOTE)  # answered without ringing first
    assert callback.legs == {LOCAL: LegStatus.HOOKOFF, REMOTE: LegStatus.HOOKOFF}
    assert not callback.ended


def test_the_first_end_wins_and_releases_both_legs() -> None:
    callback = new()
    callback.ringing(LOCAL)
    assert callback.end("local_sip_486")
    assert not callback.end("hangup")
    assert callback.end_reason == "local_sip_486"
    assert callback.legs == {LOCAL: LegStatus.RELEASE, REMOTE: LegStatus.RELEASE}
    assert not callback.answered(REMOTE)
    callback.ringing(REMOTE)
    assert callback.legs[REMOTE] is LegStatus.RELEASE


EVENTS = st.lists(
    st.tuples(st.sampled_from(["ringing", "answered", "end"]), st.sampled_from([LOCAL, REMOTE])),
    max_size=12,
)


@given(EVENTS)
def test_any_event_order_keeps_the_statuses_consistent(events: list[tuple[str, str]]) -> None:
    callback = new()
    for kind, role in events:
        before = dict(callback.legs)
        if kind == "ringing":
            callback.ringing(role)
        elif kind == "answered":
            callback.answered(role)
        else:
            callback.end(f"{role}_bye")
        order = list(LegStatus)
        for leg in (LOCAL, REMOTE):  # a leg never goes back
            assert order.index(callback.legs[leg]) >= order.index(before[leg])
        released = {callback.legs[LOCAL], callback.legs[REMOTE]} == {LegStatus.RELEASE}
        assert callback.ended == released


def test_the_placeholder_offer_names_no_address_and_the_discard_port() -> None:
    media = parse_sdp(placeholder_offer())
    assert (media.ip, media.port) == ("0.0.0.0", 9)
    assert media.payload_types[:2] == (8, 0)  # G.711 first: both parties are phones
