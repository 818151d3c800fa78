"""AMR-NB clips (RFC 4867 storage format) turned into RTP payloads (octet-aligned mode)."""

from __future__ import annotations

from importlib import resources

MAGIC = b"#!AMR\n"
# Speech bytes after the ToC byte, by frame type (RFC 4867 / 3GPP TS 26.101); 15 = no data.
FRAME_BYTES = {0: 12, 1: 13, 2: 15, 3: 17, 4: 19, 5: 20, 6: 26, 7: 31, 8: 5, 15: 0}
SAMPLES_PER_FRAME = 160  # 20 ms at 8000 Hz
NO_MODE_REQUEST = 0xF0  # CMR = 15


def parse_storage(data: bytes) -> list[bytes]:
    """The frames of an ``.amr`` file, each with its ToC byte; ValueError if malformed."""
    if not data.startswith(MAGIC):
        raise ValueError("not an AMR-NB storage file")
    frames = []
    pos = len(MAGIC)
    while pos < len(data):
        frame_type = (data[pos] >> 3) & 0x0F
        size = FRAME_BYTES.get(frame_type)
        if size is None:
            raise ValueError(f"AMR frame type {frame_type} is not valid for AMR-NB")
        end = pos + 1 + size
        if end > len(data):
            raise ValueError("AMR file ends inside a frame")
        frames.append(data[pos:end])
        pos = end
    return frames


def rtp_payload(frame: bytes) -> bytes:
    """One frame per packet, octet-aligned: a CMR byte, the ToC (F bit clear), the speech bits."""
    return bytes([NO_MODE_REQUEST, frame[0] & 0x7C]) + frame[1:]


def demo_clip() -> list[bytes]:
    """The 3-second 440/880 Hz tone shipped with lwork."""
    data = resources.files("lwork.data").joinpath("tone-440-880-3s.amr").read_bytes()
    return parse_storage(data)
