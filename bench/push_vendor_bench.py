"""Benchmarks of the Chinese phone makers' push channels (issue 18). Run by hand from the
repository root:

    .venv/bin/python -m bench.push_vendor_bench [--seconds 2] [--concurrency 8]
                                                [--invitations 100] [--smoke]

Prints one JSON line per figure, each with a reference measured in the same run:

1. ``vendor_pushes_per_s`` (one line per provider: huawei, xiaomi, oppo, vivo, honor, jpush):
   call pushes delivered per second by lwork's provider (``GuardedProvider`` around the
   vendor's ``VendorProvider``: request building, the vendor's authentication, HTTPS, the answer's
   classification) against that vendor's HTTPS fake, which checks every request as the vendor
   documents; the reference is bare HTTPS round trips per second (``POST /_bench/bare``) to the
   same fake server with the same client and concurrency, measured just before. Beside it, the
   client's CPU per push (this process) and the fake's (its process), each with the reference's.
2. ``invitation_time_to_ring_ms`` (one line per channel: poll, huawei, jpush): from
   ``PushService.notify`` of a call invitation to the held long poll's answer received by the
   device, and to the vendor fake taking the message (its ``time.monotonic``, one clock for every
   process), p50/p99 over ``--invitations``; the reference is the poll's time to ring when the
   device has no vendor registration (the poll alone, as before racing).
3. ``racing_cpu_ms_per_invitation``: lwork's CPU per invitation (this process: the server, the
   device's poll, the providers) when it races three channels (held poll, Huawei, JPush), against
   the same with the poll alone.

The fakes (``bench._vendor_fakes``) run in their own process pinned to core 0; this process (the
providers, and lwork for figures 2 and 3, served by uvicorn on 127.0.0.1) is pinned to core 1.
The fakes' certificates come from a CA made for the run, which lwork trusts through
``outbound_ca_file``. Only 127.0.0.1 is used.

Exits 1, saying why on stderr, when any push or round trip failed, an invitation did not reach
every channel with the same ``session_id``, the fake saw a problem, or a figure is missing.
``--smoke``: one second per provider at concurrency 4 and 5 invitations, on the same code path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._push_procs import cpu_s, pinned
from lwork.outbound_tls import outbound_tls
from lwork.push.providers import GuardedProvider, PushMessage, PushProvider, PushTarget, RetryPolicy
from lwork.push.providers.honor import HonorProvider
from lwork.push.providers.huawei import HuaweiProvider
from lwork.push.providers.jpush import JPushProvider
from lwork.push.providers.oppo import OppoProvider
from lwork.push.providers.vivo import VivoProvider
from lwork.push.providers.xiaomi import XiaomiProvider
from lwork.settings import Settings
from lwork.settings.push import (
    HonorSettings,
    HuaweiSettings,
    JPushSettings,
    OppoSettings,
    VivoSettings,
    XiaomiSettings,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.servers import serve_asgi  # noqa: E402
from fakes.tls import lwork_ca  # noqa: E402

PROVIDERS: dict[str, tuple[Callable[..., Any], type[Any]]] = {
    "huawei": (HuaweiProvider, HuaweiSettings),
    "xiaomi": (XiaomiProvider, XiaomiSettings),
    "oppo": (OppoProvider, OppoSettings),
    "vivo": (VivoProvider, VivoSettings),
    "honor": (HonorProvider, HonorSettings),
    "jpush": (JPushProvider, JPushSettings),
}
PHONE = "13800138000"
PWD = "e10adc3949ba59abbe56e057f20f883e"
DEVICE = "bench-phone"
TOKEN = "device-token-1"


def emit(figure: dict[str, Any]) -> None:
    print(json.dumps(figure), flush=True)


def call_message(n: int) -> PushMessage:
    payload = {"event": "p2p_inform_called", "caller": "13900000000",
               "opdata": {"event": "p2p", "session_id": f"n1@@bench{n}"}}  # fmt: skip
    return PushMessage("p2p_inform_called", payload, kind="call")


@dataclass
class Fakes:
    process: subprocess.Popen[str]
    urls: dict[str, Any]

    def base(self, name: str) -> str:
        base: str = self.urls[name]["base_url"]
        return base

    def cpu(self) -> float:
        return cpu_s(self.process.pid)


def start_fakes() -> Fakes:
    ca = lwork_ca()
    cmd = [*pinned(0), sys.executable, "-m", "bench._vendor_fakes", str(ca.ca_file),
           str(ca.cert_file), str(ca.key_file)]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the vendor fakes did not start")
    return Fakes(process, json.loads(line))


def stop_fakes(fakes: Fakes) -> None:
    if fakes.process.stdin is not None:
        fakes.process.stdin.close()
    try:
        fakes.process.wait(10)
    except subprocess.TimeoutExpired:
        fakes.process.kill()
        fakes.process.wait(10)


@dataclass
class Run:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    fake_cpu_s: float = 0.0


async def drive(
    fakes: Fakes, seconds: float, concurrency: int, one: Callable[[int], Awaitable[str | None]]
) -> Run:
    """``concurrency`` workers call ``one`` until ``seconds`` have passed; ``one`` answers None
    on success, else why it failed."""
    run = Run()
    end = time.monotonic() + seconds

    async def worker(w: int) -> None:
        n = w
        while time.monotonic() < end:
            problem = await one(n)
            n += concurrency
            if problem is None:
                run.done += 1
            else:
                run.failed.append(problem)

    cpu, fake_cpu, began = time.process_time(), fakes.cpu(), time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    run.seconds = time.monotonic() - began
    run.client_cpu_s = time.process_time() - cpu
    run.fake_cpu_s = fakes.cpu() - fake_cpu
    return run


def per_op_us(cpu: float, done: int) -> float | None:
    return round(cpu / done * 1e6, 1) if done else None


async def provider_rates(
    fakes: Fakes, seconds: float, concurrency: int, failures: list[str]
) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=outbound_tls(lwork_ca().ca_file), limits=limits) as http:
        for name, (provider_class, settings_class) in PROVIDERS.items():
            settings = settings_class(**fakes.urls[name]["settings"])
            provider = GuardedProvider(provider_class(settings, http),
                                       policy=RetryPolicy(max_attempts=1))  # fmt: skip
            bare_url = fakes.base(name) + "/_bench/bare"

            async def bare(n: int, bare_url: str = bare_url) -> str | None:
                response = await http.post(bare_url, content=b'{"n":%d}' % n)
                return None if response.status_code == 200 else f"bare HTTP {response.status_code}"

            async def push(
                n: int, provider: PushProvider = provider, name: str = name
            ) -> str | None:
                target = PushTarget(name, f"device-{n % 64}")
                result = await provider.send(call_message(n), target)
                return None if result.delivered else f"{name}: {result.failure}"

            # Warm: connections open, the access token fetched (once a day at the vendor).
            await asyncio.gather(*(bare(n) for n in range(concurrency)))
            await asyncio.gather(*(push(n) for n in range(concurrency)))
            reference = await drive(fakes, seconds, concurrency, bare)
            measured = await drive(fakes, seconds, concurrency, push)
            failures += [f"{name} reference: {p}" for p in reference.failed[:3]]
            failures += [f"{name}: {p}" for p in measured.failed[:3]]
            if not measured.done:
                failures.append(f"{name}: nothing delivered")
            emit({
                "figure": "vendor_pushes_per_s", "provider": name,
                "value": round(measured.done / measured.seconds, 1), "unit": "pushes/s",
                "client_cpu_us_per_push": per_op_us(measured.client_cpu_s, measured.done),
                "fake_cpu_us_per_push": per_op_us(measured.fake_cpu_s, measured.done),
                "failed": len(measured.failed), "concurrency": concurrency,
                "reference": {
                    "name": "bare_https_round_trips_per_s",
                    "value": round(reference.done / reference.seconds, 1),
                    "client_cpu_us_per_round_trip": per_op_us(reference.client_cpu_s,
                                                              reference.done),
                    "fake_cpu_us_per_round_trip": per_op_us(reference.fake_cpu_s,
                                                            reference.done),
                    "failed": len(reference.failed),
                },
            })  # fmt: skip


class CapturedSms:
    """The server's SMS provider for the run: the code goes to the bench, not to a phone."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def send(self, phone: str, text: str, code: str) -> None:
        self.codes[phone] = code


