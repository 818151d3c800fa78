"""ffmpeg streams a real AMR-NB clip as RTP into leg A; the receiver on leg B gets every packet."""

import asyncio
import shutil
from pathlib import Path

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer

HOST = "127.0.0.1"
CLIP = Path(__file__).parents[1] / "data" / "tone-440-880-3s.amr"
FRAMES = 150  # 3 s of 20 ms AMR frames


async def test_ffmpeg_amr_stream_crosses_the_relay_without_loss() -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed: apt-get install ffmpeg")
    config = RelayConfig(ng_port=0, port_min=23000, port_max=23999)
    ffmpeg_side, b = await RtpPeer.open(), await RtpPeer.open()
    try:
        async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
            # ffmpeg only sends; its SDP address is a placeholder until the relay latches on it
            await ng.offer("ff", "ffmpeg", build_sdp(HOST, ffmpeg_side.port, payload_type=97))
            answer = await ng.answer("ff", "ffmpeg", "phone", build_sdp(HOST, b.port))
            port = answer.media.port
            process = await asyncio.create_subprocess_exec(
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-i",
                str(CLIP),
                "-c:a",
                "copy",
                "-max_delay",
                "20000",
                "-f",
                "rtp",
                f"rtp://{HOST}:{port}?rtcpport={port + 1}",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
            assert process.returncode == 0, stderr.decode()
            received = await b.wait_rtp(FRAMES, timeout=10)
            packets = [RtpPacket.parse(r.data) for r in received]
            assert len(packets) == FRAMES
            assert {p.payload_type for p in packets} == {97}
            assert len({p.ssrc for p in packets}) == 1
            sequences = [p.sequence for p in packets]
            assert all(
                (y - x) & 0xFFFF == 1 for x, y in zip(sequences, sequences[1:], strict=False)
            )
            assert all(len(p.payload) == 33 for p in packets)  # one 12.2 kbit/s frame each
            stats = await ng.query("ff")
            quality = stats.legs["ffmpeg"].quality
            assert quality is not None
            assert (quality.packets_received, quality.packets_lost) == (FRAMES, 0)
            assert quality.jitter_ms < 20
    finally:
        ffmpeg_side.close()
        b.close()
