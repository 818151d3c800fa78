"""What the machine-wide rate limits cost (issue 17). Run by hand from the repository root:

    .venv/bin/python -m bench.limits_bench [--seconds 5] [--rounds 3] [--workers 2]

Two ``lwork serve`` with ``http.workers`` side by side, the same but for ``http.shared_limits``
(on: the workers exchange their counts every 0.1 s; off: each counts alone, as before), and
``wrk`` against ``GET /lwork/mobile/version_dth_no`` (rate limited like every API route) of
each in turn, ``--rounds`` times, so both see the same machine. Two loads: every request from
one client address, and every request from another one (``X-Forwarded-For``), which makes
every request a new key for the workers to exchange. The limit is set out of reach: this
measures the counting, not refusals. Prints one JSON line per load with the requests/s of both,
the CPU time of each server's processes per 1,000 requests (steadier than requests/s when other
work shares the machine), and the ratios. Only 127.0.0.1; each wrk run lasts ``--seconds``.
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
from bench._push_procs import tree_cpu_s
from bench.http_bench import WRK_SCRIPT, free_port, get, run_async, run_wrk

ROOT = Path(__file__).resolve().parent.parent
ADDRESSES_SCRIPT = Path(__file__).resolve().parent / "wrk_addresses.lua"
PATH = "/lwork/mobile/version_dth_no"
CONNECTIONS = 32


@contextlib.contextmanager
def serve(data_dir: Path, port: int, workers: int, shared: bool, ports: int) -> Iterator[int]:
    """``lwork serve`` with every worker answering; yields the supervisor's pid."""
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
        yield proc.pid
    finally:
        stop_process(proc, 20)


def measure(port: int, pid: int, script: Path, seconds: float) -> tuple[float, float]:
    """Requests/s, and CPU-ms of the server's processes per 1,000 requests (steadier than
    requests/s on a machine that other work shares)."""
    env = {**os.environ, "WRK_REPORT": str(WRK_SCRIPT)}
    cpu = tree_cpu_s(pid)
    result = run_wrk(port, PATH, script, CONNECTIONS, seconds, env)
    cpu = tree_cpu_s(pid) - cpu
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed")
    rps = float(result["rps"])
    return rps, cpu * 1e3 / (rps * seconds / 1e3)


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
            pids = {}
            for n, shared in enumerate(ports):
                pids[shared] = stack.enter_context(
                    serve(dirs[shared], ports[shared], args.workers, shared, 42000 + 1000 * n)
                )
            for shared in ports:  # warm-up
                measure(ports[shared], pids[shared], WRK_SCRIPT, 1.0)
            runs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
            for n in range(args.rounds):
                for load, script in loads.items():
                    for shared in (True, False) if n % 2 else (False, True):  # either first
                        run = measure(ports[shared], pids[shared], script, args.seconds)
                        runs.setdefault((load, shared), []).append(run)
    for load in loads:
        rps = {s: statistics.median(r for r, _ in runs[(load, s)]) for s in (True, False)}
        cpu = {s: statistics.median(c for _, c in runs[(load, s)]) for s in (True, False)}
        print(json.dumps({
            "figure": f"limits_{load}", "workers": args.workers,
            "rps_shared": round(rps[True]), "rps_alone": round(rps[False]),
            "ratio_rps_shared_to_alone": round(rps[True] / rps[False], 3),
            "cpu_ms_per_1000_shared": round(cpu[True], 1),
            "cpu_ms_per_1000_alone": round(cpu[False], 1),
            "ratio_cpu_shared_to_alone": round(cpu[True] / cpu[False], 3),
            "runs_rps_shared": [round(r) for r, _ in runs[(load, True)]],
            "runs_rps_alone": [round(r) for r, _ in runs[(load, False)]],
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }))  # fmt: skip


if __name__ == "__main__":
    main()
