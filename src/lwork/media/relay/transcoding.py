"""The relay's side of transcoding: its worker processes (`transcode_worker`), which calls each
one has, and the figures they send back.

A transcoded call's four sockets are handed to the worker with the fewest calls; the relay
keeps its own descriptors (so that the ports stay taken and are freed by `close_pair` as
always) but no longer reads them. A worker that dies is started again and its calls are
handed to the new one: their audio continues, their counters start afresh.

The control socket never blocks the relay (uvloop makes it non-blocking anyway, to watch it):
what a busy worker has not yet taken waits in that worker's outbox, in order, and goes out as
the socket drains. A call deleted while its hand-over still waits there is dropped from the
outbox instead (its sockets are about to be closed: they must never be sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lwork.media.relay.session import Leg
from lwork.media.relay.transcode_plan import Plan
from lwork.media.relay.transcode_wire import MAX_MESSAGE, decode, encode, leg_signal, plan_to_json

log = logging.getLogger(__name__)
StatsSink = Callable[[str, dict[str, Any]], None]


@dataclass(eq=False)
class _Handover:
    """What a worker was told about a call, to tell a new worker if that one dies."""

    plan: Plan
    legs: tuple[Leg, Leg]
    fds: list[int]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    call: str
    op: str
    data: bytes
    fds: list[int]


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    control: socket.socket
    calls: set[str] = field(default_factory=set)
    outbox: deque[_Outgoing] = field(default_factory=deque)
    """What the control socket had no room for yet, oldest first."""


class TranscoderPool:
    """Up to `size` worker processes, started with the relay (`start`), stopped by `close`."""

    def __init__(
        self, size: int, rtcp_interval_s: float, max_leg_pps: int, on_stats: StatsSink
    ) -> None:
        self.size = max(1, size)
        self.rtcp_interval_s = rtcp_interval_s
        self.max_leg_pps = max_leg_pps
        self.on_stats = on_stats
        self.workers: list[_Worker] = []
        self.calls: dict[str, tuple[_Worker, _Handover]] = {}
        self.restarts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for _ in range(self.size):
            self.workers.append(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lwork.media.relay.transcode_worker",
                    str(theirs.fileno()),
                    "--rtcp-interval",
                    str(self.rtcp_interval_s),
                    "--max-leg-pps",
                    str(self.max_leg_pps),
                ],  # fmt: skip
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = _Worker(process, ours)
        assert self._loop is not None
        self._loop.add_reader(ours.fileno(), self._on_message, worker)
        return worker

    def hand_over(self, call_id: str, plan: Plan, legs: tuple[Leg, Leg], fds: list[int]) -> bool:
        """Give the worker with the fewest calls the call's sockets: `fds` is the app leg's
        RTP and RTCP, then the carrier leg's (`legs` in the same order). False: no worker
        (none could be started), the call stays forwarded."""
        if not self.workers:
            return False
        worker = min(self.workers, key=lambda w: len(w.calls))
        handover = _Handover(plan, legs, fds)
        self.calls[call_id] = (worker, handover)
        worker.calls.add(call_id)
        self._send_add(worker, call_id, handover)
        return True

    def _send_add(self, worker: _Worker, call_id: str, handover: _Handover) -> None:
        message = {
            "op": "add",
            "call": call_id,
            "plan": plan_to_json(handover.plan),
            "legs": [leg_signal(leg) for leg in handover.legs],
        }
        self._send(worker, message, handover.fds)

    def update(self, call_id: str, leg: Leg) -> None:
        """The signalling changed `leg` (its address, strict source, its latch let go)."""
        entry = self.calls.get(call_id)
        if entry is not None:
            self._send(entry[0], {"op": "update", "call": call_id, "leg": leg_signal(leg)})

    def delete(self, call_id: str) -> None:
        entry = self.calls.pop(call_id, None)
        if entry is None:
            return
        worker = entry[0]
        worker.calls.discard(call_id)
        waiting = [item for item in worker.outbox if item.call == call_id]
        if any(item.op == "add" for item in waiting):  # the worker never had it
            worker.outbox = deque(item for item in worker.outbox if item.call != call_id)
            return
        self._send(worker, {"op": "delete", "call": call_id})

    def _send(self, worker: _Worker, message: dict[str, Any], fds: list[int] | None = None) -> None:
        worker.outbox.append(
            _Outgoing(str(message["call"]), str(message["op"]), encode(message), fds or [])
        )
        if len(worker.outbox) == 1:
            self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        """Send what waits, in order, until the socket is full (then again once writable)."""
        assert self._loop is not None
        while worker.outbox:
            item = worker.outbox[0]
            try:
                socket.send_fds(worker.control, [item.data], item.fds)
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(worker.control.fileno(), self._flush, worker)
                return
            except OSError as exc:
                # A dead worker: `_on_message` sees its end close and hands its calls over.
                log.warning("transcoding worker %d: %s", worker.process.pid, exc)
                worker.outbox.clear()
                break
            worker.outbox.popleft()
        with contextlib.suppress(Exception):  # not watched for writing, or closed meanwhile
            self._loop.remove_writer(worker.control.fileno())

    def _on_message(self, worker: _Worker) -> None:
        for _ in range(64):
            try:
                # The socket stays blocking for sends (a call's sockets must reach the worker);
                # reads never wait.
                data = worker.control.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost(worker)
                return
            try:
                message = decode(data)
                if message.get("op") == "stats":
                    for call_id, state in message["calls"].items():
                        if call_id in worker.calls:
                            self.on_stats(str(call_id), state)
            except Exception:  # figures we cannot read are figures we do without
                log.exception("transcoding worker %d: bad message", worker.process.pid)

    def _lost(self, worker: _Worker) -> None:
        assert self._loop is not None
        self._loop.remove_reader(worker.control.fileno())
        self._loop.remove_writer(worker.control.fileno())
        worker.outbox.clear()  # the replacement is told of every call afresh
        worker.control.close()
        with contextlib.suppress(ValueError):
            self.workers.remove(worker)
        if self._closing:
            return
        code = worker.process.poll()
        log.error(
            "transcoding worker %d ended (exit %s): starting another for its %d calls",
            worker.process.pid, code, len(worker.calls),
        )  # fmt: skip
        self.restarts += 1
        try:
            replacement = self._spawn()
        except OSError:
            log.exception("transcoding: no worker could be started; its calls are silent")
            return
        self.workers.append(replacement)
        for call_id in worker.calls:
            entry = self.calls.get(call_id)
            if entry is not None:
                self.calls[call_id] = (replacement, entry[1])
                replacement.calls.add(call_id)
                self._send_add(replacement, call_id, entry[1])

    def close(self) -> None:
        self._closing = True
        for worker in self.workers:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(worker.control.fileno())
                    self._loop.remove_writer(worker.control.fileno())
            worker.control.close()  # the worker exits on EOF
        for worker in self.workers:
            try:
                worker.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.workers.clear()
