"""The server side of ``bench.push_bench``: one uvicorn process (uvloop, httptools, one worker).

    python -m bench._push_server MODE SETTINGS_JSON PORT

MODE is one of:

* ``lwork``: lwork's app, plus the bench-only ``POST /_bench/notify`` that calls
  ``services.push.notify`` for each ``[uuid, seq]`` of its body;
* ``bare-event``: the reference: a bare Starlette app that holds each poll on an
  ``asyncio.Event`` (set by ``/_bench/notify``) with a timeout, and answers lwork's answer shape;
* ``bare-sleep``: the memory reference: a bare Starlette app that holds each poll with
  ``await asyncio.sleep(hold)``.

``/_bench/notify`` is a raw ASGI handler in every mode, so the trigger costs the same everywhere.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

NOTIFY_PATH = "/_bench/notify"
GC_PATH = "/_bench/gc"
CENSUS_PATH = "/_bench/census"
MODES = ("lwork", "bare-event", "bare-sleep")
WORKERS_MODE = "lwork-workers"
"""lwork with ``http.workers`` > 1 (``push_bench --workers``): a supervisor whose workers are
this module's ``lwork-worker`` mode (lwork's worker plus the bench routes)."""

Notify = Callable[[str, dict[str, Any]], Awaitable[object]]


def raise_fd_limit() -> int:
    """Soft open-files limit up to the hard one: every held poll is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class NotifyBody(msgspec.Struct):
    events: list[tuple[str, int]]


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def notify_endpoint(notify: Notify) -> ASGIApp:
    """``{"events": [[uuid, seq], ...]}`` -> one notify each, all at once (as the independent
    requests or calls that raise events in production would); answers the count."""
    decoder = msgspec.json.Decoder(NotifyBody)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = decoder.decode(await _read_body(receive))
        results = await asyncio.gather(
            *(notify(uuid, {"event": "bench", "seq": seq}) for uuid, seq in body.events)
        )
        notified = sum(result is not None for result in results)
        await respond(send, {"status": "ok", "notified": notified})

    return app


class GcPauses:
    """Garbage-collector pauses of this process: with 19,000 held requests the heap is large,
    and a full (generation 2) collection stops the event loop for all of them. Beside them, the
    event loop's longest stall (a 10 ms timer's lateness), whatever its cause, so that a
    latency spike can be told a collection, another stall of the loop, or neither (the machine).
    Each answer names the process (``pid``): with ``http.workers`` each worker keeps its own."""

    STALL_TICK_S = 0.01

    def __init__(self) -> None:
        self._started = 0.0
        self.window: dict[str, float] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.reset()
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        self.window = {"pid": os.getpid(), "collections": 0, "total_ms": 0.0, "max_ms": 0.0,
                       "full": 0, "loop_stall_max_ms": 0.0}  # fmt: skip

    async def _watch_loop(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.STALL_TICK_S)
            late_ms = (time.perf_counter() - before - self.STALL_TICK_S) * 1e3
            self.window["loop_stall_max_ms"] = max(self.window["loop_stall_max_ms"], late_ms)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1e3
        self.window["collections"] += 1
        self.window["total_ms"] += pause_ms
        self.window["max_ms"] = max(self.window["max_ms"], pause_ms)
        self.window["full"] += info["generation"] == 2

    def endpoint(self) -> ASGIApp:
        """``GET /_bench/gc``: the pauses since the previous call."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if self._ticker is None:  # the first call opens the first window
                self._ticker = asyncio.create_task(self._watch_loop(), name="bench-loop-stall")
            await respond(send, {k: round(v, 2) for k, v in self.window.items()})
            self.reset()

        return app


async def respond(send: Send, body: Any) -> None:
    payload = msgspec.json.encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _by_type(objects: list[Any]) -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)


def _statements_of(garbage: list[Any]) -> Counter[str]:
    """The bound parameters' names among ``garbage``, joined per statement: names a statement
    built anew per call (which SQLAlchemy's clause objects make into cycles)."""
    named: Counter[str] = Counter()
    for obj in garbage:
        if type(obj).__name__ == "BindParameter":
            named[str(getattr(obj, "key", "?"))] += 1
    return named


async def census(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /_bench/census``: this process's objects that the collector tracks (containers and
    instances), counted by type, live and garbage apart: two censuses apart in time name what
    grows. Frozen objects (``lwork.gcpolicy``) are unlisted and never searched for cycles until
    the policy's hourly release, so they are unfrozen for the count, and a complete collection
    then finds the garbage (cycles frozen while still in use, kept since), kept aside for the
    count (``DEBUG_SAVEALL``) and then let go; the survivors are frozen again, as the policy's
    own collections do. It stalls the loop for a second or more with many polls held."""
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        garbage, gc.garbage[:] = list(gc.garbage), []
    finally:
        gc.set_debug(0)
    garbage_types, binds = _by_type(garbage), _statements_of(garbage)
    del garbage
    gc.unfreeze()  # the policy froze the survivors (and what was kept aside) as it ended
    gc.collect()  # what was kept aside is freed now, as it would have been
    gc.unfreeze()
    live = _by_type(gc.get_objects())
    gc.freeze()
    await respond(send, {"pid": os.getpid(), "types": dict(live), "garbage": found,
                         "garbage_types": dict(garbage_types),
                         "garbage_binds": dict(binds.most_common(20))})  # fmt: skip


def with_notify(app: ASGIApp, notify: Notify) -> ASGIApp:
    """The bench routes (trigger, GC pauses, census); lifespan and every other path to ``app``."""
    bench = {NOTIFY_PATH: notify_endpoint(notify), GC_PATH: GcPauses().endpoint(),
             CENSUS_PATH: census}  # fmt: skip

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        route = bench.get(scope["path"]) if scope["type"] == "http" else None
        await (route or app)(scope, receive, send)

    return dispatch


class BareChannel:
    """The reference: what holding a poll costs with nothing but Starlette and asyncio."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.held = 0
        self._waiters: dict[str, asyncio.Event] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}

    def _answer(self, events: list[dict[str, Any]] | None, clidata: Any) -> JSONResponse:
        data = events or [{"event": "shake_hand"}]
        return JSONResponse({"status": "ok", "data": data, "clidata": clidata})

    async def poll_event(self, request: Request) -> JSONResponse:
        body = await request.json()
        acc = body["acc"]
        events = self._pending.pop(acc, None)
        if events is None:
            woken = asyncio.Event()
            self._waiters[acc] = woken
            self.held += 1
            try:
                async with asyncio.timeout(self.hold_s):
                    await woken.wait()
            except TimeoutError:
                pass
            finally:
                self.held -= 1
                if self._waiters.get(acc) is woken:
                    del self._waiters[acc]
            events = self._pending.pop(acc, None)
        return self._answer(events, body.get("clidata"))

    async def poll_sleep(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.held += 1
        try:
            await asyncio.sleep(self.hold_s)
        finally:
            self.held -= 1
        return self._answer(None, body.get("clidata"))

    async def notify(self, uuid: str, event: dict[str, Any]) -> str:
        self._pending.setdefault(uuid, []).append(event)
        woken = self._waiters.get(uuid)
        if woken is not None:
            woken.set()
        return uuid

    async def metrics(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "held_polls": self.held})

    def app(self, sleep: bool) -> Starlette:
        poll = self.poll_sleep if sleep else self.poll_event
        return Starlette(
            routes=[
                Route("/channel/push_service", poll, methods=["POST"]),
                Route("/metrics", self.metrics, methods=["GET"]),
                Route("/healthz", self.metrics, methods=["GET"]),
            ]
        )


