"""The ``stats`` object of a call status (CONTRACT §6.1), from the relay's per-leg measurements.

``total_eval`` is the original server's rating: for each metric, count the thresholds it exceeds
(``original-behavior.md`` §8); the worst metric names the call's rating.
"""

from __future__ import annotations

from typing import Any

from lwork.media.ng_results import LegInfo

LABELS = ("优", "良", "中", "差", "很差", "极差")  # excellent, good, fair, poor, bad, terrible
JITTER_MS = (20.0, 50.0, 80.0, 100.0, 150.0)
RTT_MS = (50.0, 200.0, 350.0, 500.0, 1500.0)
LOSS = (0.0, 0.03, 0.06, 0.09, 0.12)


def level(value: float, thresholds: tuple[float, ...]) -> int:
    return sum(1 for threshold in thresholds if value > threshold)


def total_eval(
    jitter_ms: float, down_jitter_ms: float, rtt_ms: float, loss: float, down_loss: float
) -> str:
    worst = max(
        level(jitter_ms, JITTER_MS),
        level(down_jitter_ms, JITTER_MS),
        level(rtt_ms, RTT_MS),
        level(loss, LOSS),
        level(down_loss, LOSS),
    )
    return LABELS[worst]


def leg_stats(leg: LegInfo | None) -> dict[str, Any]:
    """Stats of one party's leg: what the relay receives from it, and what it reports back.

    Empty until media has flowed, and from a relay that measures nothing itself (rtpengine)."""
    quality = leg.quality if leg is not None else None
    if leg is None or quality is None or quality.packets_received == 0:
        return {}
    endpoint = leg.rtp.endpoint if leg.rtp is not None else None
    rtt = quality.rtt_ms or 0.0
    down_jitter = quality.remote_jitter_ms or 0.0
    down_loss = quality.remote_loss or 0.0
    return {
        "ip": endpoint[0] if endpoint else "",
        "pr": quality.packets_received,
        "pl": max(0, quality.packets_lost),
        "avgIJ": round(quality.average_jitter_ms, 2),
        "jitter": round(quality.jitter_ms, 2),
        "avgrttms": round(quality.average_rtt_ms or 0.0, 2),
        "rttms": round(rtt, 2),
        "lostrate": round(quality.interval_loss, 2),
        "down_jitter": round(down_jitter, 2),
        "down_lostrate": round(down_loss, 2),
        "mos": round(quality.mos, 2),
        "total_eval": total_eval(
            quality.jitter_ms, down_jitter, rtt, quality.interval_loss, down_loss
        ),
    }
