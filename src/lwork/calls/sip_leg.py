"""The bridge from a SIP leg's callbacks to the call it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lwork.calls.model import Ended, TrunkAnswered, TrunkRinging

if TYPE_CHECKING:
    from lwork.calls.active import Active
    from lwork.calls.service import CallService


class CallLegListener:
    """Receives the trunk's callbacks (on the event loop) and hands them to the call service."""

    def __init__(self, service: CallService, active: Active) -> None:
        self._service = service
        self._active = active

    def ringing(self, early_sdp: str | None) -> None:
        self._service.trunk_event(self._active, TrunkRinging(), early_sdp)

    def answered(self, sdp: str) -> None:
        self._service.trunk_event(self._active, TrunkAnswered(), sdp)

    def failed(self, code: int, reason: str) -> None:
        self._service.trunk_event(self._active, Ended(f"sip_{code}"), None)

    def ended(self, reason: str) -> None:
        self._service.trunk_event(self._active, Ended(reason), None)
