"""Payment notifications (CONTRACT §8): verified notifications/s and p99 latency at 200
concurrent senders, for the ``test`` provider (HMAC), Alipay (RSA2) and WeChat Pay (RSA
platform signature, AES-256-GCM resource), against the same server
answering ``GET /healthz`` with the same senders in the same run.

    python -m bench.pay_bench              # 5 s per figure
    python -m bench.pay_bench --smoke      # 1 s per figure: exits non-zero on any failure

``lwork serve`` runs in its own process on SQLite in a temporary directory, holding one
``created`` order per notification sent (each notification verifies, settles and credits a
different order: the full path, not the duplicate shortcut). Figures, one JSON line each:

* ``bare_healthz``: requests/s and p99 of ``GET /healthz``;
* ``notify_test``, ``notify_alipay``, ``notify_wechat``: notifications/s answered ``success``
  (WeChat Pay: 204) and p99, with the ratio to ``bare_healthz`` (target ≥ 0.3), and the
  orders found credited afterwards;
* in each of those, ``cpu_us``: the server process's CPU (all its threads) per answer, and for
  the notifications ``cpu_ratio``, bare's ``cpu_us`` over theirs: what the ratio would be with
  the server alone on its cores. The machine is shared, so rates swing from run to run; CPU per
  answer much less.
* and ``loop_cpu_us``/``other_cpu_us``: that CPU split between the event loop's thread and
  the others (SQLite's hot path, which writes the settlements);
* ``verify_cost``: microseconds of CPU to verify one notification (HMAC-SHA256; RSA2 with a
  2048-bit key, the form read and checked; WeChat's, its signature, resource and transaction;
  an App Store Server Notification V2, two ES256 JWS with their x5c chains,
  with the verified chains remembered and without), measured in this process, apart from HTTP
  and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from bench._calls_profile import find_pyspy, record, summarise
from bench._load import HOST, LoadResult, closed_loop, percentile, read_response, stop_process
from bench._verdict import Verdict
from bench.boss_bench import free_port
from lwork.payments.alipay import AlipayProvider
from lwork.payments.apple import AppleProvider
from lwork.payments.apple_jws import Chains, load_roots, verified_payload
from lwork.payments.products import Catalogue
from lwork.payments.testpay import SIGNATURE_HEADER, TestPayProvider, sign
from lwork.payments.wechat import WechatProvider
from lwork.settings.payments import AlipaySettings, AppleSettings, WechatSettings, default_products
from lwork.storage.engine import create_engine, migrate
from lwork.storage.tables import orders

# The fakes import each other as ``fakes.…``, as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes.alipay import FakeAlipay, bare_public, new_key, private_pem
from fakes.appstore import BUNDLE_ID, FakeAppStore
from fakes.wechatpay import APP_ID as WECHAT_APP_ID
from fakes.wechatpay import MCH_ID, MERCHANT_SERIAL, PLATFORM_SERIAL, FakeWechatPay, public_pem

SENDERS = 200
SECRET = "bench-test-secret-0123456789"
APP_ID, SELLER = "2021000000000001", "2088000000000001"
TARGET = 0.3


async def fill(url: str, payids: list[tuple[str, str]]) -> None:
    engine = create_engine(url, 1)
    await migrate(engine)
    now = time.time()
    values = [
        {"payid": payid, "uuid": f"1380000{n % 1000:04d}", "uuid_raw": "x", "pay_type": pay_type,
         "product_id": "coins_300", "money": 3000, "coins": 30000, "minutes": 0,
         "state": "created", "created_at": now, "expires_at": now + 3600, "updated_at": now}
        for n, (payid, pay_type) in enumerate(payids)
    ]  # fmt: skip
    async with engine.begin() as conn:
        for first in range(0, len(values), 5000):
            await conn.execute(orders.insert(), values[first : first + 5000])
    await engine.dispose()


async def credited(url: str, pay_type: str) -> int:
    engine = create_engine(url, 1)
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).where(orders.c.pay_type == pay_type, orders.c.state == "paid")
        )
    await engine.dispose()
    return int(count or 0)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of process ``pid`` so far, all its threads (Linux)."""
    return _ticks(Path(f"/proc/{pid}/stat")) / os.sysconf("SC_CLK_TCK")


def loop_cpu_seconds(pid: int) -> float:
    """The CPU of process ``pid``'s main thread (the event loop's) so far: what ``cpu_seconds``
    has beyond it is the other threads' (SQLite's hot path, where a batch of settlements is
    written)."""
    return _ticks(Path(f"/proc/{pid}/task/{pid}/stat")) / os.sysconf("SC_CLK_TCK")


