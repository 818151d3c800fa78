"""The CDR webhook under real calls, for ``bench.sip_bench --webhook``: the server sends each
closed call record to a BOSS that answers every third request 503, and after the run every
record the database closed must have arrived (exactly once once duplicates are removed by
``id``), each account's in the order the database closed them.

The BOSS is ``tests/fakes/webhook_receiver.py``, which checks every signature with its own HMAC.
It runs in a thread of this process with its own event loop, so it answers while the calls are
driven.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes.webhook_receiver import WebhookReceiver, webhook_receiver

KEY_ID, SECRET = "billing", "bench-webhook-secret-0123456789"
FAIL_EVERY = 3


def webhook_overrides(url: str) -> dict[str, Any]:
    return {"boss": {"keys": {KEY_ID: [SECRET]}, "cdr_webhook_url": url,
                     "cdr_webhook_backoff_s": 0.05, "cdr_webhook_backoff_max_s": 0.5}}  # fmt: skip


@contextlib.contextmanager
def flaky_boss() -> Iterator[WebhookReceiver]:
    """A BOSS answering every third request 503, on a loopback socket, in its own thread."""
    receiver = WebhookReceiver(KEY_ID, SECRET, fail=lambda n: n % FAIL_EVERY == FAIL_EVERY - 1)
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with webhook_receiver(receiver):
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(20):
        raise RuntimeError("the webhook receiver did not start")
    try:
        yield receiver
    finally:
        stop.set()
        thread.join(10)


def closed_records(database: Path) -> tuple[list[tuple[str, str]], int]:
    """Every closed record (account, id) in closing order, and the outbox's depth."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT uuid, id FROM cdrs WHERE ended_at IS NOT NULL ORDER BY ended_at"
        ).fetchall()
        depth = db.execute("SELECT count(*) FROM cdr_outbox").fetchone()[0]
    return [(str(uuid), str(id_)) for uuid, id_ in rows], int(depth)


def drain(database: Path, receiver: WebhookReceiver, calls: int, wait_s: float) -> dict[str, Any]:
    """Wait until the outbox is empty (or ``wait_s``), then compare what the BOSS received with
    what the database closed."""
    began = time.perf_counter()
    depth = -1
    while time.perf_counter() - began < wait_s:
        _, depth = closed_records(database)
        if depth == 0:
            break
        time.sleep(0.5)
    closed, depth = closed_records(database)
    ids = receiver.ids()
    unique = set(ids)
    expected = {record_id for _, record_id in closed}
    arrival = list(dict.fromkeys(ids))
    position = {record_id: n for n, record_id in enumerate(arrival)}
    per_account: dict[str, list[str]] = {}
    for account, record_id in closed:
        per_account.setdefault(account, []).append(record_id)
    in_order = all(
        [position[r] for r in records if r in position]
        == sorted(position[r] for r in records if r in position)
        for records in per_account.values()
    )
    return {
        "figure": "webhook_under_calls",
        "calls": calls,
        "records_closed": len(closed),
        "records_received": len(unique & expected),
        "missing": len(expected - unique),
        "unknown": len(unique - expected),
        "duplicates": len(ids) - len(unique),
        "requests": receiver.requests,
        "refused_503": receiver.refused,
        "bad_signatures": receiver.bad_signatures,
        "in_order_per_account": in_order,
        "outbox_depth_after": depth,
        "drained_after_calls_s": round(time.perf_counter() - began, 1),
        "boss": f"every {FAIL_EVERY}rd request answered 503",
    }
