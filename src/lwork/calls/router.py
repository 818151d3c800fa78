"""Requests for a call reach the node that holds it (DESIGN: scaling out).

A call lives on the node that created it, and its session id starts with that node's name. A
request for a call held elsewhere (a status poll, hang-up, DTMF, the callee's ringing/answer/
reject, a callback's status) is sent over the bus to that node, which runs it and answers the
same way. If that node does not answer within ``timeout_s`` (it is down, and its calls went with
it) or no bus links the nodes, the request runs here, where the call is unknown: the app then
gets what it gets for any ended call (``release``, ``session_not_exist``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from lwork.errors import Failed
from lwork.http.routing import AfterSend, RawReply, Reply
from lwork.ids import random_hex
from lwork.push.bus import Bus, BusMessage, BusUnavailable, CallReply, CallRequest

log = logging.getLogger("lwork.calls")
Operation = Callable[[str, dict[str, Any]], Awaitable[Reply]]
"""A call request as this node runs it: (session id, arguments) -> the reply."""


def node_of(sid: str) -> str:
    return sid.partition("@@")[0]


class CallRouter:
    def __init__(self, node: str, bus: Bus | None, timeout_s: float = 2.0) -> None:
        """``bus`` None: one node, every call is local."""
        self.node = node
        self._bus = bus
        self._timeout_s = timeout_s
        self._operations: dict[str, Operation] = {}
        self._waiting: dict[str, asyncio.Future[CallReply]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.forwarded = 0
        self.unanswered = 0
        if bus is not None:
            bus.subscribe(self._on_message)

    def register(self, name: str, operation: Operation) -> None:
        self._operations[name] = operation

    async def run(self, sid: str, name: str, args: dict[str, Any] | None = None) -> Reply:
        """Run operation ``name`` for call ``sid`` where the call lives."""
        args = args or {}
        node = node_of(sid)
        if node == self.node or self._bus is None:
            return await self._operations[name](sid, args)
        self.forwarded += 1
        answer = await self._ask(node, sid, name, args)
        if answer is None:
            self.unanswered += 1
            return await self._operations[name](sid, args)  # the call is gone with its node
        if answer.failed is not None:
            raise Failed(answer.failed, **answer.extra)
        return answer.reply

    async def ask_node(
        self, node: str, name: str, args: dict[str, Any] | None = None
    ) -> Reply | None:
        """Run operation ``name`` on ``node`` itself, for no call (a scrape of its metrics).
        None if no bus links the nodes, the bus is down, or ``node`` did not answer in time."""
        if self._bus is None:
            return None
        try:
            answer = await self._ask(node, f"{node}@@", name, args or {})
        except BusUnavailable:
            return None
        if answer is None or answer.failed is not None:
            return None
        return answer.reply

    async def _ask(self, node: str, sid: str, name: str, args: dict[str, Any]) -> CallReply | None:
        assert self._bus is not None
        request_id = random_hex(12)
        future: asyncio.Future[CallReply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await self._bus.publish(CallRequest(node, request_id, self.node, name, sid, args))
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            log.warning("node %s did not answer %s (%s)", node, name, sid)
            return None
        finally:
            self._waiting.pop(request_id, None)

    def _on_message(self, message: BusMessage) -> None:
        match message:
            case CallReply() if message.node == self.node:
                future = self._waiting.get(message.request_id)
                if future is not None and not future.done():
                    future.set_result(message)
            case CallRequest() if message.node == self.node:
                task = asyncio.get_running_loop().create_task(self._serve(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _serve(self, request: CallRequest) -> None:
        operation = self._operations.get(request.op)
        if operation is None:
            log.warning("call request for an unknown operation on the bus: %r", request)
            return
        try:
            answer = await operation(request.sid, request.args)
            if isinstance(answer, AfterSend | RawReply):
                raise TypeError("call operations answer at once")
            reply = CallReply(request.origin, request.request_id, reply=msgspec.to_builtins(answer))
        except Failed as exc:
            reply = CallReply(request.origin, request.request_id, failed=exc.reason,
                              extra=msgspec.to_builtins(exc.extra))  # fmt: skip
        except Exception:  # answered as any failure of ours is: never a silent timeout
            log.exception("call request %s from %s", request.op, request.origin)
            reply = CallReply(request.origin, request.request_id, failed="service_not_available")
        assert self._bus is not None  # requests only arrive over a bus
        with contextlib.suppress(Exception):  # the bus is down: the asker times out
            await self._bus.publish(reply)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
