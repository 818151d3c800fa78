"""What the machine-wide rate limits cost (issue 17). Run by hand from the repository root:

    .venv/bin/python -m bench.limits_bench [--seconds 5] [--rounds 3] [--workers 2]

Two ``lwork serve`` with ``http.workers`` side by side, the same but for ``http.shared_limits``
(on: the workers exchange their counts every 0.1 s; off: each counts alone, as before), and
``wrk`` against ``GET /lwork/mobile/version_dth_no`` (rate limited like every API route) of
each in turn, ``--rounds`` times, so both see the same machine. Two loads: every request from
one client address, and every request from another one (``X-Forwarded-For``), which makes
every request a new key for the workers to exchange. The limit is set out of reach: this
measures the counting, not refusals. Prints one JSON line per load with the requests/s of both
and their ratio. Only 127.0.0.1; each wrk run lasts ``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench._load import stop_process
from bench.http_bench import WRK_SCRIPT, free_port, get, run_async, run_wrk

ROOT = Path(__file__).resolve().parent.parent
ADDRESSES_SCRIPT = Path(__file__).resolve().parent / "wrk_addresses.lua"
PATH = "/lwork/mobile/version_dth_no"
CONNECTIONS = 32


@contextlib.contextmanager
def serve(data_dir: Path, port: int, workers: int, shared: bool, ports: int) -> Iterator[None]:
    env = {
        **os.environ,
        "LWORK_DATA_DIR": str(data_dir),
        "LWORK_SMS__PROVIDER": "log",
        "LWORK_HTTP__WORKERS": str(workers),
        "LWORK_HTTP__SHARED_LIMITS": str(shared).lower(),
        "LWORK_HTTP__IP_RATE_PER_MINUTE": "1000000000",
        "LWORK_HTTP__TRUSTED_PROXIES": '["127.0.0.1"]',
        "LWORK_MEDIA__TRANSCODING": "false",
        "LWORK_MEDIA__PORT_MIN": str(ports),
        "LWORK_MEDIA__PORT_MAX": str(ports + 999),
        "LWORK_LOG_LEVEL": "WARNING",
    }
    log = (data_dir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        answered = 0
        while answered < 20:  # connections land on every worker: all are up
            with contextlib.suppress(OSError):
                answered = answered + 1 if run_async(get(port, "/readyz"))[0] == 200 else 0
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("lwork serve did not start: " + str(data_dir / "serve.log"))
            time.sleep(0.05)
        yield
    finally:
        stop_process(proc, 20)


def measure(port: int, script: Path, seconds: float) -> dict[str, float]:
    env = {**os.environ, "WRK_REPORT": str(WRK_SCRIPT)}
    result = run_wrk(port, PATH, script, CONNECTIONS, seconds, env)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--workers", type=int, default=2, help="http.workers of both servers")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("limits_bench needs wrk")
    loads = {"one_address": WRK_SCRIPT, "address_per_request": ADDRESSES_SCRIPT}
    with tempfile.TemporaryDirectory(prefix="lwork-limits-") as tmp:
        ports = {True: free_port(), False: free_port()}
        dirs = {shared: Path(tmp) / ("shared" if shared else "alone") for shared in ports}
        for path in dirs.values():
            path.mkdir()
        with contextlib.ExitStack() as stack:
            for n, shared in enumerate(ports):
                stack.enter_context(
                    serve(dirs[shared], ports[shared], args.workers, shared, 42000 + 1000 * n)
                )
            for shared in ports:  # warm-up
                measure(ports[shared], WRK_SCRIPT, 1.0)
            runs: dict[tuple[str, bool], list[float]] = {}
            for _ in range(args.rounds):
                for load, script in loads.items():
                    for shared in ports:
                        rps = measure(ports[shared], script, args.seconds)["rps"]
                        runs.setdefault((load, shared), []).append(rps)
    for load in loads:
        shared, alone = runs[(load, True)], runs[(load, False)]
        print(json.dumps({
            "figure": f"limits_{load}", "workers": args.workers,
            "rps_shared": round(statistics.median(shared)),
            "rps_alone": round(statistics.median(alone)),
            "ratio_shared_to_alone": round(statistics.median(shared) / statistics.median(alone), 3),
            "runs_shared": [round(x) for x in shared], "runs_alone": [round(x) for x in alone],
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }))  # fmt: skip


if __name__ == "__main__":
    main()
