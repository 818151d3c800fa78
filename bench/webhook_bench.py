"""The CDR webhook (CONTRACT §9): closed call records delivered to a BOSS that fails a third of
its requests, against the same run with a BOSS that never fails.

    python -m bench.webhook_bench              # 10,000 records a run
    python -m bench.webhook_bench --smoke      # 200: exits non-zero on any failure

lwork runs in this process on SQLite in a temporary directory; its records are closed through
the store calls close them with (``RecordStore.close``: the outbox row in the closing
transaction), 100 accounts side by side, not by placing 10,000 real calls. The BOSS is
``tests/fakes/webhook_receiver.py`` on a loopback socket, checking every signature. Figures,
one JSON line each:

* ``webhook_reliable``: records delivered per second and the time from the first close until
  the outbox is empty, the BOSS answering every request 2xx (the reference);
* ``webhook_flaky``: the same with every third request answered 503, each record retried with
  backoff: every record must arrive (exactly once after removing duplicates by ``id``), each
  account's in the order closed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench._verdict import Verdict
from lwork.app import build_app
from lwork.calls.records import CallRecord
from lwork.settings import Settings
from lwork.storage.tables import cdr_outbox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes.webhook_receiver import WebhookReceiver, webhook_receiver

KEY_ID, SECRET = "billing", "bench-webhook-secret-0123456789"
ACCOUNTS = 100
verdict = Verdict("webhook")


def record(n: int) -> CallRecord:
    now = time.time()
    account = f"1380000{n % ACCOUNTS:04d}"
    return CallRecord(id=f"bench-{n:07d}", account=account, kind="out", caller=account,
                      callee="02079460000", caller_id=account, started_at=now - 60,
                      answered_at=now - 50, ended_at=now, end_reason="hangup_caller")  # fmt: skip


async def run(name: str, count: int, receiver: WebhookReceiver, data_dir: Path) -> None:
    data_dir.mkdir()
    async with webhook_receiver(receiver):
        settings = Settings(
            data_dir=str(data_dir), log_level="ERROR",
            database={"url": f"sqlite+aiosqlite:///{data_dir / 'lwork.db'}"},
            boss={"keys": {KEY_ID: [SECRET]}, "cdr_webhook_url": receiver.url,
                  "cdr_webhook_backoff_s": 0.05, "cdr_webhook_backoff_max_s": 0.5},
        )  # fmt: skip
        app, services = build_app(settings)
        async with app.router.lifespan_context(app):
            records = services.records
            assert records is not None
            began = time.perf_counter()

            async def account(first: int) -> None:
                for n in range(first, count, ACCOUNTS):
                    await records.close(record(n), None, time.time())

            await asyncio.gather(*(account(a) for a in range(min(ACCOUNTS, count))))
            closed_s = time.perf_counter() - began
            deadline = began + 60 + count / 20
            depth = count
            while time.perf_counter() < deadline:
                async with services.engine.connect() as conn:
                    depth = int(
                        await conn.scalar(select(func.count()).select_from(cdr_outbox)) or 0
                    )
                if depth == 0:
                    break
                await asyncio.sleep(0.1)
            drained_s = time.perf_counter() - began
    ids = receiver.ids()
    unique = set(ids)
    missing = count - len(unique)
    firsts: dict[int, list[str]] = {}  # each account's records, in the order they first came
    for received in dict.fromkeys(ids):
        firsts.setdefault(int(received.split("-")[1]) % ACCOUNTS, []).append(received)
    in_order = all(ids_of == sorted(ids_of) for ids_of in firsts.values())
    figure: dict[str, Any] = {
        "figure": name, "records": count, "accounts": ACCOUNTS,
        "value": round(count / drained_s, 1),
        "unit": "records delivered/s (first close to empty outbox)",
        "drained_s": round(drained_s, 2), "closed_s": round(closed_s, 2),
        "requests": receiver.requests, "refused_503": receiver.refused,
        "duplicates": len(ids) - len(unique), "missing": missing, "in_order_per_account": in_order,
        "bad_signatures": receiver.bad_signatures, "db": "sqlite",
    }  # fmt: skip
    verdict.emit(figure)
    verdict.require(missing == 0 and depth == 0, name, f"{missing} records never arrived")
    verdict.require(in_order, name, "an account's records arrived out of order")
    verdict.none_failed(name, "bad signatures", receiver.bad_signatures)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true", help="200 records, for CI")
    args = parser.parse_args()
    count = 200 if args.smoke else args.records
    with tempfile.TemporaryDirectory(prefix="lwork-webhook-bench-") as name:
        reliable = WebhookReceiver(KEY_ID, SECRET)
        asyncio.run(run("webhook_reliable", count, reliable, Path(name) / "a"))
        flaky = WebhookReceiver(KEY_ID, SECRET, fail=lambda n: n % 3 == 2)
        asyncio.run(run("webhook_flaky", count, flaky, Path(name) / "b"))
    verdict.conclude(["webhook_reliable", "webhook_flaky"])


if __name__ == "__main__":
    main()
