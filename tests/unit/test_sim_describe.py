"""The simulator's status line: what the relay does not report is shown as unknown."""

from __future__ import annotations

from lwork.sim.phone import describe


def test_a_status_through_rtpengine_without_some_figures_is_described() -> None:
    # rtpengine's `query` gives no packet loss count nor RTT (CONTRACT's names are absent)
    line = describe({"peer_status": "p2p_hookoff", "stats": {"pr": 50, "jitter": 2}})
    assert "pr=50" in line and "pl=?" in line and "rtt=?ms" in line


def test_a_full_status_is_described() -> None:
    stats = {"pr": 50, "pl": 0, "jitter": 2, "rttms": 1, "lostrate": 0.0, "mos": 4.4,
             "total_eval": "good"}  # fmt: skip
    line = describe({"peer_status": "p2p_hookoff", "stats": stats})
    assert "pl=0" in line and "mos=4.4" in line and "good" in line