def build(mode: str, overrides: dict[str, Any]) -> ASGIApp:
    # Imported here: the client processes import this module's helpers, not lwork.
    from lwork.app import build_app
    from lwork.settings import Settings

    settings = Settings(**overrides)
    if mode == "lwork":
        lwork, services = build_app(settings, on_ready=gc.freeze)  # as `lwork serve` does
        return with_notify(lwork, services.push.notify)
    bare = BareChannel(settings.push.hold_s)
    return with_notify(bare.app(sleep=mode == "bare-sleep"), bare.notify)


def main_workers(settings_file: str, port: int) -> None:
    """The supervisor of ``http.workers`` bench workers on ``port`` (it has migrated)."""
    from lwork.http.workers import supervise
    from lwork.settings import Settings

    raise_fd_limit()
    settings = Settings(**json.loads(Path(settings_file).read_text()))
    command = [sys.executable, "-m", "bench._push_server", "lwork-worker", settings_file]
    sys.exit(supervise(settings, command, "127.0.0.1", port))


def main_worker(settings_file: str, argv: list[str]) -> None:
    """One worker, as ``lwork serve`` runs it for its supervisor, with the bench routes."""
    import argparse

    from lwork.app import build_app
    from lwork.http.workers import add_worker_options, worker_side
    from lwork.settings import Settings

    raise_fd_limit()
    parser = argparse.ArgumentParser()
    add_worker_options(parser)
    side = worker_side(
        Settings(**json.loads(Path(settings_file).read_text())), parser.parse_args(argv)
    )
    lwork, services = build_app(side.settings, on_ready=gc.freeze, bus=side.bus, worker=side.index)
    config = uvicorn.Config(
        with_notify(lwork, services.push.notify),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="auto",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=side.sockets)


def main(mode: str, settings_file: str, port: int) -> None:
    raise_fd_limit()
    app = build(mode, json.loads(Path(settings_file).read_text()))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="auto",
        backlog=4096,
        # Held polls would keep a graceful shutdown waiting for the whole hold.
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["lwork-worker"]:
        main_worker(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    if sys.argv[1:2] == [WORKERS_MODE] and len(sys.argv) == 4:
        main_workers(sys.argv[2], int(sys.argv[3]))
    if len(sys.argv) != 4 or sys.argv[1] not in MODES:
        sys.exit(f"usage: python -m bench._push_server {{{','.join(MODES)}}} SETTINGS_JSON PORT")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
