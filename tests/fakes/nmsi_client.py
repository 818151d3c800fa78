"""An NMSI peer written from the documented header (``original-behavior.md`` §10), byte by
byte, not from the server's serializer.

Header, big endian: magic AA 55 AA 55 (4 bytes), type (1: 1 command, 2 ack, 3 heartbeat),
total length including the header (4), version (4, = 1), EID (8), TID (4), ack code (4),
FUP (1), CPID (2), reserved up to 39 bytes (7). A heartbeat is the magic and the type byte 3.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

MAGIC = bytes([0xAA, 0x55, 0xAA, 0x55])
HEARTBEAT = MAGIC + bytes([3])
_ACK_TEXT = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d : (?P<command>[^:]+) : RETN=(?P<retn>-?\d+)"
    r"(?:,DESC=(?P<desc>.*))?$"
)


def frame(
    text: bytes, *, type_: int = 1, eid: int = 0, tid: int = 0, version: int = 1,
    length: int | None = None, magic: bytes = MAGIC,
) -> bytes:  # fmt: skip
    header = bytearray(magic)
    header.append(type_)
    header += (39 + len(text) if length is None else length).to_bytes(4, "big")
    header += version.to_bytes(4, "big")
    header += eid.to_bytes(8, "big")
    header += tid.to_bytes(4, "big")
    header += bytes(4)  # ack code: 0 in a command
    header.append(0)  # FUP
    header += (1).to_bytes(2, "big")  # CPID
    header += bytes(39 - len(header))  # reserved
    assert len(header) == 39
    return bytes(header) + text


@dataclass(frozen=True)
class Ack:
    type: int
    eid: int
    tid: int
    code: int
    fup: int
    cpid: int
    text: str

    def _part(self, name: str) -> str | None:
        found = _ACK_TEXT.match(self.text)
        assert found is not None, self.text
        return found.group(name)

    @property
    def command(self) -> str:
        return self._part("command") or ""

    @property
    def retn(self) -> int:
        return int(self._part("retn") or "")

    @property
    def desc(self) -> str | None:
        return self._part("desc")


class NmsiPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tid = 0

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> NmsiPeer:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def ack(self, timeout: float = 10) -> Ack:
        header = await asyncio.wait_for(self.reader.readexactly(39), timeout)
        assert header[:4] == MAGIC
        length = int.from_bytes(header[5:9], "big")
        assert int.from_bytes(header[9:13], "big") == 1
        body = await asyncio.wait_for(self.reader.readexactly(length - 39), timeout)
        return Ack(
            type=header[4],
            eid=int.from_bytes(header[13:21], "big"),
            tid=int.from_bytes(header[21:25], "big"),
            code=int.from_bytes(header[25:29], "big"),
            fup=header[29],
            cpid=int.from_bytes(header[30:32], "big"),
            text=body.decode(),
        )

    async def command(self, text: str, eid: int = 7) -> Ack:
        self._tid += 1
        await self.send(frame(text.encode(), eid=eid, tid=self._tid))
        answer = await self.ack()
        assert (answer.eid, answer.tid) == (eid, self._tid)
        return answer

    async def login(self, user: str, password: str) -> None:
        first = await self.command(f'90000:1="{user}",2="{password}";')
        second = await self.command(f'2100:1="{user}",2="{password}";')
        assert (first.retn, second.retn) == (0, 0), (first.text, second.text)

    async def closed(self, timeout: float = 10) -> bool:
        """The server hung up: the stream ends (whatever acks came before are read)."""
        try:
            while await asyncio.wait_for(self.reader.read(4096), timeout):
                pass
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
