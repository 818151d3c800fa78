"""NMSI commands/s on one connection (CONTRACT §9), against a command that touches nothing.

    python -m bench.nmsi_bench              # 5 s of each
    python -m bench.nmsi_bench --smoke      # 1 s of each: exits non-zero on any failure

``lwork serve`` runs in its own process on SQLite in a temporary directory with NMSI on. One
peer logs in, opens an account, then sends one command at a time and waits for its ack:

* ``modify_sub_attr_per_s``: ``MODIFY_SUB_ATTR`` alternating ``NOTINUSE=1`` and ``0`` (each
  a ``deactivate`` or ``activate`` through the BOSS operations, plus its audit row);
* ``reference_unhandled_per_s``: a command lwork does not know, answered ``RETN=0`` without the
  database, on the same connection in the same run: framing, grammar and session alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

import httpx

from bench._load import stop_process
from bench._verdict import Verdict
from bench.boss_bench import free_port

USER, PASSWORD = "bench", "bench-nmsi-password"
ACCOUNT = "02150001234"
MAGIC = bytes.fromhex("aa55aa55")


def frame(text: str, tid: int) -> bytes:
    """A command frame from the documented 39-byte header."""
    body = text.encode()
    return (MAGIC + b"\x01" + (39 + len(body)).to_bytes(4, "big") + (1).to_bytes(4, "big")
            + bytes(8) + tid.to_bytes(4, "big") + bytes(4) + b"\x00" + b"\x00\x01" + bytes(7)
            + body)  # fmt: skip


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer, self._tid = reader, writer, 0

    async def command(self, text: str) -> int:
        """The ack's RETN (from the header's ack code field)."""
        self._tid += 1
        self._writer.write(frame(text, self._tid))
        header = await self._reader.readexactly(39)
        await self._reader.readexactly(int.from_bytes(header[5:9], "big") - 39)
        return int.from_bytes(header[25:29], "big")


async def rate(peer: Peer, texts: list[str], seconds: float) -> tuple[float, int, int]:
    """Commands/s, answered RETN 0 and not, one at a time for ``seconds``."""
    done = failed = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        retn = await peer.command(texts[(done + failed) % len(texts)])
        done += retn == 0
        failed += retn != 0
    return done / (time.perf_counter() - began), done, failed


async def run(seconds: float, verdict: Verdict) -> None:
    with tempfile.TemporaryDirectory(prefix="lwork-nmsi-bench-") as tmp:
        port, nmsi_port = free_port(), free_port()
        env = {**os.environ, "LWORK_DATA_DIR": tmp, "LWORK_DATABASE__URL": "",
               "LWORK_BOSS__NMSI_ENABLED": "true", "LWORK_BOSS__NMSI_PORT": str(nmsi_port),
               "LWORK_BOSS__NMSI_USER": USER, "LWORK_BOSS__NMSI_PASSWORD": PASSWORD,
               "LWORK_LOG_LEVEL": "WARNING", "LWORK_MEDIA__RELAY_MODE": "inline"}  # fmt: skip
        server = subprocess.Popen([sys.executable, "-m", "lwork", "serve", "--port", str(port)],
                                  env=env)  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(300):
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/healthz")).is_success:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", nmsi_port)
            peer = Peer(reader, writer)
            logins = [await peer.command(f'{cmd}:1="{USER}",2="{PASSWORD}";')
                      for cmd in ("90000", "2100")]  # fmt: skip
            opened = await peer.command(f'CREATE_SIPREG_USER:SDN="{ACCOUNT}",PASSWORD="pw";')
            verdict.require(logins + [opened] == [0, 0, 0], "nmsi_commands", f"{logins} {opened}")
            bare, _, bare_failed = await rate(peer, ["LST_SUB:SDN1=1;"], seconds)
            toggles = [f'MODIFY_SUB_ATTR:SDN1="{ACCOUNT}",NOTINUSE={n};' for n in (1, 0)]
            changes, done, failed = await rate(peer, toggles, seconds)
            writer.close()
            verdict.none_failed("nmsi_commands", "commands", bare_failed + failed)
            verdict.some("nmsi_commands", "answered commands", done)
            verdict.emit({"figure": "nmsi_commands", "modify_sub_attr_per_s": round(changes),
                          "reference_unhandled_per_s": round(bare),
                          "ratio": round(changes / bare, 3) if bare else None,
                          "connections": 1})  # fmt: skip
        finally:
            stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="1 s of each")
    args = parser.parse_args()
    verdict = Verdict("nmsi_bench")
    asyncio.run(run(1.0 if args.smoke else args.seconds, verdict))
    verdict.conclude(["nmsi_commands"])


if __name__ == "__main__":
    main()
