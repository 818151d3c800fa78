"""Speech for listening-quality figures: a sentence spoken by Debian's `espeak-ng`, resampled to
8 kHz by `ffmpeg`, coded with lwork's own codecs, and scored with PESQ (ITU-T P.862,
narrow-band, through the `pesq` package: a test-only dependency).

Shared by `bench.transcode_bench` (the figures) and the relay's transcoding test (a floor).
Why speech and not a tone: a codec built for speech (AMR's CELP) can keep a tone's frequency
while it mangles speech, and PESQ is only defined for speech-like signals.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from lwork.media.codecs import amr_payload, amrnb, g711
from lwork.media.ng.client import NgClient
from lwork.media.sdp_min import build_sdp

RATE: Final = 8000
SENTENCE: Final = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish."
)
"""Harvard sentences (IEEE 1969): the usual material for listening tests."""
VOICE: Final = "en-us+klatt"
"""espeak-ng's Klatt synthesiser: its default voice's buzzy pulses score low in PESQ whatever
the codec (G.711 alone 3.97, AMR 12.2 alone 2.82, where Klatt's give 4.49 and 3.89, close to
what recorded speech gets)."""
LAWS: Final = {
    "PCMA": (8, g711.alaw_encode, g711.alaw_decode),
    "PCMU": (0, g711.mulaw_encode, g711.mulaw_decode),
}
HOST: Final = "127.0.0.1"
_HEADER: Final = struct.Struct("!BBHII")


def missing() -> str | None:
    """None when speech can be made and scored here, else what is missing (a named reason
    for a skip)."""
    for tool, package in (("espeak-ng", "espeak-ng"), ("ffmpeg", "ffmpeg")):
        if shutil.which(tool) is None:
            return f"{tool} not installed: apt-get install {package}"
    try:
        import numpy  # noqa: F401
        import pesq  # noqa: F401
    except ImportError:
        return "the pesq package is missing: pip install -e '.[test]'"
    return amrnb.available()


def speech(text: str = SENTENCE) -> bytes:
    """`text` spoken by espeak-ng as 16-bit little-endian PCM at 8 kHz, its length a whole
    number of 20 ms frames."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICE, "-s", "150", "-w", str(wav), text],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        pcm = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(wav),
             "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
            check=True, capture_output=True, timeout=60,
        ).stdout  # fmt: skip
    usable = len(pcm) // amrnb.PCM_BYTES * amrnb.PCM_BYTES
    return pcm[:usable]


def amr_frames(pcm: bytes) -> list[bytes]:
    """`pcm` in AMR-NB 12.2 kbit/s storage frames, one per 20 ms, as an app sends them."""
    encoder = amrnb.Encoder(amrnb.MODE_12_2)
    frames = [
        encoder.encode(pcm[at : at + amrnb.PCM_BYTES])
        for at in range(0, len(pcm) - amrnb.PCM_BYTES + 1, amrnb.PCM_BYTES)
    ]
    encoder.close()
    return frames


def decode_amr(frames: list[bytes | None]) -> bytes:
    """AMR storage frames (None: lost, concealed) to PCM."""
    decoder = amrnb.Decoder()
    pcm = b"".join(decoder.decode(frame) for frame in frames)
    decoder.close()
    return pcm


def codecs_alone(frames: list[bytes], law: str = "PCMA") -> bytes:
    """The round trip AMR 12.2 -> `law` -> AMR 12.2 with the relay's codecs and no network:
    the ceiling of what the relay can give (every step runs, nothing is lost)."""
    _pt, encode, decode = LAWS[law]
    g711_audio = encode(decode_amr(list(frames)))
    back = amr_frames(decode(g711_audio))
    # Through the RTP payload format as well, as the relay sends it.
    return decode_amr([amr_payload.parse(amr_payload.build([f], False), False)[1][0] for f in back])


