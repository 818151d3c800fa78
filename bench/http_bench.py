"""HTTP benchmarks of the server foundation (issue 2). Run by hand from the repository root:

    .venv/bin/python -m bench.http_bench [--seconds 4] [--rounds 3] [--smoke]

Prints one JSON line per figure, each with the reference measured in the same run:

* requests/s of ``GET /lwork/mobile/version_dth_no`` and ``POST /lwork/mobile/query_status``
  (20 users: online, offline, unregistered) as a ratio to a bare Starlette JSON endpoint served
  by the same uvicorn process (``bench.http_server``);
* login latency and logins/s with the configured Argon2id parameters, against the cost of one
  raw argon2-cffi verify with the same parameters;
* a login flood: ``GET /healthz`` latency from a separate probe process during the flood (vs.
  idle), and how many logins the bounded hash queue refused with 429.

Exits 1, saying why on stderr, when requests failed (connection errors, unexpected statuses,
``{"status":"failed"}`` answers where ``ok`` was due), a run served nothing, or a figure is
missing. ``--smoke``: one-second runs, one round, on the same code path, for CI.

The server runs in its own process pinned to core 0; the load generator (``wrk`` if installed,
else ``bench._load``) is pinned to core 1. Only 127.0.0.1 is used; every run is time-bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from bench._load import build_request, closed_loop, percentile, read_response, stop_process
from bench._verdict import Verdict
from bench.http_server import BARE_PATH
from lwork.accounts.store import Account, Session
from lwork.app import build_app
from lwork.appversions import VersionResponse
from lwork.ids import new_token, token_digest
from lwork.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
PWD = "e10adc3949ba59abbe56e057f20f883e"  # md5("123456"), what the apps send
VERSION_PATH = "/lwork/mobile/version_dth_no"
QUERY_PATH = "/lwork/mobile/query_status"
LOGIN_PATH = "/lwork/mobile/login"
ONLINE = [f"1380000{i:04d}" for i in range(8)]
OFFLINE = [f"1381000{i:04d}" for i in range(6)]
UNREGISTERED = [f"1382000{i:04d}" for i in range(6)]
LOGIN_CLIENTS = 8
FLOOD_CLIENTS = 200
WRK_CONNECTIONS = 32
OK_PREFIX = '{"status":"ok"'


def settings_overrides(data_dir: Path) -> dict[str, Any]:
    """Defaults everywhere except limits that would otherwise measure the limiter."""
    return {
        "data_dir": str(data_dir),
        "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'lwork.db'}"},
        "sms": {"provider": "log"},
        "http": {"ip_rate_per_minute": 10_000_000},
        # Raised so that a login flood is refused by the bounded hash queue, not the per-IP cap.
        "auth": {"login_per_minute_per_ip": 10_000_000},
        # Sessions created at set-up stay "online" however long the run.
        "presence": {"window_s": 3600.0},
    }


def query_body() -> bytes:
    users = [*ONLINE, *OFFLINE, *UNREGISTERED]
    # Interleave so the answer is not three sorted blocks.
    ordered = [users[i] for i in sorted(range(len(users)), key=lambda i: (i * 7) % len(users))]
    return json.dumps({"users": [{"acc": f"a{p[-4:]}", "phone": p} for p in ordered]}).encode()


def login_account(i: int) -> str:
    return f"1390000{i:04d}"


def login_body(i: int) -> bytes:
    body = {
        "acc": login_account(i),
        "pwd": PWD,
        "device_id": f"bench-{i}",
        "clidata": {"os_type": "android"},
    }
    return json.dumps(body).encode()


async def populate(settings: Settings) -> str:
    """Accounts, sessions and version data, written through lwork's own services."""
    app, services = build_app(settings)
    async with app.router.lifespan_context(app):
        pwd_hash = await services.passwords.hash(PWD)
        store = services.account_store
        now = time.time()
        phones = [*ONLINE, *OFFLINE, *(login_account(i) for i in range(FLOOD_CLIENTS))]
        for n, phone in enumerate(phones):
            await store.create(Account(phone, phone, f"user{n}", pwd_hash, "common", None), now)
        for phone in ONLINE + OFFLINE[:3]:
            session = Session(token_digest(new_token()), phone, "dev", "android", now)
            await store.start_session(session, now)
            if phone in ONLINE:  # online = the live session long-polled within the window
                await store.touch_poll(session.token_hash, now, "127.0.0.1")
        # Half the offline users logged out; the other half never logged in.
        for phone in OFFLINE[:3]:
            await store.end_sessions(phone, now, "logout")
        version = VersionResponse(
            i_version_no="3.2.1",
            i_version_path="itms-services://?action=download-manifest&url=https://example.org/i.plist",
            i_version_info="iOS 3.2.1: call quality fixes",
            version_no="3.2.0",
            version_path="https://example.org/download/lwork-3.2.0.apk",
            version_info="Android 3.2.0\n- faster login\n- fewer dropped calls",
        )
        await services.versions.set("dth", version)
        return services.passwords.parameters


