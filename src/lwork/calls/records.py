"""Call records (CONTRACT §9), pure: what one call leg leaves, and how the BOSS reads it.

Theory of operation. Every leg leaves exactly one record, answered or not, in every direction
(``KINDS``). An answered leg's record is *opened* (inserted, without an end) when it answers,
with the SIP dialog needed to end it, and its heartbeat is refreshed while it lasts; it is
*closed* (end, billsec, charge, quality) when the leg ends. A leg that never answered is
written once, closed, at its end. A record left open by a node that died is closed by another
(or by the same node, restarted) at its last heartbeat: see ``recovery.py``.

Times are Unix seconds in storage; the BOSS sees ISO 8601 with the offset of
``billing.timezone``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from lwork.billing.rating import coins_value
from lwork.calls.quality import reported_quality
from lwork.media.ng.results import CallStats

KINDS = ("out", "in", "p2p", "callback_local", "callback_remote")
PAID_KINDS = {"out": "call", "callback_local": "callback", "callback_remote": "callback"}
"""Kinds that cost money, and the tariff each is rated by (app-to-app and inbound are free)."""

_SIP_REASON = re.compile(r"(?:^|_)sip_(\d{3})$")


@dataclass(frozen=True, slots=True)
class Quality:
    """The media quality of a leg at its end, as the relay measured it (None: not measured)."""

    mos: float | None = None
    loss: float | None = None
    jitter_ms: float | None = None
    rtt_ms: float | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One leg's record; ``ended_at`` None while it is open."""

    id: str
    account: str
    kind: str
    caller: str
    callee: str
    caller_id: str
    started_at: float
    answered_at: float | None
    ended_at: float | None
    end_reason: str = ""
    sip_status: int | None = None
    quality: Quality = Quality()
    node: str = ""
    carrier_codec: str | None = None
    """The codec of the leg to the carrier (``AMR``, ``PCMA``, ``PCMU``); None: no carrier leg
    or none agreed. The app's leg is always AMR."""
    dialog: str | None = None
    """JSON of the persisted SIP dialog (``lwork.sip.dialog_snapshot``), if the leg has one."""

    @property
    def tariff_kind(self) -> str | None:
        """The tariff this record is charged by; None: free."""
        return PAID_KINDS.get(self.kind)

    @property
    def billsec(self) -> int:
        if self.answered_at is None or self.ended_at is None:
            return 0
        return max(0, math.floor(round(self.ended_at - self.answered_at, 3)))


def sip_status(end_reason: str, answered: bool) -> int | None:
    """The leg's final SIP status: 200 once answered, else the failure code in its reason."""
    if answered:
        return 200
    match = _SIP_REASON.search(end_reason)
    if match is not None:
        return int(match.group(1))
    if end_reason.endswith("cancelled") or end_reason.startswith("hangup"):
        return 487
    return None


def leg_quality(stats: CallStats | None, tag: str) -> Quality:
    """What the relay measured of the media it received on ``tag``'s leg, or (rtpengine,
    which measures nothing itself) what the phones reported of it in RTCP; None if nothing."""
    leg = stats.legs.get(tag) if stats is not None else None
    if leg is not None and leg.quality is None:
        reported = reported_quality(stats, tag)
        return Quality(
            mos=_rounded(reported.mos),
            loss=_rounded(reported.loss, 4),
            jitter_ms=_rounded(reported.jitter_ms),
            rtt_ms=_rounded(reported.rtt_ms),
        )
    quality = leg.quality if leg is not None else None
    if quality is None or quality.packets_received == 0:
        return Quality()
    expected = max(quality.packets_expected, 1)
    return Quality(
        mos=round(quality.mos, 2),
        loss=round(max(0, quality.packets_lost) / expected, 4),
        jitter_ms=round(quality.average_jitter_ms, 2),
        rtt_ms=None if quality.average_rtt_ms is None else round(quality.average_rtt_ms, 2),
    )


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def iso(wall: float | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the zone's offset, to the second (``2026-12-04T18:00:05+08:00``)."""
    if wall is None:
        return None
    return dt.datetime.fromtimestamp(wall, zone).isoformat(timespec="seconds")


def boss_view(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A stored record as the BOSS reads it (CONTRACT §9 field names)."""
    return {
        "id": row["id"],
        "account": row["uuid"],
        "kind": row["kind"],
        "caller": row["caller"],
        "callee": row["callee"],
        "caller_id": row["caller_id"],
        "start": iso(row["started_at"], zone),
        "answer": iso(row["answered_at"], zone),
        "end": iso(row["ended_at"], zone),
        "billsec": row["billsec"],
        "minutes": row["minutes"],
        "charge": {
            "coins": coins_value(row["charge_coins"] or 0),
            "gift_coins": coins_value(row["charge_gift_coins"] or 0),
            "minutes": row["charge_minutes"] or 0,
            "forgiven": row["forgiven"] or 0,
        },
        "end_reason": row["end_reason"],
        "sip_status": row["sip_status"],
        "quality": {key: row[key] for key in ("mos", "loss", "jitter_ms", "rtt_ms")},
        "node": row["node"],
    }
