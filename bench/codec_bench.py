"""Codec benchmark for transcoding carrier legs (issue #19): CPU per 20 ms frame of each codec
candidate, against ffmpeg transcoding the same stream in the same run.

Candidates: lwork's G.711 tables (media/codecs/g711.py); AMR-NB through Debian's
libopencore-amrnb0 bound with ctypes (media/codecs/amrnb.py); AMR-NB through PyAV's wheel
(its bundled FFmpeg has the libopencore_amrnb encoder), when `av` is importable. Each figure is
the best of a few rounds of CPU time (process time) per frame, in microseconds, with
`per_core_calls`: calls one core could transcode at 50 frames a second each way. The reference
is the ffmpeg command line decoding the same AMR stream (repeated to a minute at least) and
encoding it to PCMA, its CPU (children's rusage) per frame, start-up included.

    python -m bench.codec_bench [--seconds 20] [--smoke]

Exits 1 when a codec gives wrong output (G.711 not equal to the tables' own inverse, AMR
frames not of the 12.2 kbit/s size, decoded frames not 20 ms) or a figure is missing. A codec
that is not installed is reported (`skipped` with the reason), not failed: only G.711 is
always there.
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import struct
import subprocess
import time
from collections.abc import Callable

from bench._verdict import Verdict
from lwork.media.codecs import amrnb, g711

FRAME_PCM = 320
ROUNDS = 5
REFERENCE_FRAMES = 3000


def tone(seconds: float) -> list[bytes]:
    """Two tones (440 Hz + 880 Hz), split into 20 ms PCM frames."""
    count = int(8000 * seconds)
    pcm = struct.pack(
        f"<{count}h",
        *(
            int(
                6000
                * (math.sin(2 * math.pi * 440 * n / 8000) + math.sin(2 * math.pi * 880 * n / 8000))
            )
            for n in range(count)
        ),
    )
    return [pcm[i : i + FRAME_PCM] for i in range(0, len(pcm), FRAME_PCM)]


def per_frame_us(work: Callable[[], int]) -> float:
    """Best of ROUNDS: CPU microseconds per frame of `work` (which returns its frame count)."""
    best = math.inf
    for _ in range(ROUNDS):
        started = time.process_time()
        frames = work()
        best = min(best, (time.process_time() - started) / frames * 1e6)
    return round(best, 3)


def figure(verdict: Verdict, name: str, codec: str, us: float, reference: dict[str, float]) -> None:
    verdict.emit({
        "figure": name, "codec": codec, "cpu_us_per_frame": us,
        "per_core_calls": int(1e6 / (us * 50)) if us > 0 else None,
        "reference": reference,
    })  # fmt: skip


def ffmpeg_reference(amr_stream: bytes, frames: int) -> dict[str, float]:
    """The ffmpeg CLI transcoding the AMR stream to PCMA: CPU per frame (start-up included)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "amr", "-i", "-", "-f", "alaw",
         "-ar", "8000", "-"],
        input=amr_stream, capture_output=True, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"ffmpeg_amr_to_pcma_cpu_us_per_frame": round(cpu / frames * 1e6, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per round")
    parser.add_argument("--smoke", action="store_true", help="a second of audio, for CI")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    verdict = Verdict("codec")
    pcm_frames = tone(seconds)
    count = len(pcm_frames)

    alaw_frames = [g711.alaw_encode(f) for f in pcm_frames]
    verdict.require(
        all(g711.alaw_encode(g711.alaw_decode(a)) == a for a in alaw_frames), "g711", "not inverse"
    )
    amr_frames: list[bytes] = []
    why_not = amrnb.available()
    if why_not is None:
        encoder = amrnb.Encoder()
        amr_frames = [encoder.encode(f) for f in pcm_frames]
        verdict.require({len(f) for f in amr_frames} == {32}, "amrnb", "not 12.2 kbit/s frames")
    # A minute of frames at least, so that ffmpeg's start-up weighs little in its figure.
    repeat = max(1, -(-REFERENCE_FRAMES // max(count, 1)))
    reference = (
        ffmpeg_reference(b"#!AMR\n" + b"".join(amr_frames) * repeat, count * repeat)
        if amr_frames
        else {}
    )

    def alaw_encode() -> int:
        for frame in pcm_frames:
            g711.alaw_encode(frame)
        return count

    def alaw_decode() -> int:
        for frame in alaw_frames:
            g711.alaw_decode(frame)
        return count

    figure(verdict, "g711_encode", "PCMA (lwork tables)", per_frame_us(alaw_encode), reference)
    figure(verdict, "g711_decode", "PCMA (lwork tables)", per_frame_us(alaw_decode), reference)
    expected = ["g711_encode", "g711_decode"]

    if why_not is not None:
        verdict.emit({"figure": "amrnb_opencore", "skipped": why_not})
    else:
        decoder = amrnb.Decoder()
        sizes: set[int] = set()

        def amr_encode() -> int:
            encoder = amrnb.Encoder()
            for frame in pcm_frames:
                encoder.encode(frame)
            return count

        def amr_decode() -> int:
            for frame in amr_frames:
                sizes.add(len(decoder.decode(frame)))
            return count

        def amr_to_pcma() -> int:  # what the carrier-bound direction of a leg does per packet
            for frame in amr_frames:
                g711.alaw_encode(decoder.decode(frame))
            return count

        def pcma_to_amr() -> int:
            encoder = amrnb.Encoder()
            for frame in alaw_frames:
                encoder.encode(g711.alaw_decode(frame))
            return count

        encode_us, decode_us = per_frame_us(amr_encode), per_frame_us(amr_decode)
        verdict.require(sizes == {FRAME_PCM}, "amrnb", f"decoded frames of {sizes} bytes")
        figure(verdict, "amrnb_encode", "AMR-NB 12.2 (opencore, ctypes)", encode_us, reference)
        figure(verdict, "amrnb_decode", "AMR-NB (opencore, ctypes)", decode_us, reference)
        there, back = per_frame_us(amr_to_pcma), per_frame_us(pcma_to_amr)
        verdict.emit({
            "figure": "transcode_call", "codec": "AMR 12.2 <-> PCMA (opencore + lwork tables)",
            "cpu_us_amr_to_pcma": there, "cpu_us_pcma_to_amr": back,
            "per_core_calls": int(1e6 / ((there + back) * 50)), "reference": reference,
        })  # fmt: skip
        expected += ["amrnb_encode", "amrnb_decode", "transcode_call"]
        transcoder_call(verdict, pcm_frames, reference)
        expected.append("transcoder_call")
    pyav(verdict, pcm_frames, amr_frames, reference)
    verdict.conclude(expected)


def transcoder_call(verdict: Verdict, pcm_frames: list[bytes], reference: dict[str, float]) -> None:
    """A call through media/codecs/transcoder.py both ways: RTP in, RTP out, as a relay would
    run it (payload format, numbering and counters included)."""
    from lwork.media.codecs import amr_payload
    from lwork.media.codecs.transcoder import AppToCarrier, CarrierToApp, Numbering

    encoder = amrnb.Encoder()
    header = struct.Struct("!BBHII")
    app_in = [
        header.pack(0x80, 102, i, 160 * i, 1) + amr_payload.build([encoder.encode(f)], True)
        for i, f in enumerate(pcm_frames)
    ]
    carrier_in = [
        header.pack(0x80, 8, i, 160 * i, 2) + g711.alaw_encode(f) for i, f in enumerate(pcm_frames)
    ]
    count, made = len(pcm_frames), [0]

    def both_ways() -> int:
        there = AppToCarrier(Numbering(3, 0, 0), amr_pt=102, octet_aligned=True,
                             g711_codec="PCMA", g711_pt=8)  # fmt: skip
        back = CarrierToApp(Numbering(4, 0, 0), g711_codec="PCMA", g711_pt=8, amr_pt=102,
                            octet_aligned=True)  # fmt: skip
        for a, c in zip(app_in, carrier_in, strict=True):
            made[0] += len(there.receive(a)) + len(back.receive(c))
        return count

    us = per_frame_us(both_ways)
    verdict.require(made[0] == 2 * ROUNDS * count, "transcoder_call", f"{made[0]} packets out")
    verdict.emit({
        "figure": "transcoder_call", "codec": "AMR 12.2 <-> PCMA, RTP to RTP",
        "cpu_us_per_packet_pair": us, "per_core_calls": int(1e6 / (us * 50)),
        "target_per_core_calls": 100, "met": 1e6 / (us * 50) >= 100, "reference": reference,
    })  # fmt: skip


def pyav(
    verdict: Verdict, pcm_frames: list[bytes], amr_frames: list[bytes], reference: dict[str, float]
) -> None:
    """PyAV's wheel, when installed: the same encode and decode through its bundled FFmpeg."""
    try:
        import av  # type: ignore[import-not-found]
    except ImportError:
        verdict.emit({"figure": "amrnb_pyav", "skipped": "PyAV not installed (pip install av)"})
        return
    count = len(pcm_frames)
    made: list[int] = []

    def encode() -> int:
        context = av.CodecContext.create("libopencore_amrnb", "w")
        context.sample_rate, context.layout, context.format = 8000, "mono", "s16"
        context.bit_rate = 12200
        for i, frame in enumerate(pcm_frames):
            audio = av.AudioFrame(format="s16", layout="mono", samples=160)
            audio.sample_rate, audio.pts = 8000, i * 160
            audio.planes[0].update(frame)
            made.append(len(context.encode(audio)))
        return count

    def decode() -> int:
        context = av.CodecContext.create("amrnb", "r")
        context.sample_rate, context.layout = 8000, "mono"
        for frame in amr_frames:
            made.append(len(context.decode(av.Packet(frame))))
        return count

    encode_us = per_frame_us(encode)
    verdict.require(sum(made) == ROUNDS * count, "amrnb_pyav", f"{sum(made)} packets encoded")
    figure(verdict, "amrnb_pyav_encode", "AMR-NB 12.2 (PyAV wheel)", encode_us, reference)
    if amr_frames:
        made.clear()
        decode_us = per_frame_us(decode)
        verdict.require(sum(made) == ROUNDS * count, "amrnb_pyav", f"{sum(made)} frames decoded")
        figure(verdict, "amrnb_pyav_decode", "AMR-NB (PyAV wheel)", decode_us, reference)


if __name__ == "__main__":
    main()
