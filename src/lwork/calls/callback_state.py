"""A callback's state, pure: the status of each of its two SIP legs and why it ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

LOCAL = "local"
REMOTE = "remote"


class LegStatus(enum.StrEnum):
    IDLE = "idle"
    RING = "ring"
    HOOKOFF = "hookoff"
    RELEASE = "release"


@dataclass
class Callback:
    """One callback's state, pure: the status of each SIP leg and why it ended."""

    sid: str
    owner: str
    local_number: str
    remote_number: str
    caller_id: str
    legs: dict[str, LegStatus] = field(
        default_factory=lambda: {LOCAL: LegStatus.IDLE, REMOTE: LegStatus.IDLE}
    )
    end_reason: str = ""

    @property
    def ended(self) -> bool:
        return bool(self.end_reason)

    def ringing(self, role: str) -> None:
        if not self.ended and self.legs[role] is LegStatus.IDLE:
            self.legs[role] = LegStatus.RING

    def answered(self, role: str) -> bool:
        """Mark ``role`` answered; False when that can no longer happen (ended, answered)."""
        if self.ended or self.legs[role] in (LegStatus.HOOKOFF, LegStatus.RELEASE):
            return False
        self.legs[role] = LegStatus.HOOKOFF
        return True

    def end(self, reason: str) -> bool:
        """Release both legs; False when it had already ended (the first reason stays)."""
        if self.ended:
            return False
        self.end_reason = reason or "ended"
        self.legs = {LOCAL: LegStatus.RELEASE, REMOTE: LegStatus.RELEASE}
        return True