def _ticks(stat: Path) -> int:
    fields = stat.read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_notifications(payids: list[str]) -> list[bytes]:
    built = []
    for n, payid in enumerate(payids):
        body = msgspec.json.encode({"payid": payid, "money": "30.00", "trade_no": f"T{n}"})
        built.append(
            request(
                "/lwork/pay/notify/test",
                body,
                {SIGNATURE_HEADER: sign(SECRET.encode(), body), "Content-Type": "application/json"},
            )
        )
    return built


def alipay_notifications(fake: FakeAlipay, payids: list[str]) -> list[bytes]:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    return [
        request("/lwork/pay/notify/alipay", urlencode(fake.notification(p, "30.00")).encode(), form)
        for p in payids
    ]


def wechat_transaction(payid: str) -> dict[str, object]:
    """A paid App transaction of 30.00 yuan, as WeChat Pay's notification carries it."""
    return {
        "appid": WECHAT_APP_ID, "mchid": MCH_ID, "out_trade_no": payid,
        "transaction_id": "4200" + secrets.token_hex(12), "trade_type": "APP",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 3000, "payer_total": 3000, "currency": "CNY",
                   "payer_currency": "CNY"},
    }  # fmt: skip


def wechat_notifications(fake: FakeWechatPay, payids: list[str]) -> list[bytes]:
    built = []
    for payid in payids:
        body = fake.notification(wechat_transaction(payid))
        headers = {**fake.signed_headers(body), "Content-Type": "application/json"}
        built.append(request("/lwork/pay/notify/wechat", body, headers))
    return built