# process placement


def can_pin() -> bool:
    return (os.cpu_count() or 1) >= 2


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if can_pin() and shutil.which("taskset") else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def get(port: int, path: str) -> tuple[int, bytes]:
    return await request(port, build_request("GET", path))


async def request(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await read_response(reader)
    finally:
        writer.close()


@contextmanager
def server(settings_file: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [*pinned(0), sys.executable, "-m", "bench.http_server", str(settings_file), str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if asyncio.run(get(port, "/healthz"))[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc, 10)


# throughput

WRK_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx_3xx", "not_ok")
"""The counts in wrk_report.lua's summary that each mean a request failed."""


def run_wrk(
    port: int, path: str, script: Path, connections: int, seconds: float, env: dict[str, str]
) -> dict[str, Any]:
    """One wrk run (one thread on core 1) with ``script`` (ending in wrk_report.lua); its
    requests/s, latency percentiles and failed requests."""
    cmd = [*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    report = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
    return {
        "rps": report["wrk_requests"] / (report["duration_us"] / 1e6),
        "p50_ms": report["p50_us"] / 1e3,
        "p99_ms": report["p99_us"] / 1e3,
        "errors": sum(report[k] for k in WRK_ERRORS),
    }


def throughput(
    port: int, method: str, path: str, body: bytes | None, seconds: float, wrk: bool,
    ok_prefix: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Requests/s of one endpoint at saturation, with wrk or the asyncio fallback. With
    ``ok_prefix``, an answer whose body does not start with it counts as an error."""
    if wrk:
        env = {**os.environ, "WRK_METHOD": method, "WRK_BODY": (body or b"").decode(),
               "WRK_OK_PREFIX": ok_prefix}  # fmt: skip
        return run_wrk(port, path, WRK_SCRIPT, WRK_CONNECTIONS, seconds, env)
    raw = build_request(method, path, body)
    result = run_async(closed_loop(port, [raw] * WRK_CONNECTIONS, seconds))
    not_ok = result.count - result.ok_bodies if ok_prefix == OK_PREFIX else 0
    return {
        "rps": result.count / result.elapsed,
        "p50_ms": percentile(result.latencies, 50) * 1e3,
        "p99_ms": percentile(result.latencies, 99) * 1e3,
        "errors": result.errors + result.count - result.statuses[200] + not_ok,
    }


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


def expect(condition: bool, detail: object) -> None:
    if not condition:
        raise RuntimeError(f"unexpected answer, the figures would be meaningless: {detail!r}")


def check_answers(port: int) -> None:
    """The measured endpoints answer what they should (not a cheap error path)."""
    status, body = asyncio.run(get(port, VERSION_PATH))
    expect(status == 200 and json.loads(body).get("version_no") == "3.2.0", body)
    status, body = asyncio.run(request(port, build_request("POST", QUERY_PATH, query_body())))
    expect(status == 200, body)
    states = {u["phone"]: u["state"] for u in json.loads(body)["data"]}
    expected = {
        **dict.fromkeys(ONLINE, "online"),
        **dict.fromkeys(OFFLINE, "offline"),
        **dict.fromkeys(UNREGISTERED, "unregistered"),
    }
    expect(states == expected, states)
    status, body = asyncio.run(get(port, BARE_PATH))
    expect(status == 200, body)


def http_figures(
    port: int, seconds: float, rounds: int, wrk: bool, context: dict[str, Any]
) -> None:
    """Each lwork run sits between two bare runs; its ratio is to their mean, so a machine whose
    load drifts (other jobs on the host) biases neither side. Figures are medians over rounds."""
    # The version answer has no status field (the apps' format); check_answers read it once.
    bare = ("GET", BARE_PATH, None, OK_PREFIX)
    measured = {
        "version_dth_no": (("GET", VERSION_PATH, None, ""), 0.6),
        "query_status_20": (("POST", QUERY_PATH, query_body(), OK_PREFIX), 0.4),
    }
    for method, path, body, _ in [bare, *(e for e, _ in measured.values())]:  # warm-up
        throughput(port, method, path, body, 1.0, wrk)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in measured}
    ratios: dict[str, list[float]] = {name: [] for name in measured}
    bare_runs = [throughput(port, *bare[:3], seconds, wrk, bare[3])]
    for _ in range(rounds):
        for name, (endpoint, _) in measured.items():
            runs[name].append(throughput(port, *endpoint[:3], seconds, wrk, endpoint[3]))
            bare_runs.append(throughput(port, *bare[:3], seconds, wrk, bare[3]))
            reference = (bare_runs[-2]["rps"] + bare_runs[-1]["rps"]) / 2
            ratios[name].append(runs[name][-1]["rps"] / reference)
    bare_rps = statistics.median(r["rps"] for r in bare_runs)
    for name, ((_, path, _, _), target) in measured.items():
        ratio = statistics.median(ratios[name])
        emit(
            {
                "figure": f"rps_{name}",
                "path": path,
                "value": round(statistics.median(r["rps"] for r in runs[name])),
                "unit": "requests/s",
                "reference": "bare Starlette JSON endpoint, same process, runs before and after",
                "reference_value": round(bare_rps),
                "ratio": round(ratio, 3),
                "target_ratio": target,
                "met": ratio >= target,
                "round_ratios": [round(r, 3) for r in ratios[name]],
                "runs_rps": [round(r["rps"]) for r in runs[name]],
                "bare_runs_rps": [round(r["rps"]) for r in bare_runs],
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs[name]), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs[name]), 2),
                "bare_p50_ms": round(statistics.median(r["p50_ms"] for r in bare_runs), 2),
                "errors": sum(r["errors"] for r in runs[name]),
                "seconds_per_run": seconds,
                **context,
            }
        )
        verdict.none_failed(f"rps_{name}", "requests", sum(r["errors"] for r in runs[name]))
        verdict.some(f"rps_{name}", "requests served", min(r["rps"] for r in runs[name]))
    verdict.none_failed("rps_bare", "bare requests", sum(r["errors"] for r in bare_runs))
    verdict.some("rps_bare", "bare requests served", min(r["rps"] for r in bare_runs))


# login


def verify_ms(hasher: PasswordHasher, repeats: int) -> float:
    stored = hasher.hash(PWD)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hasher.verify(stored, PWD)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def probe(port: int, seconds: float) -> subprocess.Popen[bytes]:
    """/healthz latency from a separate process: not skewed by the flood client's loop."""
    cmd = [*pinned(1), sys.executable, "-m", "bench._load", "probe", str(port), "/healthz"]
    return subprocess.Popen([*cmd, f"{seconds:g}"], cwd=ROOT, stdout=subprocess.PIPE)


def probe_result(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def login_figures(
    port: int, settings: Settings, parameters: str, seconds: float, context: dict[str, Any]
) -> None:
    auth = settings.auth
    configured = PasswordHasher(
        time_cost=auth.argon2_time_cost,
        memory_cost=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    )
    ref_ms = verify_ms(configured, 20)
    library_default_ms = verify_ms(PasswordHasher(), 5)
    # The server is pinned to one core: its hash threads share it, so one verify at a time.
    server_cores = 1 if pinned(0) else os.cpu_count() or 1
    ceiling = min(server_cores, auth.hash_workers) * 1e3 / ref_ms
    common = {
        "argon2": parameters,
        "hash_workers": auth.hash_workers,
        "hash_queue": auth.hash_queue,
        "reference": "one raw argon2-cffi verify, same parameters, same run (load-generator core)",
        "reference_verify_ms": round(ref_ms, 2),
        "library_default_verify_ms": round(library_default_ms, 2),
        "library_default_params": "argon2id t=3 m=65536KiB p=4",
        **context,
    }

    bodies = [build_request("POST", LOGIN_PATH, login_body(i)) for i in range(LOGIN_CLIENTS)]
    steady = run_async(closed_loop(port, bodies, seconds))
    ok = steady.latencies_of(200)
    emit(
        {
            "figure": "login_steady",
            "clients": LOGIN_CLIENTS,
            "seconds": seconds,
            "elapsed_incl_drain_s": round(steady.elapsed, 2),
            "logins_per_s": round(steady.ok_bodies / steady.elapsed, 2),
            "p50_ms": round(percentile(ok, 50) * 1e3, 1),
            "p99_ms": round(percentile(ok, 99) * 1e3, 1),
            "ceiling_logins_per_s": round(ceiling, 2),
            "ratio_to_ceiling": round(steady.ok_bodies / steady.elapsed / ceiling, 3),
            "p50_over_verify": round(percentile(ok, 50) * 1e3 / ref_ms, 2),
            "statuses": {str(k): v for k, v in steady.statuses.items()},
            "ok_logins": steady.ok_bodies,
            "errors": steady.errors,
            **common,
        }
    )
    verdict.none_failed("login_steady", "connections", steady.errors)
    verdict.some("login_steady", "logins", steady.ok_bodies)
    verdict.require(
        steady.ok_bodies == steady.count,
        "login_steady",
        f"{steady.count - steady.ok_bodies} of {steady.count} logins not ok: "
        f"{ {k: v[:200] for k, v in steady.samples.items()} }",
    )

    idle = probe_result(probe(port, 3.0), 30)
    flood_bodies = [build_request("POST", LOGIN_PATH, login_body(i)) for i in range(FLOOD_CLIENTS)]
    prober = probe(port, seconds)
    flood = run_async(closed_loop(port, flood_bodies, seconds))
    during = probe_result(prober, seconds + 30)
    admitted = flood.latencies_of(200)
    refused = flood.latencies_of(429)
    emit(
        {
            "figure": "login_flood",
            "clients": FLOOD_CLIENTS,
            "seconds": seconds,
            "elapsed_incl_drain_s": round(flood.elapsed, 2),
            "requests": flood.count,
            "requests_per_s": round(flood.rate),
            "logins_per_s": round(flood.ok_bodies / flood.elapsed, 2),
            "ceiling_logins_per_s": round(ceiling, 2),
            "refused_429": len(refused),
            "statuses": {str(k): v for k, v in flood.statuses.items()},
            "errors": flood.errors,
            "admitted_p50_ms": round(percentile(admitted, 50) * 1e3, 1),
            "admitted_p99_ms": round(percentile(admitted, 99) * 1e3, 1),
            "refused_p50_ms": round(percentile(refused, 50) * 1e3, 2),
            "healthz_during_flood_p50_ms": round(during["p50_ms"], 2),
            "healthz_during_flood_p99_ms": round(during["p99_ms"], 2),
            "healthz_during_flood_max_ms": round(during["max_ms"], 2),
            "healthz_during_flood_statuses": during["statuses"],
            "healthz_all_ok": set(during["statuses"]) == {"200"} and not during["errors"],
            "healthz_idle_p50_ms": round(idle["p50_ms"], 2),
            "healthz_idle_p99_ms": round(idle["p99_ms"], 2),
            **common,
        }
    )
    verdict.none_failed("login_flood", "connections", flood.errors)
    verdict.some("login_flood", "logins", flood.ok_bodies)
    verdict.require(
        set(flood.statuses) <= {200, 429},
        "login_flood",
        f"statuses other than 200 and 429: {dict(flood.statuses)}",
    )
    verdict.require(
        set(during["statuses"]) == {"200"} and not during["errors"] and idle["count"] > 0,
        "login_flood",
        f"/healthz probe: idle {idle}, during the flood {during}",
    )


verdict = Verdict("http")
emit = verdict.emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--only", choices=["http", "login"], help="run one part only")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    parser.add_argument(
        "--load",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="throughput load generator (default: wrk if installed)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.rounds = 1.0, 1
    wrk = args.load == "wrk"
    if can_pin():
        os.sched_setaffinity(0, {1})  # this process generates load (login, fallback client)
    core1 = ", core 1" if pinned(1) else ", unpinned"
    context = {
        "db": "sqlite",
        "server": "1 uvicorn worker, uvloop, httptools, access log off"
        + (", core 0" if pinned(0) else ", unpinned"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "smoke": args.smoke,
    }
    load = f"wrk -t1 -c{WRK_CONNECTIONS}" if wrk else f"bench._load, {WRK_CONNECTIONS} connections"
    http_context = {**context, "load": load + core1}
    login_context = {**context, "load": "bench._load closed loop" + core1}
    with tempfile.TemporaryDirectory(prefix="lwork-bench-") as tmp:
        data_dir = Path(tmp)
        overrides = settings_overrides(data_dir)
        settings = Settings(**overrides)
        parameters = asyncio.run(populate(settings))
        settings_file = data_dir / "settings.json"
        settings_file.write_text(json.dumps(overrides))
        port = free_port()
        expected = []
        with server(settings_file, port):
            check_answers(port)
            if args.only != "login":
                expected += ["rps_version_dth_no", "rps_query_status_20"]
                http_figures(port, args.seconds, args.rounds, wrk, http_context)
            if args.only != "http":
                expected += ["login_steady", "login_flood"]
                login_figures(port, settings, parameters, args.seconds, login_context)
    verdict.conclude(expected)


if __name__ == "__main__":
    main()