def pesq_nb(reference: bytes, degraded: bytes) -> float:
    """PESQ (P.862, narrow-band, MOS-LQO scale) of `degraded` against `reference`, both
    16-bit PCM at 8 kHz; P.862 finds their delay itself."""
    import numpy as np
    from pesq import pesq

    size = min(len(reference), len(degraded)) // 2
    ref = np.frombuffer(reference[: 2 * size], dtype="<i2").astype(np.float32)
    deg = np.frombuffer(degraded[: 2 * size], dtype="<i2").astype(np.float32)
    return float(pesq(RATE, ref, deg, "nb"))


async def through_relay(
    ng: NgClient,
    frames: list[bytes],
    *,
    law: str = "PCMA",
    octet_aligned: bool = False,
    interval_s: float = 0.02,
    call_id: str = "pesq",
) -> tuple[list[bytes | None], int]:
    """The round trip AMR -> `law` -> AMR through a real relay: an app socket sends `frames`
    (one a packet, every `interval_s`), a carrier socket that answered `law` only sends back
    each G.711 packet it gets (an echo, as a phone's loop), and the app's socket collects what
    the relay makes of it. Returns (the frames the app got, in sequence order, None where a
    packet is missing; G.711 packets the carrier got)."""
    loop = asyncio.get_running_loop()
    app, carrier = _udp(), _udp()
    got_app: dict[int, bytes] = {}
    """By sequence number counted from the first packet's."""
    base: list[int] = []
    carrier_count = 0
    pt = LAWS[law][0]
    fmtp = "octet-align=1" if octet_aligned else "octet-align=0"
    try:
        offer = await ng.offer(call_id, "app", build_sdp(HOST, app.getsockname()[1], fmtp=fmtp))
        answer = await ng.answer(
            call_id, "app", "carrier",
            build_sdp(HOST, carrier.getsockname()[1], payload_type=pt, encoding=f"{law}/8000",
                      fmtp=None),
        )  # fmt: skip
        to_app_leg, to_carrier_leg = (HOST, answer.media.port), (HOST, offer.media.port)

        def echo() -> None:
            nonlocal carrier_count
            while True:
                try:
                    data = carrier.recv(2048)
                except BlockingIOError:
                    return
                _b0, second, sequence, timestamp, _ssrc = _HEADER.unpack_from(data)
                if second & 0x7F == pt:
                    carrier_count += 1
                    back = _HEADER.pack(0x80, pt, sequence, timestamp, 0xCA441E) + data[12:]
                    carrier.sendto(back, to_carrier_leg)

        def collect() -> None:
            while True:
                try:
                    data = app.recv(2048)
                except BlockingIOError:
                    return
                sequence = _HEADER.unpack_from(data)[2]
                if not got_app:
                    base.append(sequence)  # the relay's numbering starts anywhere
                got_app[(sequence - base[0]) & 0xFFFF] = data[12:]

        loop.add_reader(carrier.fileno(), echo)
        loop.add_reader(app.fileno(), collect)
        start = loop.time()
        for seq, frame in enumerate(frames):
            payload = amr_payload.build([frame], octet_aligned)
            app.sendto(_HEADER.pack(0x80, 102, seq, seq * 160, 0xA11CE) + payload, to_app_leg)
            await asyncio.sleep(max(0.0, start + (seq + 1) * interval_s - loop.time()))
        for _ in range(100):  # what is still in flight
            if len(got_app) >= len(frames):
                break
            await asyncio.sleep(0.02)
        await ng.delete(call_id)
    finally:
        for sock in (app, carrier):
            loop.remove_reader(sock.fileno())
            sock.close()
    if not got_app:
        return [], carrier_count
    received: list[bytes | None] = []
    for seq in range(max(got_app) + 1):
        payload = got_app.get(seq)
        received.append(None if payload is None else _one_frame(payload, octet_aligned))
    return received, carrier_count


def _one_frame(payload: bytes, octet_aligned: bool) -> bytes | None:
    try:
        frames = amr_payload.parse(payload, octet_aligned)[1]
    except ValueError:
        return None
    return frames[0] if len(frames) == 1 else None


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock
