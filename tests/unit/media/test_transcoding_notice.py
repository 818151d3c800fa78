"""At start-up lwork says whether its media path transcodes (CONTRACT §6.4: carriers that speak
only G.711): an external relay when its probe says so (here: none answers it), the built-in
one unless turned off or without libopencore-amrnb, and the call engine is told which
(`RelayConnection.transcoding`)."""

from __future__ import annotations

import logging

import pytest

from lwork.media.codecs import amrnb
from lwork.media.control import media_control
from lwork.settings import MediaSettings

BUILT_IN = {"relay_mode": "inline", "port_min": 24600, "port_max": 24699}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"ng_url": "udp://127.0.0.1:22222"}, "the relay at udp://127.0.0.1:22222"),
        ({**BUILT_IN, "transcoding": False}, "the built-in relay"),
    ],
)
async def test_start_up_says_nothing_transcodes(
    caplog: pytest.LogCaptureFixture, overrides: dict[str, object], named: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="lwork.media.control"):
        async with media_control(MediaSettings(**overrides)) as relay:  # type: ignore[arg-type]
            assert relay.transcoding is False
    [notice] = [r.getMessage() for r in caplog.records if "transcode" in r.getMessage()]
    assert notice.startswith(f"media: {named}") and "AMR <-> G.711" in notice


@pytest.mark.skipif(amrnb.available() is not None, reason="no libopencore-amrnb")
async def test_the_built_in_relay_transcodes_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lwork.media"):
        async with media_control(MediaSettings(**BUILT_IN)) as relay:  # type: ignore[arg-type]
            assert relay.transcoding is True
    messages = [r.getMessage() for r in caplog.records]
    assert any("transcodes AMR <-> G.711" in m for m in messages)
    assert any("transcoding AMR <-> G.711 in 1 worker process" in m for m in messages)
    assert not any("does not transcode" in m for m in messages)


async def test_without_the_amr_library_transcoding_is_off_and_said_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library's absence is the machine's, not ours: stand in for the loader's answer.
    monkeypatch.setattr(amrnb, "available", lambda: "libopencore-amrnb not found")
    with caplog.at_level(logging.WARNING, logger="lwork.media"):
        async with media_control(MediaSettings(**BUILT_IN)) as relay:  # type: ignore[arg-type]
            assert relay.transcoding is False
    [notice] = [r.getMessage() for r in caplog.records if "transcod" in r.getMessage()]
    assert "does not transcode" in notice and "libopencore-amrnb not found" in notice
