"""What each of ``http.workers`` runs with: its node, its relay ports, its SIP port."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.http.workers import Slot, check, parse_slot, port_slice, worker_settings
from lwork.settings import load_settings


@given(st.integers(1024, 60000), st.integers(4, 5000), st.integers(1, 16))
def test_relay_port_slices_are_disjoint_even_and_cover_no_more_than_the_range(
    low: int, span: int, count: int
) -> None:
    high = low + span
    try:
        slices = [port_slice(low, high, Slot(i, count)) for i in range(count)]
    except ValueError:
        assert (span + 1) // count < 4
        return
    for (_, a_high), (b_low, _) in zip(slices, slices[1:], strict=False):
        assert a_high < b_low
    for s_low, s_high in slices:
        assert low <= s_low < s_high <= high and (s_low - low) % 2 == 0
        assert s_high - s_low + 1 >= 4


def test_each_worker_is_a_node_with_its_own_ports_and_a_share_of_the_trunk() -> None:
    settings = load_settings(
        None,
        node="edge",
        http={"workers": 3},
        media={"port_min": 30000, "port_max": 30599},
        sip={"enabled": True, "listen_port": 5070, "registrar": "sbc:5060",
             "max_concurrent_calls": 100, "calls_per_second": 9.0},
        auth={"login_per_minute_per_ip": 10},
    )  # fmt: skip
    first, last = (worker_settings(settings, Slot(i, 3)) for i in (0, 2))
    assert (first.node, last.node) == ("edge-w0", "edge-w2")
    assert (first.media.port_min, first.media.port_max) == (30000, 30199)
    assert (last.media.port_min, last.media.port_max) == (30400, 30599)
    assert (first.sip.listen_port, last.sip.listen_port) == (5070, 5072)
    assert (first.sip.registrar, last.sip.registrar) == ("sbc:5060", "")
    assert last.sip.max_concurrent_calls == 33 and last.sip.calls_per_second == 3.0
    # the rate limits are shared among the workers: each holds the whole machine's limit...
    assert last.auth.login_per_minute_per_ip == 10
    # ...unless sharing is off: then each counts a third, 3 workers x 4 = 12 at most, not 30
    alone = settings.model_copy(update={"http": settings.http.model_copy(
        update={"shared_limits": False})})  # fmt: skip
    assert worker_settings(alone, Slot(2, 3)).auth.login_per_minute_per_ip == 4
    shared = load_settings(None, http={"workers": 2}, media={"ng_url": "udp://10.0.0.9:2223"})
    assert worker_settings(shared, Slot(1, 2)).media == shared.media


def test_settings_no_worker_could_run_with_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="too few ports"):
        check(load_settings(None, http={"workers": 4}, media={"port_min": 30000,
                                                              "port_max": 30010}))  # fmt: skip
    with pytest.raises(ValueError):
        parse_slot("2/2")
    with pytest.raises(ValueError):
        load_settings(None, http={"workers": 0})
