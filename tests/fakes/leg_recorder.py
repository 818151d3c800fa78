"""The call service's side of a SIP leg in trunk tests: records every callback in order."""

from __future__ import annotations

import asyncio


class RecordingListener:
    def __init__(self, wait: float = 30.0) -> None:
        self.wait = wait
        self.events: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def ringing(self, early_sdp: str | None) -> None:
        self.events.put_nowait(("ringing", early_sdp))

    def answered(self, sdp: str) -> None:
        self.events.put_nowait(("answered", sdp))

    def failed(self, code: int, reason: str) -> None:
        self.events.put_nowait(("failed", (code, reason)))

    def ended(self, reason: str) -> None:
        self.events.put_nowait(("ended", reason))

    def media_moved(self, sdp: str) -> None:
        self.events.put_nowait(("media_moved", sdp))

    async def next(self) -> tuple[str, object]:
        return await asyncio.wait_for(self.events.get(), self.wait)
