"""The BOSS interface (CONTRACT §9): signed requests/s, and ``cdrs`` streaming speed and memory.

    python -m bench.boss_bench              # 1,000,000 CDRs, 5 s of requests
    python -m bench.boss_bench --smoke      # 20,000 CDRs, 1 s: exits non-zero on any failure

``lwork serve`` runs in its own process on SQLite in a temporary directory. Figures, one JSON
line each:

* ``signed_minutes``: requests/s of signed ``minutes`` (each with its own request id and
  signature, checked and remembered against replay) from 8 concurrent clients, against
  ``GET /healthz`` on the same server with the same clients in the same run;
* ``cdrs_stream``: rows/s of one ``cdrs`` request over every record, and the server's resident
  memory before and at its peak during the stream (flat memory is the target: the growth should
  not depend on the number of records).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._load import stop_process
from bench._verdict import Verdict
from lwork.storage.engine import create_engine, migrate
from lwork.storage.tables import cdrs

KEY, SECRET = "bench", "bench-secret-0123456789"
ACCOUNT = "02150001234"
FIRST = 1_772_323_200.0  # 2026-03-01T00:00:00Z
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def signed(operation: str, fields: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """A request as CONTRACT §9 signs it."""
    path = f"/lwork/boss/v1/{operation}"
    body = json.dumps(fields).encode()
    stamp = str(int(time.time()))
    text = f"{stamp}\nPOST\n{path}\n{hashlib.sha256(body).hexdigest()}".encode()
    signature = hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()
    return path, body, {"X-Lwork-Key": KEY, "X-Lwork-Timestamp": stamp,
                        "X-Lwork-Signature": signature}  # fmt: skip


async def fill(url: str, rows: int) -> None:
    engine = create_engine(url, 1)
    await migrate(engine)
    batch = 10_000
    for first in range(0, rows, batch):
        values = [
            {"id": f"bench@@{n:012d}", "uuid": ACCOUNT, "kind": "out", "caller": ACCOUNT,
             "callee": "02079460000", "caller_id": ACCOUNT, "started_at": FIRST + n * 0.5,
             "answered_at": FIRST + n * 0.5 + 2, "ended_at": FIRST + n * 0.5 + 62,
             "billsec": 60, "minutes": 1, "cost": 1, "charge_minutes": 1,
             "end_reason": "hangup_caller", "sip_status": 200, "mos": 4.3, "node": "bench"}
            for n in range(first, min(first + batch, rows))
        ]  # fmt: skip
        async with engine.begin() as conn:
            await conn.execute(cdrs.insert(), values)
    await engine.dispose()


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def rate(
    client: httpx.AsyncClient, base: str, seconds: float, signed_requests: bool
) -> tuple[float, int, int]:
    """Requests/s, answered and failed, from CLIENTS concurrent loops for ``seconds``."""
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            if signed_requests:
                fields = {"account": ACCOUNT, "request_id": secrets.token_hex(8)}
                path, body, headers = signed("minutes", fields)
                r = await client.post(base + path, content=body, headers=headers)
                ok = r.status_code == 200 and r.json().get("status") == "ok"
            else:
                r = await client.get(base + "/healthz")
                ok = r.status_code == 200
            done += ok
            failed += not ok

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CLIENTS)))
    return done / (time.perf_counter() - began), done, failed


async def stream_all(client: httpx.AsyncClient, base: str, pid: int) -> tuple[float, int, int, int]:
    """Rows/s of one ``cdrs`` over everything; rows; server RSS before and at peak (KiB)."""
    before = peak = resident_kib(pid)
    path, body, headers = signed("cdrs", {"start": "2026-02-28", "end": "2026-12-31",
                                          "request_id": secrets.token_hex(8)})  # fmt: skip
    rows = 0
    began = time.perf_counter()
    async with client.stream("POST", base + path, content=body, headers=headers) as response:
        if response.status_code != 200:
            return 0.0, 0, before, peak
        async for chunk in response.aiter_raw():
            rows += chunk.count(b"\n")
            peak = max(peak, resident_kib(pid))
    return rows / (time.perf_counter() - began), rows, before, peak


async def run(rows: int, seconds: float, verdict: Verdict) -> None:
    with tempfile.TemporaryDirectory(prefix="lwork-boss-bench-") as tmp:
        began = time.perf_counter()
        await fill(f"sqlite+aiosqlite:///{Path(tmp) / 'lwork.db'}", rows)
        print(f"{rows} CDRs written in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        port = free_port()
        env = {**os.environ, "LWORK_DATA_DIR": tmp, "LWORK_DATABASE__URL": "",
               "LWORK_BOSS__KEYS": json.dumps({KEY: [SECRET]}),
               "LWORK_BOSS__ALLOWED_SOURCES": '["127.0.0.1/32"]', "LWORK_LOG_LEVEL": "WARNING",
               "LWORK_MEDIA__RELAY_MODE": "inline"}  # fmt: skip
        server = subprocess.Popen([sys.executable, "-m", "lwork", "serve", "--port", str(port)],
                                  env=env)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=600) as client:
                for _ in range(300):
                    try:
                        if (await client.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                path, body, headers = signed("open", {"request_id": "o", "account": ACCOUNT,
                                                      "pwd": "bench-pw"})  # fmt: skip
                opened = await client.post(base + path, content=body, headers=headers)
                verdict.require(opened.status_code == 200, "signed_minutes", opened.text)

                bare, bare_done, bare_failed = await rate(client, base, seconds, False)
                boss, boss_done, boss_failed = await rate(client, base, seconds, True)
                verdict.none_failed("signed_minutes", "requests", bare_failed + boss_failed)
                verdict.some("signed_minutes", "answered requests", boss_done)
                verdict.emit({"figure": "signed_minutes", "requests_per_s": round(boss),
                              "bare_healthz_per_s": round(bare),
                              "ratio": round(boss / bare, 3) if bare else None,
                              "clients": CLIENTS})  # fmt: skip

                per_s, streamed, before, peak = await stream_all(client, base, server.pid)
                verdict.require(streamed == rows, "cdrs_stream", f"{streamed} of {rows} rows")
                verdict.emit({"figure": "cdrs_stream", "rows": streamed, "rows_per_s": round(per_s),
                              "rss_before_mib": round(before / 1024, 1),
                              "rss_peak_mib": round(peak / 1024, 1),
                              "rss_growth_mib": round((peak - before) / 1024, 1)})  # fmt: skip
        finally:
            stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="20,000 CDRs, 1 s of requests")
    args = parser.parse_args()
    rows, seconds = (20_000, 1.0) if args.smoke else (args.rows, args.seconds)
    verdict = Verdict("boss_bench")
    asyncio.run(run(rows, seconds, verdict))
    verdict.conclude(["signed_minutes", "cdrs_stream"])


if __name__ == "__main__":
    main()
