"""A small closed-loop HTTP/1.1 load client on raw asyncio sockets (keep-alive, no pipelining).

httpx costs more CPU per request than the server under test, so it cannot saturate it; this
client writes pre-built request bytes and parses only the status line and Content-Length. It is
the fallback when ``wrk`` is missing and the client of the login benchmark, which needs the
status and latency of every request.

Also runnable as a separate probe process (so its latencies are not inflated by the flood
client's event loop)::

    python -m bench._load probe PORT PATH SECONDS
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

HOST = "127.0.0.1"


def build_request(method: str, path: str, body: bytes | None = None) -> bytes:
    """One keep-alive HTTP/1.1 request, as bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class LoadResult:
    """Every completed request of a run: latency (seconds) and status, plus one sample body."""

    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    status_of: list[int] = field(default_factory=list)
    samples: dict[int, bytes] = field(default_factory=dict)
    errors: int = 0
    ok_bodies: int = 0
    """Answers whose JSON starts with ``{"status":"ok"``: successes, as opposed to ``failed``."""

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def statuses(self) -> Counter[int]:
        return Counter(self.status_of)

    def latencies_of(self, status: int) -> list[float]:
        return [lat for lat, st in zip(self.latencies, self.status_of, strict=True) if st == status]

    def record(self, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        self.status_of.append(status)
        self.samples.setdefault(status, body)
        if body.startswith(b'{"status":"ok"'):
            self.ok_bodies += 1


def stop_process(proc: subprocess.Popen[bytes], wait_s: float = 15) -> None:
    """Terminate a benchmark child, and kill it if it does not go within ``wait_s``."""
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length")
    return status, await reader.readexactly(length)


async def _connection(
    request: bytes, deadline: float, result: LoadResult, pause: float, port: int
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status, body = await read_response(reader)
            result.record(time.perf_counter() - start, status, body)
            if pause:
                await asyncio.sleep(pause)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1
    finally:
        writer.close()


async def closed_loop(
    port: int, requests: Sequence[bytes], duration: float, pause: float = 0.0
) -> LoadResult:
    """One connection per request in ``requests``, each sending it again as soon as answered
    (after ``pause`` seconds), for ``duration`` seconds."""
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(*(_connection(r, deadline, result, pause, port) for r in requests))
    result.elapsed = time.perf_counter() - start
    return result


def _probe_main(port: int, path: str, duration: float) -> None:
    result = asyncio.run(closed_loop(port, [build_request("GET", path)], duration, pause=0.01))
    ok = result.latencies_of(200)
    print(
        json.dumps(
            {
                "count": result.count,
                "statuses": {str(k): v for k, v in result.statuses.items()},
                "errors": result.errors,
                "p50_ms": percentile(ok, 50) * 1e3,
                "p99_ms": percentile(ok, 99) * 1e3,
                "max_ms": max(ok, default=float("nan")) * 1e3,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "probe":
        sys.exit("usage: python -m bench._load probe PORT PATH SECONDS")
    _probe_main(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
