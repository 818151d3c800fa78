"""At start-up lwork says that its media path does not transcode, for the built-in relay and
for an external one (CONTRACT §6.4: carriers that speak only G.711)."""

from __future__ import annotations

import logging

import pytest

from lwork.media.control import media_control
from lwork.settings import MediaSettings


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"ng_url": "udp://127.0.0.1:22222"}, "the relay at udp://127.0.0.1:22222"),
        ({"relay_mode": "inline", "port_min": 24600, "port_max": 24699}, "the built-in relay"),
    ],
)
async def test_start_up_says_nothing_transcodes(
    caplog: pytest.LogCaptureFixture, overrides: dict[str, object], named: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="lwork.media.control"):
        async with media_control(MediaSettings(**overrides)):  # type: ignore[arg-type]
            pass
    [notice] = [r.getMessage() for r in caplog.records if "transcode" in r.getMessage()]
    assert notice.startswith(f"media: {named}") and "AMR <-> G.711" in notice
