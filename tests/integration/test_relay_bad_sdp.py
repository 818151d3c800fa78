"""An SDP found by fuzzing (bench/fuzz_parsers.py, sdp target): a bare ``m=audio`` line before
the real audio stream. The rewriter took the bare line for the stream and raised IndexError out
of the ng server, so the offer went unanswered. Over real UDP: the relay answers, and serves on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient, NgError, NgTimeout
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer

BARE_M_LINE = "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio \r\nm=audio 4000 RTP/AVP 0\r\n"


@pytest.fixture
async def ng() -> AsyncIterator[NgClient]:
    config = RelayConfig(ng_port=0, port_min=23000, port_max=23099)
    async with RelayServer(config) as relay, NgClient(*relay.ng_address, timeout_s=1.0) as client:
        yield client


async def test_an_offer_with_a_bare_audio_line_is_answered(ng: NgClient) -> None:
    try:
        result = await ng.offer("fuzzed", "a", BARE_M_LINE)
    except NgTimeout:
        pytest.fail("the relay did not answer the offer")
    except NgError:
        pass  # refusing the SDP is fine too; staying silent is not
    else:
        assert "m=audio " in result.sdp and result.media.port >= 23000
    assert await ng.ping()
