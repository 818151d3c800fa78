"""What the fraud guard adds to each call start. Run by hand from the repository root:

    .venv/bin/python -m bench.fraud_bench [--calls 300]

Prints one JSON line per ``env``: the mean time of ``FraudService.check_call`` on a SQLite
database (development: destinations and blocks; production defaults: also the daily cap from
the ledger and the spending rate from the call records; counting is off so that no alarm cuts
the loop short), with one ``accounts.group`` lookup (one indexed read) as the reference
measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from lwork.app import build_app
from lwork.settings import Settings
from lwork.storage.engine import migrate


async def measure(env: str, calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        sms = {"provider": "http", "gateway_url": "http://127.0.0.1:9/send"}
        no_counting = {"common": {"calls_per_minute": 0}, "prefix_calls_per_minute": 0}
        settings = Settings(env=env, data_dir=data_dir, sms=sms, fraud=no_counting)
        _, services = build_app(settings)
        try:
            await migrate(services.engine)
            start = time.perf_counter()
            for _ in range(calls):
                await services.accounts.group("13800000001")
            reference = (time.perf_counter() - start) / calls
            start = time.perf_counter()
            for _ in range(calls):
                await services.fraud.check_call("13800000001", "13900000002")
            guard = (time.perf_counter() - start) / calls
        finally:
            services.passwords.close()
            await services.engine.dispose()
    return {"figure": "fraud_check_call_ms", "env": env, "value": round(guard * 1000, 3),
            "reference_one_read_ms": round(reference * 1000, 3)}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    for env in ("development", "production"):
        print(json.dumps(await measure(env, args.calls)))


if __name__ == "__main__":
    asyncio.run(main())
