"""``http.workers`` > 1: several API worker processes on one port, under a supervising parent.

One process holds as many long polls as it may open files (``ulimit -n``), and uses one core;
N workers hold N times as many and use N cores. The parent:

- migrates the database once, before any worker starts (never N workers racing), and creates
  the generated secret key if there is none;
- binds N listening sockets on the one port with ``SO_REUSEPORT`` and hands socket i to worker
  i. The kernel spreads new connections evenly over the sockets (by a hash of the addresses),
  so the workers fill up evenly — with one shared socket, whichever worker is idlest takes
  every connection of a burst. The parent keeps every socket open: while a dead worker is
  restarted its socket keeps taking connections, which wait in its queue instead of being
  refused or reset;
- hosts the local bus's hub (``lwork.push.local_bus``): the workers' bus when ``bus.url`` is
  empty, and always the link of their machine-wide rate limits (``lwork.http.shared_limits``);
- restarts a worker that dies (logged, with a growing pause if it keeps dying), and on SIGTERM
  or SIGINT stops every worker (SIGTERM, then SIGKILL after ``STOP_WAIT_S``) and exits 0.

Each worker is a node of a cluster (``worker_settings``): its own node name, its own slice of
the built-in relay's ports, its own SIP port. Workers run ``lwork serve`` with hidden options
naming their slot and inherited sockets; they stop when the parent goes (``watch_parent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

from lwork.http.shared_limits import LimitExchange
from lwork.push.bus import Bus
from lwork.push.local_bus import Hub, LocalBus
from lwork.settings import Settings

log = logging.getLogger("lwork.workers")

STOP_WAIT_S = 15.0
"""How long stopping waits for the workers' graceful shutdown before killing them."""
RESTART_PAUSE_S = (0.5, 30.0)
"""Pause before restarting a dead worker: the first, and the most after repeated deaths."""
STEADY_S = 30.0
"""A worker that lived this long before dying is restarted after the first pause again."""
MIN_PORTS_PER_WORKER = 4


@dataclass(frozen=True)
class Slot:
    index: int
    count: int


def parse_slot(text: str) -> Slot:
    """``i/n`` from the worker's hidden ``--worker`` option."""
    index, count = (int(part) for part in text.split("/"))
    if not 0 <= index < count:
        raise ValueError(f"worker slot {text}")
    return Slot(index, count)


def node_name(node: str, index: int) -> str:
    return f"{node}-w{index}"


