"""MOS estimate from network metrics with the ITU-T G.107 E-model, simplified.

Model: R = R0 - Id - Ie,eff with R0 = 93.2 (default G.107 basic signal-to-noise), the delay
impairment Id of Cole & Rosenbluth (2001) as a piecewise-linear fit of G.107's Id, and the
packet-loss impairment Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl) of G.107 §7 with
BurstR = 1 (random loss). Codec constants for AMR-NB 12.2 kbit/s are taken from ITU-T G.113
Appendix I (Ie = 5, Bpl = 10). R maps to MOS-CQE with G.107 Annex B.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_NAME = "ITU-T G.107 E-model (simplified; Cole-Rosenbluth Id; G.113 AMR-NB 12.2 Ie/Bpl)"


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """Equipment impairment factor and packet-loss robustness of a codec."""

    ie: float
    bpl: float
    frame_ms: float


AMR_NB_12_2 = CodecImpairment(ie=5.0, bpl=10.0, frame_ms=20.0)
G711 = CodecImpairment(ie=0.0, bpl=25.1, frame_ms=20.0)


def one_way_delay_ms(rtt_ms: float | None, jitter_ms: float, codec: CodecImpairment) -> float:
    """Mouth-to-ear delay estimate: half the RTT, a jitter buffer of 2x jitter, one frame."""
    network = rtt_ms / 2.0 if rtt_ms is not None else 0.0
    return network + 2.0 * jitter_ms + codec.frame_ms


def r_factor(delay_ms: float, loss_fraction: float, codec: CodecImpairment) -> float:
    """Transmission rating R for a one-way delay and a packet-loss fraction (0..1)."""
    delay_ms = max(0.0, delay_ms)
    idd = 0.024 * delay_ms
    if delay_ms > 177.3:
        idd += 0.11 * (delay_ms - 177.3)
    ppl = 100.0 * min(1.0, max(0.0, loss_fraction))
    ie_eff = codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl)
    return 93.2 - idd - ie_eff


def mos_from_r(r: float) -> float:
    """G.107 Annex B: R to MOS-CQE, clamped to 1..4.5."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return min(4.5, max(1.0, 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)))


def estimate_mos(
    rtt_ms: float | None,
    jitter_ms: float,
    loss_fraction: float,
    codec: CodecImpairment = AMR_NB_12_2,
) -> float:
    """MOS (1..4.5) for the given RTT, interarrival jitter and loss."""
    delay = one_way_delay_ms(rtt_ms, jitter_ms, codec)
    return mos_from_r(r_factor(delay, loss_fraction, codec))


def rating(mos: float) -> str:
    """A coarse label for dashboards (`total_eval` in lwork's call status)."""
    if mos >= 4.0:
        return "excellent"
    if mos >= 3.6:
        return "good"
    if mos >= 3.1:
        return "fair"
    if mos >= 2.6:
        return "poor"
    return "bad"
