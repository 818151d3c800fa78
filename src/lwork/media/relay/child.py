"""A relay process as the child of another: of the API (the whole built-in relay), or of the
ng front of a multi-process relay (one worker). Started, watched, and restarted when it dies,
on the same ng port, so whoever talks ng to it goes on without noticing more than a few
unanswered requests. The calls the dead process carried are gone (their media state was in
it); new calls work again within a second.

The child (`python -m lwork.media.relay --config-json`) prints ``READY <ng port>`` once it
listens and exits when its standard input closes, so it never outlives the API process. The ng
secret goes through the environment (``SECRET_ENV``), not the command line that any local user
can read. It runs in a session of its own, so a terminal's Ctrl-C reaches only the API, which
then stops it in order (its calls first). A relay that exits with code 0 was stopped on purpose
(stdin closed, SIGTERM or SIGINT, as a service manager sends to every process of the service)
and is not restarted; one that crashes or is killed is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable

from lwork.media.relay.config import RelayConfig

log = logging.getLogger("lwork.media")
START_TIMEOUT_S = 20.0
RESTART_DELAYS_S = (0.2, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits before restarting a relay that died again soon after its last start (crash loop)."""
SECRET_ENV = "LWORKRELAY_NG_SECRET"
"""Environment variable carrying `RelayConfig.ng_secret` to a relay child."""
STABLE_S = 30.0
"""A relay that ran this long before dying is restarted after the shortest wait."""


class RelayChild:
    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.port = 0
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None
        """Told after each restart: the calls the dead relay carried are gone."""
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start the relay; its ng port once it listens."""
        self._process, self.port = await _spawn(self.config)
        self._watcher = asyncio.create_task(self._watch(), name="relay-child-watch")
        return self.port

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._process is not None:
            await _stop(self._process)

    async def _watch(self) -> None:
        quick_deaths = 0
        while self._process is not None:
            started = time.monotonic()
            code = await self._process.wait()
            if code == 0:
                log.info("media relay stopped (code 0); not restarting it")
                return
            quick_deaths = 0 if time.monotonic() - started >= STABLE_S else quick_deaths + 1
            log.error("media relay exited (code %s); restarting it on ng port %d", code, self.port)
            again = dataclasses.replace(self.config, ng_port=self.port)
            while True:
                await asyncio.sleep(RESTART_DELAYS_S[min(quick_deaths, len(RESTART_DELAYS_S) - 1)])
                try:
                    self._process, _ = await _spawn(again)
                    break
                except (OSError, RuntimeError) as exc:
                    quick_deaths += 1
                    log.error("media relay restart failed: %s", exc)
            self.restarts += 1
            log.warning(
                "media relay restarted (%d so far); the calls it carried are gone", self.restarts
            )
            if self.on_restart is not None:
                self.on_restart()


async def _spawn(config: RelayConfig) -> tuple[asyncio.subprocess.Process, int]:
    values = dataclasses.asdict(config)
    env = {**os.environ, SECRET_ENV: values.pop("ng_secret")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lwork.media.relay",
        "--config-json",
        json.dumps(values),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
    except TimeoutError:
        line = b""
    except asyncio.CancelledError:  # the API is closing while a restart starts
        await _stop(process)
        raise
    if not line.startswith(b"READY "):
        await _stop(process)
        raise RuntimeError(f"media relay did not start: {line!r}")
    return process, int(line.split()[1])


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        process.kill()
        await process.wait()