def wechat_settings(fake: FakeWechatPay, merchant: rsa.RSAPrivateKey) -> dict[str, object]:
    return {
        "enabled": True, "app_id": WECHAT_APP_ID, "mch_id": MCH_ID,
        "merchant_serial_no": MERCHANT_SERIAL, "merchant_private_key": private_pem(merchant),
        "api_v3_key": fake.api_v3_key.decode(),
        "platform_keys": {PLATFORM_SERIAL: public_pem(fake.key)},
        "notify_url": "https://pay.example.com/lwork/pay/notify/wechat",
    }  # fmt: skip


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """``read_response``, and a 204 (WeChat Pay's acknowledgement) that has no body to count."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status == 204:
        return status, b""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, await reader.readexactly(int(value.strip()))
    raise ValueError("response without Content-Length")


async def send_all(port: int, requests: list[bytes], seconds: float) -> LoadResult:
    """SENDERS connections, each sending the next unsent notification once answered."""
    result = LoadResult()
    queue: Iterator[bytes] = iter(requests)
    began = time.perf_counter()
    deadline = began + seconds

    async def sender() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for raw in queue:
                if time.perf_counter() >= deadline:
                    break
                start = time.perf_counter()
                writer.write(raw)
                status, body = await read_answer(reader)
                result.record(time.perf_counter() - start, status, body)
                result.ok_bodies += body == b"success" or (status == 204 and body == b"")
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    result.elapsed = time.perf_counter() - began
    return result


def verify_cost(
    fake: FakeAlipay, app_key: rsa.RSAPrivateKey, wechat: FakeWechatPay, rounds: int
) -> dict[str, float]:
    """CPU microseconds per verification, apart from HTTP and the database."""
    settings = AlipaySettings(
        enabled=True,
        app_id=APP_ID,
        seller_id=SELLER,
        app_private_key=private_pem(app_key),
        alipay_public_key=bare_public(fake.key),
        notify_url="https://x/",
    )
    alipay, test = AlipayProvider(settings), TestPayProvider(SECRET.encode())
    wechat_provider = WechatProvider(
        WechatSettings.model_validate(wechat_settings(wechat, app_key)), time.time
    )
    wechat_body = wechat.notification(wechat_transaction("P" * 22))
    # as Starlette hands them over: names in lower case
    wechat_headers = {k.lower(): v for k, v in wechat.signed_headers(wechat_body).items()}
    form = urlencode(fake.notification("P" * 22, "30.00")).encode()
    body = msgspec.json.encode({"payid": "P" * 22, "money": "30.00", "trade_no": "T"})
    headers = {SIGNATURE_HEADER: sign(SECRET.encode(), body)}
    costs = {}
    for name, check in (("hmac_us", lambda: test.verify(body, headers)),
                        ("rsa2_us", lambda: alipay.verify(form, {})),
                        ("wechat_us", lambda: wechat_provider.verify(wechat_body,
                                                                     wechat_headers))):  # fmt: skip
        began = time.process_time()
        for _ in range(rounds):
            check()
        costs[name] = round((time.process_time() - began) / rounds * 1e6, 1)
    return costs | apple_verify_cost(rounds)


def apple_verify_cost(rounds: int) -> dict[str, float]:
    """CPU microseconds to verify one App Store Server Notification V2 (two JWS: the
    notification and its signed transaction, each with its x5c chain): ``appstore_us`` as the
    server does, its chains remembered after the first; ``appstore_uncached_us`` the same two
    JWS with every chain walked again (no chain remembered: the cost before the cache)."""
    store = FakeAppStore()
    settings = AppleSettings(enabled=True, bundle_id=BUNDLE_ID, environment="Sandbox",
                             root_certificates=[store.chain.root_pem()])  # fmt: skip
    apple = AppleProvider(settings, Catalogue(default_products()), time.time)
    body = store.notification("CONSUMPTION_REQUEST", store.transaction("coins_300"))
    outer = msgspec.json.decode(body)["signedPayload"]
    inner = store.chain.sign(store.transaction("coins_300"))
    forgetful = Chains(load_roots([store.chain.root_pem()]), size=0)
    now = dt.datetime.now(dt.UTC)
    costs = {}
    for name, check in (
        ("appstore_us", lambda: apple.notification(body)),
        ("appstore_uncached_us", lambda: (verified_payload(outer, forgetful, now),
                                          verified_payload(inner, forgetful, now))),
    ):  # fmt: skip
        began = time.process_time()
        for _ in range(rounds):
            check()
        costs[name] = round((time.process_time() - began) / rounds * 1e6, 1)
    return costs


def figure(name: str, result: LoadResult, bare: float | None) -> dict[str, object]:
    ok = [
        lat for lat, st in zip(result.latencies, result.status_of, strict=True) if st in (200, 204)
    ]
    out: dict[str, object] = {"figure": name, "per_s": round(result.ok_bodies / result.elapsed),
                              "p99_ms": round(percentile(ok, 99) * 1000, 1),
                              "senders": SENDERS, "sent": result.count}  # fmt: skip
    if bare:
        out |= {"ratio": round(out["per_s"] / bare, 3), "target": TARGET}  # type: ignore[operator]
        out["met"] = out["ratio"] >= TARGET  # type: ignore[operator]
    return out


@contextlib.asynccontextmanager
async def database(postgres: bool) -> AsyncIterator[tuple[str, str]]:
    """A data directory, and a fresh SQLite file in it or a fresh database on the PostgreSQL
    at 127.0.0.1:5432."""
    with tempfile.TemporaryDirectory(prefix="lwork-pay-bench-") as tmp:
        if not postgres:
            yield tmp, f"sqlite+aiosqlite:///{Path(tmp) / 'lwork.db'}"
            return
        import asyncpg

        name = f"lwork_pay_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(host=HOST, user="postgres", database="postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield tmp, f"postgresql+asyncpg://postgres@{HOST}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


PROVIDERS = ("test", "alipay", "wechat")


async def run(
    seconds: float,
    per_provider: int,
    postgres: bool,
    verdict: Verdict,
    profile: bool,
    only: tuple[str, ...] = PROVIDERS,
) -> None:
    app_key = new_key()
    fake = FakeAlipay(APP_ID, SELLER, app_key.public_key())
    wechat = FakeWechatPay(app_key.public_key(), secrets.token_hex(16).encode())
    cost = verify_cost(fake, app_key, wechat, 50 if per_provider < 5000 else 500)
    verdict.emit({"figure": "verify_cost", **cost})
    build = {
        "test": test_notifications,
        "alipay": lambda ids: alipay_notifications(fake, ids),
        "wechat": lambda ids: wechat_notifications(wechat, ids),
    }
    # Orders and notifications only for the providers measured: signing 45,000 of each took
    # longer than measuring one.
    ids = {name: [f"{name[0].upper()}{n:021d}" for n in range(per_provider)] for name in only}
    began = time.perf_counter()
    requests_of = {name: build[name](ids[name]) for name in only}
    print(f"{len(only) * per_provider} notifications signed in "
          f"{time.perf_counter() - began:.1f} s", file=sys.stderr)  # fmt: skip
    db = "postgresql" if postgres else "sqlite"
    async with database(postgres) as (tmp, url):
        await fill(url, [(payid, name) for name in only for payid in ids[name]])
        port = free_port()
        env = {**os.environ, "LWORK_DATA_DIR": tmp, "LWORK_DATABASE__URL": url if postgres else "",
               "LWORK_LOG_LEVEL": "WARNING", "LWORK_MEDIA__RELAY_MODE": "inline",
               "LWORK_PAYMENTS__TEST__ENABLED": "true", "LWORK_PAYMENTS__TEST__SECRET": SECRET,
               "LWORK_PAYMENTS__ALIPAY__ENABLED": "true", "LWORK_PAYMENTS__ALIPAY__APP_ID": APP_ID,
               "LWORK_PAYMENTS__ALIPAY__SELLER_ID": SELLER,
               "LWORK_PAYMENTS__ALIPAY__APP_PRIVATE_KEY": private_pem(app_key),
               "LWORK_PAYMENTS__ALIPAY__ALIPAY_PUBLIC_KEY": bare_public(fake.key),
               "LWORK_PAYMENTS__ALIPAY__NOTIFY_URL": "https://pay.example.com/n",
               "LWORK_PAYMENTS__RECONCILE_EVERY_S": "3600"}  # fmt: skip
        for field, value in wechat_settings(wechat, app_key).items():
            text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
            env[f"LWORK_PAYMENTS__WECHAT__{field.upper()}"] = text
        server = subprocess.Popen([sys.executable, "-m", "lwork", "serve", "--port", str(port)],
                                  env=env)  # fmt: skip
        try:
            await ready(port)
            cpu_before = cpu_seconds(server.pid)
            bare = await closed_loop(port, [request_get("/healthz")] * SENDERS, seconds)
            bare_cpu_us = (cpu_seconds(server.pid) - cpu_before) / max(bare.count, 1) * 1e6
            verdict.none_failed("bare_healthz", "requests", bare.errors)
            bare_ok = bare.statuses[200]
            verdict.require(bare_ok == bare.count, "bare_healthz", f"{bare.statuses}")
            bare_fig = {"figure": "bare_healthz", "db": db, "per_s": round(bare.rate),
                        "p99_ms": round(percentile(bare.latencies, 99) * 1000, 1),
                        "senders": SENDERS, "cpu_us": round(bare_cpu_us, 1)}  # fmt: skip
            verdict.emit(bare_fig)
            for pay_type, requests in requests_of.items():
                name = f"notify_{pay_type}"
                cpu_before, loop_before = cpu_seconds(server.pid), loop_cpu_seconds(server.pid)
                result = await send_all_profiled(server.pid, port, requests, seconds, profile,
                                                 f"{name}_profile", verdict)  # fmt: skip
                cpu_us = (cpu_seconds(server.pid) - cpu_before) / max(result.count, 1) * 1e6
                loop_us = (loop_cpu_seconds(server.pid) - loop_before) / max(result.count, 1) * 1e6
                verdict.none_failed(name, "connections", result.errors)
                verdict.require(
                    result.ok_bodies == result.count,
                    name,
                    f"{result.count - result.ok_bodies} not success: {result.statuses}",
                )
                verdict.some(name, "verified notifications", result.ok_bodies)
                paid = await credited(url, pay_type)
                verdict.require(
                    paid == result.ok_bodies,
                    name,
                    f"{paid} orders credited for {result.ok_bodies} notifications",
                )
                verdict.require(result.count < len(requests), name,
                                "ran out of orders: raise --orders")  # fmt: skip
                cpu = {
                    "cpu_us": round(cpu_us, 1),
                    "cpu_ratio": round(bare_cpu_us / cpu_us, 3),
                    "loop_cpu_us": round(loop_us, 1),
                    "other_cpu_us": round(cpu_us - loop_us, 1),
                }
                verdict.emit({**figure(name, result, bare.rate), "db": db, "credited": paid, **cpu})
        finally:
            stop_process(server)


async def send_all_profiled(
    pid: int,
    port: int,
    requests: list[bytes],
    seconds: float,
    profile: bool,
    figure_name: str,
    verdict: Verdict,
) -> LoadResult:
    """``send_all``, with the server sampled by py-spy when ``profile`` (its summary emitted as
    ``figure_name``)."""
    pyspy = find_pyspy() if profile else None
    if pyspy is None:
        return await send_all(port, requests, seconds)
    out = Path(tempfile.gettempdir()) / f"lwork-{figure_name}-{os.getpid()}.collapsed"
    spy = record(pyspy, pid, seconds, out)
    result = await send_all(port, requests, seconds)
    await asyncio.to_thread(spy.wait, 30)
    verdict.emit({"figure": figure_name, "collapsed": str(out), **summarise(out)})
    return result


def request_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


async def ready(port: int) -> None:
    for _ in range(300):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.write(request_get("/healthz"))
        status, _ = await read_response(reader)
        writer.close()
        if status == 200:
            return
    raise RuntimeError("lwork serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--orders", type=int, default=40000, help="orders per provider")
    parser.add_argument("--postgres", action="store_true",
                        help="the server on PostgreSQL at 127.0.0.1:5432")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="1 s per figure, 15,000 orders")
    parser.add_argument("--only", choices=PROVIDERS, action="append",
                        help="measure only this provider (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="py-spy summaries of the server (py-spy on PATH)")  # fmt: skip
    args = parser.parse_args()
    seconds, per_provider = (1.0, 15000) if args.smoke else (args.seconds, args.orders)
    verdict = Verdict("pay_bench")
    only = tuple(name for name in PROVIDERS if name in (args.only or PROVIDERS))
    asyncio.run(run(seconds, per_provider, args.postgres, verdict, args.profile, only))
    verdict.conclude(["verify_cost", "bare_healthz", *(f"notify_{name}" for name in only)])


if __name__ == "__main__":
    main()
