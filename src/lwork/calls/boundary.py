"""The call engine's boundary: what it needs from the media relay and from the SIP trunk (the
protocols; the adapters live with the relay client and the trunk).

``NgClient`` (``lwork.media.ng.client``) is the media control; the SIP trunk places SIP legs
(``lwork.sip.trunk.wiring.TrunkLegs``). Without a trunk, ``NoTrunk`` refuses every SIP leg cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lwork.media.ng.client import CallStats, SdpResult


class MediaControl(Protocol):
    async def offer(self, call_id: str, from_tag: str, sdp: str) -> SdpResult: ...

    async def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> SdpResult: ...

    async def delete(self, call_id: str, from_tag: str | None = None) -> CallStats | None: ...

    async def forget(self, call_id: str) -> None: ...

    async def query(self, call_id: str, from_tag: str | None = None) -> CallStats: ...

    async def query_many(self, call_ids: Sequence[str]) -> dict[str, CallStats]: ...

    async def relay_address(self, call_id: str, tag: str) -> tuple[str, int]: ...

    async def play_dtmf(self, call_id: str, from_tag: str, digit: str) -> None: ...


class PhoneLegReports(Protocol):
    """How a SIP leg reports progress (plain callbacks, called on the event loop)."""

    def ringing(self, early_sdp: str | None) -> None: ...

    def answered(self, sdp: str) -> None: ...

    def failed(self, code: int, reason: str) -> None: ...

    def ended(self, reason: str) -> None: ...

    def media_moved(self, sdp: str) -> None: ...


class PhoneLeg(Protocol):
    @property
    def remote_sdp(self) -> str | None: ...

    def hangup(self) -> None: ...

    def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None: ...

    def persisted_dialog(self) -> str | None:
        """The answered dialog as JSON, to end it with BYE after a crash (None: no dialog)."""
        ...


class TrunkUnavailable(Exception):
    """No SIP leg can be placed (no trunk configured, or it refused at once)."""


class PhoneDialer(Protocol):
    async def dial(
        self, number: str, caller_id: str, sdp: str, listener: PhoneLegReports
    ) -> PhoneLeg:
        """Place a call to ``number``; raise ``TrunkUnavailable`` when that cannot start."""
        ...


class NoTrunk:
    """The SIP legs when no trunk is configured: every SIP leg fails cleanly."""

    async def dial(
        self, number: str, caller_id: str, sdp: str, listener: PhoneLegReports
    ) -> PhoneLeg:
        raise TrunkUnavailable("no SIP trunk is configured")