def worker_settings(settings: Settings, slot: Slot) -> Settings:
    """What worker ``slot`` runs with: a node of its own, and what cannot be shared split.

    - node ``<node>-w<i>``: call session ids name it, so a request for a call on another
      worker is forwarded over the bus as between nodes;
    - the built-in relay (no ``media.ng_url``): worker i gets the i-th of N equal slices of
      ``port_min..port_max`` and its own relay child (an external relay is shared);
    - SIP: worker 0 listens on ``sip.listen_port`` (inbound calls from the trunk land there)
      and alone registers; worker i on ``listen_port + i``, for the calls it originates
      (0 stays 0: any free port). The trunk's limits (``max_concurrent_calls``,
      ``calls_per_second``) are divided among the workers so the carrier sees at most them;
    - the NMSI server (one port) runs on worker 0 only;
    - the rate limits are shared among the workers (``http.shared_limits``); if not,
      ``auth.login_per_minute_per_ip`` is divided among them (rounded up): that per-process
      counter may then let through at most N x ceil(limit / N) attempts a minute from one
      address, never N x the limit.
    """
    n, i = slot.count, slot.index
    updates: dict[str, object] = {"node": node_name(settings.node, i)}
    media = settings.media
    if not media.ng_url:
        low, high = port_slice(media.port_min, media.port_max, slot)
        updates["media"] = media.model_copy(update={"port_min": low, "port_max": high})
    sip = settings.sip
    updates["sip"] = sip.model_copy(
        update={
            "listen_port": sip.listen_port + i if sip.listen_port else 0,
            "registrar": sip.registrar if i == 0 else "",
            "max_concurrent_calls": max(1, sip.max_concurrent_calls // n),
            "calls_per_second": sip.calls_per_second / n,
        }
    )
    if i != 0:
        updates["boss"] = settings.boss.model_copy(update={"nmsi_enabled": False})
    if not settings.http.shared_limits:
        auth = settings.auth
        updates["auth"] = auth.model_copy(
            update={"login_per_minute_per_ip": math.ceil(auth.login_per_minute_per_ip / n)}
        )
    return settings.model_copy(update=updates)


def port_slice(port_min: int, port_max: int, slot: Slot) -> tuple[int, int]:
    """Worker ``slot``'s part of the relay's ports: equal even-sized slices (RTP even, RTCP
    odd), the last taking what rounding left over."""
    size = (port_max - port_min + 1) // slot.count // 2 * 2
    if size < MIN_PORTS_PER_WORKER:
        raise ValueError(
            f"media.port_min..port_max has too few ports for {slot.count} workers' relays"
        )
    low = port_min + slot.index * size
    high = port_max if slot.index == slot.count - 1 else low + size - 1
    return low, high


def check(settings: Settings) -> None:
    """Refuse at start-up what no worker could run with (rather than restart it for ever)."""
    count = settings.http.workers
    if count > 1 and not settings.media.ng_url:
        port_slice(settings.media.port_min, settings.media.port_max, Slot(0, count))
    if count > 1 and settings.sip.enabled and settings.sip.listen_port:
        if settings.sip.listen_port + count - 1 > 65535:
            raise ValueError("sip.listen_port + http.workers - 1 is beyond 65535")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one port (``port`` 0: a free one, the same for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def watch_parent() -> None:
    """In a worker: stop (SIGTERM to itself) when the supervising parent is gone, so an orphan
    never serves on alone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.error("the supervising parent is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


class Supervisor:
    def __init__(self, settings: Settings, command: list[str], host: str, port: int) -> None:
        """``command`` runs one worker, given ``--worker i/n --listen-fd F [--bus-fd B]``."""
        self._settings = settings
        self._command = command
        self._count = settings.http.workers
        self._sockets = listening_sockets(host, port, self._count)
        self.port = self._sockets[0].getsockname()[1]
        self._host = host
        self._stopping = asyncio.Event()
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._hub = Hub()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        log.info(
            "lwork: %d API workers on %s:%d, bus %s",
            self._count, self._host, self.port, "redis" if self._settings.bus.url else "local hub",
        )  # fmt: skip
        keepers = [asyncio.create_task(self._keep(i)) for i in range(self._count)]
        await self._stopping.wait()
        log.info("stopping %d workers", len(self._processes))
        for process in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        done, _ = await asyncio.wait(keepers, timeout=STOP_WAIT_S)
        for process in list(self._processes.values()):
            if process.returncode is None:
                log.warning("worker pid %d did not stop in %.0f s; killing it", process.pid,
                            STOP_WAIT_S)  # fmt: skip
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*keepers, return_exceptions=True)
        await self._hub.close()
        for sock in self._sockets:
            sock.close()
        return 0

    async def _keep(self, index: int) -> None:
        """Run worker ``index`` until stopping, restarting it whenever it dies."""
        pause = RESTART_PAUSE_S[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                process = await self._spawn(index)
            except OSError as exc:  # out of processes or memory: try again after the pause
                log.error("worker %d could not be started: %s", index, exc)
            else:
                self._processes[index] = process
                code = await process.wait()
                if self._stopping.is_set():
                    return
                log.error("worker %d (pid %d) exited with %s; restarting it", index,
                          process.pid, code)  # fmt: skip
            if time.monotonic() - started > STEADY_S:
                pause = RESTART_PAUSE_S[0]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, RESTART_PAUSE_S[1])

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        listen = self._sockets[index].fileno()
        args = [*self._command, "--worker", f"{index}/{self._count}", "--listen-fd", str(listen)]
        ours, theirs = socket.socketpair()
        args += ["--bus-fd", str(theirs.fileno())]
        try:
            process = await asyncio.create_subprocess_exec(
                *args, pass_fds=[listen, theirs.fileno()]
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._hub.attach(ours)
        log.info("worker %d started (pid %d)", index, process.pid)
        return process


async def _prepare(settings: Settings) -> None:
    """What must exist once before workers start: the schema, and the generated secret key
    (workers creating it at once would each keep a different one, and an SMS code sent by one
    would not verify on another)."""
    from lwork.accounts.setup import server_secret
    from lwork.storage.connection_budget import check_connection_budget
    from lwork.storage.engine import create_engine, migrate

    server_secret(settings)

    engine = create_engine(settings.database_url, 1)
    try:
        await migrate(engine)
        await check_connection_budget(engine, settings.http.workers, settings.database.pool_size)
    finally:
        await engine.dispose()


def serve_command(config: str | None) -> list[str]:
    """``lwork serve`` as a worker runs it (the same settings file; the environment is
    inherited)."""
    return [sys.executable, "-m", "lwork", *(["--config", config] if config else []), "serve"]


def supervise(settings: Settings, command: list[str], host: str, port: int) -> int:
    """The parent of ``http.workers`` workers each run by ``command``; returns the exit code."""
    try:
        check(settings)
    except ValueError as exc:
        print(f"lwork: invalid settings: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_prepare(settings))

    async def run() -> int:
        return await Supervisor(settings, command, host, port).run()

    return asyncio.run(run())


@dataclass
class WorkerSide:
    """What a worker process serves with, from its hidden options."""

    settings: Settings
    index: int
    sockets: list[socket.socket]
    bus: Bus | None
    limits: LimitExchange | None
    """The machine-wide rate limits (``http.shared_limits``)."""


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    # Set by the supervisor for each worker it starts: not for people.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bus-fd", type=int, help=argparse.SUPPRESS)


def worker_side(settings: Settings, args: argparse.Namespace) -> WorkerSide:
    """In a worker: its settings, its inherited listening socket, its link to the parent's hub
    (the bus unless ``bus.url`` names Redis; the shared limits); it stops with its parent from
    now on."""
    slot = parse_slot(args.worker)
    link = LocalBus(
        socket.socket(fileno=args.bus_fd), on_lost=lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    limits = None
    if settings.http.shared_limits:
        limits = LimitExchange(link, slot.count, time.monotonic)
    watch_parent()
    listening = socket.socket(fileno=args.listen_fd)
    bus = None if settings.bus.url else link
    return WorkerSide(worker_settings(settings, slot), slot.index, [listening], bus, limits)
