"""The ``stats`` object of a call status (CONTRACT §6.1), from the relay's per-leg measurements.

``total_eval`` is the original server's rating: for each metric, count the thresholds it exceeds
(``original-behavior.md`` §8); the worst metric names the call's rating.

The built-in relay measures every figure itself (RFC 3550, on what it receives). rtpengine
measures none from RTP: it reports, per SSRC, what each phone said in RTCP about the stream it
receives. So with rtpengine a party's upstream figures (``pl``, ``avgIJ``, ``jitter``,
``lostrate``, ``mos``) are what its peer reported about its stream, end to end; its ``down_*``
and round trip are what it reported itself. A figure nobody reported is left out, and
``missing`` lists the names left out (a phone that sends no RTCP leaves only ``ip`` and ``pr``).
"""

from __future__ import annotations

from typing import Any

from lwork.media.ng.results import CallStats, LegInfo, RtcpFigures, SsrcInfo

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


FIELDS = ("ip", "pr", "pl", "avgIJ", "jitter", "avgrttms", "rttms", "lostrate", "down_jitter",
          "down_lostrate", "mos", "total_eval")  # fmt: skip
"""The figures of CONTRACT §6.1, in its order."""


def party_stats(stats: CallStats | None, role: str) -> dict[str, Any]:
    """Stats of party ``role`` from whichever relay answered."""
    leg = stats.legs.get(role) if stats is not None else None
    if stats is None or leg is None:
        return {}
    if leg.quality is not None:
        return leg_stats(leg)
    return reported_stats(stats, leg)


def reported_stats(stats: CallStats, leg: LegInfo) -> dict[str, Any]:
    """Stats from a relay that measures no quality itself (rtpengine): its packet counts and
    the phones' RTCP reports, with ``missing`` naming what neither gave."""
    rtp = leg.rtp
    if rtp is None or rtp.packets == 0:
        return {}
    peer = stats.legs.get(leg.in_dialogue_with)
    own = _ssrc(stats, leg)  # this party's reports: the stream it receives
    theirs = _ssrc(stats, peer) if peer is not None else None  # its peer's: this party's stream
    up, up_avg = _figures(theirs)
    down, down_avg = _figures(own)
    values: dict[str, Any] = {
        "ip": rtp.endpoint[0] if rtp.endpoint else None,
        "pr": rtp.packets,
        "pl": theirs.reported_loss if theirs is not None else None,
        "avgIJ": _round(up_avg.jitter_ms),
        "jitter": _round(up.jitter_ms),
        # a round trip is the same both ways: the peer's report stands in for a silent party's
        "avgrttms": _round(_first(down_avg.rtt_ms, up_avg.rtt_ms)),
        "rttms": _round(_first(down.rtt_ms, up.rtt_ms)),
        "lostrate": _round(up.loss),
        "down_jitter": _round(down.jitter_ms),
        "down_lostrate": _round(down.loss),
        "mos": _round(up.mos),
    }
    quality = (up.jitter_ms, down.jitter_ms, _first(down.rtt_ms, up.rtt_ms), up.loss, down.loss)
    if any(value is not None for value in quality):
        values["total_eval"] = total_eval(*(value or 0.0 for value in quality))
    found = {name: values[name] for name in FIELDS if values.get(name) is not None}
    missing = [name for name in FIELDS if name not in found]
    return {**found, "missing": missing} if missing else found


def reported_quality(stats: CallStats | None, tag: str) -> RtcpFigures:
    """The averages of what the phones reported in RTCP about party ``tag``'s stream, from a
    relay that measures none itself (rtpengine): loss, jitter and MOS as its peer received
    it, the round trip from its own reports else its peer's. All None: nobody reported."""
    leg = stats.legs.get(tag) if stats is not None else None
    if stats is None or leg is None:
        return _NONE
    peer = stats.legs.get(leg.in_dialogue_with)
    _, up = _figures(_ssrc(stats, peer) if peer is not None else None)
    _, down = _figures(_ssrc(stats, leg))
    return RtcpFigures(mos=up.mos, rtt_ms=_first(down.rtt_ms, up.rtt_ms),
                       jitter_ms=up.jitter_ms, loss=up.loss)  # fmt: skip


_NONE = RtcpFigures(mos=None, rtt_ms=None, jitter_ms=None, loss=None)


def _ssrc(stats: CallStats, leg: LegInfo) -> SsrcInfo | None:
    ssrc = leg.rtp.ssrc if leg.rtp is not None else None
    return stats.ssrcs.get(ssrc) if ssrc is not None else None


def _figures(entry: SsrcInfo | None) -> tuple[RtcpFigures, RtcpFigures]:
    """The latest and the average report of an SSRC (nothing known: all None)."""
    if entry is None:
        return _NONE, _NONE
    return entry.latest or _NONE, entry.average or _NONE


def _first(value: float | None, otherwise: float | None) -> float | None:
    return value if value is not None else otherwise


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def leg_stats(leg: LegInfo | None) -> dict[str, Any]:
    """Stats of one party's leg: what the relay receives from it, and what it reports back.

    Empty until media has flowed, and from a relay that measures nothing itself (rtpengine:
    ``reported_stats``)."""
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
