"""AMR-NB (3GPP TS 26.071) through Debian's `libopencore-amrnb0` (Apache-2.0), bound with
ctypes: no Python dependency, and the library is optional (`available()`).

Frames are in the storage format of RFC 4867 §5 (what `Encoder_Interface_Encode` writes): a
ToC byte (frame type << 3 | quality << 2) and the speech bits, octet-aligned; one frame is
20 ms, 160 samples of 16-bit PCM at 8 kHz. A frame that is missing, truncated or of an unknown
type is decoded as a bad frame: the decoder's concealment fills the 20 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Final, cast

SAMPLES: Final = 160
PCM_BYTES: Final = 2 * SAMPLES
MODE_12_2: Final = 7
SPEECH_BYTES: Final = (12, 13, 15, 17, 19, 20, 26, 31, 5)
"""Speech bytes after the ToC byte per frame type 0-8 (8: SID); 15 (no data) has none."""
NO_DATA: Final = 15
_LIBRARY_NAMES: Final = ("opencore-amrnb", "libopencore-amrnb.so.0")

_lib: ctypes.CDLL | None = None
_why_not: str | None = None


def _load() -> ctypes.CDLL | None:
    global _lib, _why_not
    if _lib is not None or _why_not is not None:
        return _lib
    for name in _LIBRARY_NAMES:
        path = ctypes.util.find_library(name) if "." not in name else name
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.Encoder_Interface_init.restype = ctypes.c_void_p
        lib.Encoder_Interface_init.argtypes = [ctypes.c_int]
        lib.Encoder_Interface_Encode.restype = ctypes.c_int
        lib.Encoder_Interface_Encode.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
        ]  # fmt: skip
        lib.Encoder_Interface_exit.argtypes = [ctypes.c_void_p]
        lib.Decoder_Interface_init.restype = ctypes.c_void_p
        lib.Decoder_Interface_Decode.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
        ]  # fmt: skip
        lib.Decoder_Interface_exit.argtypes = [ctypes.c_void_p]
        _lib = lib
        return lib
    _why_not = "libopencore-amrnb not found (Debian: apt-get install libopencore-amrnb0)"
    return None


def available() -> str | None:
    """None when AMR-NB can be coded here, else why not."""
    _load()
    return _why_not


def _library() -> ctypes.CDLL:
    lib = _load()
    if lib is None:
        raise RuntimeError(_why_not)
    return lib


def frame_bytes(toc: int) -> int | None:
    """The size of a storage-format frame from its ToC byte (ToC included); None: unknown."""
    frame_type = (toc >> 3) & 0x0F
    if frame_type == NO_DATA:
        return 1
    if frame_type < len(SPEECH_BYTES):
        return 1 + SPEECH_BYTES[frame_type]
    return None


def _hot_function(lib: ctypes.CDLL, name: str) -> Any:
    """A second handle on a per-frame function, without argtypes: its callers pass ctypes
    objects made once per stream (the state pointer, the mode, the output buffer) and bytes,
    which ctypes passes as they are, instead of converting every argument on every call
    (measured: 3 us of a 55 us encode, 1 us of a 12 us decode). Never called with a plain int:
    without argtypes that would be passed as a C int, and a pointer cut to 32 bits."""
    function = ctypes.CFUNCTYPE(ctypes.c_int)((name, lib))
    return function


class Encoder:
    """One stream's AMR-NB encoder state; `mode` 0-7 (7: 12.2 kbit/s, what lwork sends)."""

    def __init__(self, mode: int = MODE_12_2, dtx: bool = False) -> None:
        if not 0 <= mode <= 7:
            raise ValueError("AMR-NB: mode must be 0-7")
        self._lib = _library()
        self._state: int | None = self._lib.Encoder_Interface_init(int(dtx))
        self._pointer = ctypes.c_void_p(self._state)
        self._encode = _hot_function(self._lib, "Encoder_Interface_Encode")
        self.mode = mode
        self._mode = ctypes.c_int(mode)
        self._out = ctypes.create_string_buffer(64)
        self._zero = ctypes.c_int(0)

    def encode(self, pcm: bytes) -> bytes:
        """20 ms of 16-bit PCM (320 bytes) -> one storage-format frame."""
        if len(pcm) != PCM_BYTES:
            raise ValueError(f"AMR-NB: a frame is {PCM_BYTES} bytes of PCM, not {len(pcm)}")
        if self._state is None:
            raise ValueError("AMR-NB: encoder closed")
        if self._mode.value != self.mode:
            if not 0 <= self.mode <= 7:
                raise ValueError("AMR-NB: mode must be 0-7")
            self._mode = ctypes.c_int(self.mode)
        size: int = self._encode(self._pointer, self._mode, pcm, self._out, self._zero)
        # A c_char array's slice is bytes, one copy (typeshed says list[bytes]).
        return cast(bytes, self._out[:size])

    def close(self) -> None:
        if self._state is not None:
            self._lib.Encoder_Interface_exit(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


class Decoder:
    """One stream's AMR-NB decoder state, with its concealment of lost or bad frames."""

    def __init__(self) -> None:
        self._lib = _library()
        self._state: int | None = self._lib.Decoder_Interface_init()
        self._pointer = ctypes.c_void_p(self._state)
        self._decode = _hot_function(self._lib, "Decoder_Interface_Decode")
        self._out = ctypes.create_string_buffer(PCM_BYTES)
        self._silence = bytes(64)
        self._good, self._bad = ctypes.c_int(0), ctypes.c_int(1)
        self.concealed = 0
        """Frames decoded as bad: missing, truncated or of an unknown type."""

    def decode(self, frame: bytes | None) -> bytes:
        """One storage-format frame (None: lost) -> 20 ms of 16-bit PCM."""
        if self._state is None:
            raise ValueError("AMR-NB: decoder closed")
        size = frame_bytes(frame[0]) if frame else None
        if frame is None or size is None or len(frame) < size:
            # A bad frame of the last good type: the decoder conceals from its history, and
            # never reads past a buffer a lying ToC would make it overrun.
            self.concealed += 1
            self._decode(self._pointer, self._silence, self._out, self._bad)
        else:
            # The decoder reads `size` bytes at most: what follows them needs no copy away.
            self._decode(self._pointer, frame, self._out, self._good)
        return self._out.raw

    def close(self) -> None:
        if self._state is not None:
            self._lib.Decoder_Interface_exit(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