def server_settings(data_dir: Path, fakes: Fakes) -> Settings:
    push = {"hold_s": 30, "huawei": fakes.urls["huawei"]["settings"],
            "jpush": fakes.urls["jpush"]["settings"]}  # fmt: skip
    return Settings(
        data_dir=data_dir, outbound_ca_file=lwork_ca().ca_file, push=push,
        auth={"argon2_memory_kib": 8192, "argon2_time_cost": 1},
        media={"relay_mode": "inline", "transcoding": False},
        http={"gc_freeze_survivors": False},
    )  # fmt: skip


async def raw_poll(host: str, port: int, body: dict[str, Any]) -> dict[str, Any]:
    """One long poll on a raw socket of its own, as a phone's app holds it. (Through httpx the
    answer of a held poll reached the caller about 40 ms after lwork sent it, on this machine;
    a socket reads it within a millisecond, so httpx's delay is not counted as lwork's.)"""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        payload = json.dumps(body).encode()
        writer.write(b"POST /channel/push_service HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (host.encode(), len(payload), payload))  # fmt: skip
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in head
                      if line.lower().startswith("content-length:"))  # fmt: skip
        answer: dict[str, Any] = json.loads(await reader.readexactly(length))
        return answer
    finally:
        writer.close()


Rounds = tuple[dict[str, list[float]], float, dict[str, float]]
"""Times to ring per channel (ms), CPU seconds, and when each invitation was sent."""


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def racing(fakes: Fakes, invitations: int, failures: list[str]) -> None:
    from lwork.app import build_app  # the server's import is long: only this figure needs it

    sms = CapturedSms()
    with tempfile.TemporaryDirectory(prefix="push-vendor-bench-") as data_dir:
        app, services = build_app(server_settings(Path(data_dir), fakes), sms=sms)
        trusting = outbound_tls(lwork_ca().ca_file)
        async with (
            serve_asgi(app) as url,
            httpx.AsyncClient(timeout=30) as client,
            httpx.AsyncClient(timeout=30, verify=trusting) as fake_client,
        ):
            await client.post(url + "/lwork/sms/auth_code", json={"uuid": PHONE,
                                                                 "type": "register"})  # fmt: skip
            body = {"uuid": PHONE, "device_id": DEVICE, "auth_code": sms.codes[PHONE],
                    "pwd": PWD, "group_id": "common"}  # fmt: skip
            await client.post(url + "/lwork/mobile/register", json=body)
            login = {"acc": PHONE, "pwd": PWD, "device_id": DEVICE}
            if (await client.post(url + "/lwork/mobile/login", json=login)).json()[
                "status"
            ] != "ok":
                failures.append("racing: could not log in")
                return
            poll_body = {"acc": PHONE, "device_id": DEVICE, "self_phone": PHONE}

            host, port = url.removeprefix("http://").split(":")

            async def held_poll() -> asyncio.Task[dict[str, Any]]:
                before = services.polls.held
                task = asyncio.create_task(raw_poll(host, int(port), poll_body))
                while services.polls.held <= before and not task.done():
                    await asyncio.sleep(0.002)
                return task

            async def rounds(mode: str, count: int, start: int) -> Rounds:
                times: dict[str, list[float]] = {"poll": []}
                sent_at: dict[str, float] = {}
                cpu = 0.0
                for n in range(start, start + count):
                    poll = await held_poll()
                    sid = f"n1@@race{n}"
                    invite = {"event": "p2p_inform_called", "caller": "13900000000",
                              "opdata": {"event": "p2p", "session_id": sid}}  # fmt: skip
                    began, cpu0 = time.monotonic(), time.process_time()
                    sent_at[sid] = began
                    await services.push.notify(PHONE, invite, call_id=sid)
                    answer = await poll
                    times["poll"].append((time.monotonic() - began) * 1000)
                    while services.push.in_flight:
                        await asyncio.sleep(0.001)
                    cpu += time.process_time() - cpu0
                    data = answer.get("data")
                    if data != [invite]:
                        failures.append(f"racing {mode}: the poll answered {data!r}")
                return times, cpu, sent_at

            async def delivered(name: str, since: int) -> list[dict[str, Any]]:
                r = await fake_client.get(fakes.base(name) + f"/_bench/delivered?since={since}")
                answer: dict[str, Any] = r.json()
                failures.extend(f"{name} fake: {p}" for p in answer["problems"])
                found: list[dict[str, Any]] = answer["delivered"]
                return found

            # One channel: the device holds a poll and has no vendor registration.
            await rounds("poll only", 2, 0)  # warm
            alone, alone_cpu, _ = await rounds("poll only", invitations, 2)
            # Three channels: the same device registers Huawei and JPush tokens.
            poll = await held_poll()
            for provider in ("huawei", "jpush"):
                reg = {"caller": PHONE, "account": PHONE, "user_id": "u", "channel_id": TOKEN,
                       "provider": provider}  # fmt: skip
                r = await client.post(url + "/lwork/mobile/baidu_push_register", json=reg)
                if r.json() != {"status": "ok"}:
                    failures.append(f"racing: registering {provider}: {r.text}")
            poll.cancel()
            await asyncio.gather(poll, return_exceptions=True)
            since = {name: len(await delivered(name, 0)) for name in ("huawei", "jpush")}
            await rounds("raced", 2, 10_000)  # warm: connections, access tokens
            since = {name: since[name] + 2 for name in since}
            raced, raced_cpu, sent_at = await rounds("raced", invitations, 20_000)
            for name in ("huawei", "jpush"):
                got = await delivered(name, since[name])
                sids = [d["event"]["payload"]["opdata"]["session_id"] for d in got]
                if sorted(sids) != sorted(sent_at) or not all(d["call"] for d in got):
                    failures.append(f"racing: {name} took {len(got)} of {len(sent_at)}"
                                    " invitations, or not as calls")  # fmt: skip
                raced[name] = [(d["at"] - sent_at[s]) * 1000 for d, s in zip(got, sids, strict=True)
                               if s in sent_at]  # fmt: skip
    reference = {"name": "poll_time_to_ring_without_vendors_ms", "p50": pct(alone["poll"], 0.5),
                 "p99": pct(alone["poll"], 0.99)}  # fmt: skip
    for channel, values in raced.items():
        emit({"figure": "invitation_time_to_ring_ms", "channel": channel,
              "p50": pct(values, 0.5), "p99": pct(values, 0.99),
              "mean": round(statistics.fmean(values), 2) if values else None,
              "invitations": len(values), "reference": reference})  # fmt: skip
    emit({"figure": "racing_cpu_ms_per_invitation", "channels": ["poll", "huawei", "jpush"],
          "value": round(raced_cpu / invitations * 1000, 3),
          "reference": {"name": "poll_alone_cpu_ms_per_invitation",
                        "value": round(alone_cpu / invitations * 1000, 3)}})  # fmt: skip


async def main_async(args: argparse.Namespace) -> list[str]:
    failures: list[str] = []
    fakes = start_fakes()
    try:
        await provider_rates(fakes, args.seconds, args.concurrency, failures)
        await racing(fakes, args.invitations, failures)
    finally:
        stop_fakes(fakes)
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per provider and reference")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--invitations", type=int, default=100)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.concurrency, args.invitations = 1.0, 4, 5
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    failures = asyncio.run(main_async(args))
    if failures:
        for failure in failures:
            print(f"push_vendor_bench: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
