"""The front of a multi-process relay: worker processes plus an ng router. I/O only.

`serve_sharded` starts `config.workers` relay processes (`python -m lwork.media.relay
--config-json ...`, restarted when they die), each with a slice of the port range and a private
ng port on loopback, then forwards every ng request verbatim to the worker owning its call-id
and the reply back. The front applies `ng_allowed_sources` and `ng_secret` itself, before any
forwarding; the workers take requests from loopback only and check the same secret again (a
verbatim request keeps its signature; the front signs the requests it writes itself).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import cast

from lwork.media.ng import bencode
from lwork.media.ng.auth import SourcePolicy, sign_cookie, verify_cookie
from lwork.media.relay.child import RelayChild
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.sharding import merge_lists, merge_statistics, split_ports, worker_for

log = logging.getLogger(__name__)
Address = tuple[str, int]
MAX_PENDING = 10_000


class _WorkerLink(asyncio.DatagramProtocol):
    """The front's socket toward one worker's ng port."""

    def __init__(self, front: _Front) -> None:
        self.front = front
        self.transport: asyncio.DatagramTransport | None = None
        self.fanout: dict[bytes, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        cookie, _, body = data.partition(b" ")
        future = self.fanout.pop(cookie, None)
        if future is not None:
            if not future.done():
                future.set_result(body)
            return
        client = self.front.pending.get((id(self), cookie))
        if client is not None and self.front.transport is not None:
            self.front.transport.sendto(data, client[0])


class _Front(asyncio.DatagramProtocol):
    """The public ng socket: routes by call-id, merges `list` and `statistics`."""

    def __init__(self, links: list[_WorkerLink], config: RelayConfig) -> None:
        self.links = links
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: OrderedDict[tuple[int, bytes], tuple[Address, float]] = OrderedDict()
        self.malformed = 0
        self.refused = 0
        self.sources = SourcePolicy(config.ng_allowed_sources)
        self.secret = config.ng_secret.encode()
        self.window_s = config.ng_cache_s
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not self.sources.allows(addr[0]):
            self.refused += 1
            return
        cookie, sep, body = data.partition(b" ")
        if not sep or not cookie or len(cookie) > 128:
            self.malformed += 1
            return
        if self.secret and not verify_cookie(self.secret, cookie, body, time.time(), self.window_s):
            self.refused += 1
            reply = {"result": "error", "error-reason": "Authentication failed"}
            if self.transport is not None:
                self.transport.sendto(cookie + b" " + bencode.encode(reply), addr)
            return
        try:
            message = bencode.decode(body)
        except ValueError:
            message = None
        command = message.get(b"command") if isinstance(message, dict) else None
        if isinstance(message, dict) and command in (b"list", b"statistics"):
            task = asyncio.get_running_loop().create_task(self._merge(cookie, message, addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        call_id = message.get(b"call-id") if isinstance(message, dict) else None
        # Requests without a call-id (ping, garbage) go to worker 0, which answers them exactly
        # as a single relay would.
        index = worker_for(call_id, len(self.links)) if isinstance(call_id, bytes) else 0
        link = self.links[index]
        self.pending[(id(link), cookie)] = (addr, time.monotonic())
        self.pending.move_to_end((id(link), cookie))
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        if link.transport is not None:
            link.transport.sendto(data)

    async def _merge(
        self, cookie: bytes, message: dict[bytes, bencode.BValue], addr: Address
    ) -> None:
        loop = asyncio.get_running_loop()
        futures = []
        body = bencode.encode(message)
        for index, link in enumerate(self.links):
            inner = b"%s-%d" % (cookie, index)
            if self.secret:
                inner = sign_cookie(self.secret, inner, body, time.time())
            future: asyncio.Future[bytes] = loop.create_future()
            link.fanout[inner] = future
            futures.append(future)
            if link.transport is not None:
                link.transport.sendto(inner + b" " + body)
        try:
            bodies = await asyncio.wait_for(asyncio.gather(*futures), timeout=2.0)
            replies = [bencode.decode(b) for b in bodies]
        except (TimeoutError, ValueError):
            reply: dict[str, bencode.Encodable] = {
                "result": "error",
                "error-reason": "relay worker did not answer",
            }
        else:
            dicts = [r for r in replies if isinstance(r, dict)]
            if message.get(b"command") == b"list":
                limit = message.get(b"limit")
                reply = {
                    "result": "ok",
                    "calls": merge_lists(dicts, limit if isinstance(limit, int) else 32),
                }
            else:
                stats = merge_statistics([d.get(b"statistics", {}) for d in dicts])
                reply = {"result": "ok", "statistics": stats}
        finally:
            for link in self.links:
                for key in [k for k in link.fanout if k.startswith(cookie + b"-")]:
                    link.fanout.pop(key, None)
        if self.transport is not None:
            self.transport.sendto(cookie + b" " + bencode.encode(reply), addr)


async def serve_sharded(
    config: RelayConfig, on_ready: Callable[[Address], None] | None = None
) -> None:
    """Run `config.workers` relay processes behind one ng socket until cancelled; `on_ready`
    gets the ng socket's address (its port, when `config.ng_port` is 0) once all are up.

    A worker that dies is started again on its ports and private ng port (RelayChild): the
    calls it carried are gone, the other workers' go on."""
    loop = asyncio.get_running_loop()
    children: list[RelayChild] = []
    transports: list[asyncio.BaseTransport] = []
    try:
        links: list[_WorkerLink] = []
        front = _Front(links, config)
        for ports in split_ports(config.port_min, config.port_max, config.workers):
            child = RelayChild(
                dataclasses.replace(
                    config,
                    ng_host="127.0.0.1",
                    ng_port=0,
                    ng_allowed_sources=("127.0.0.1",),  # the front's links
                    port_min=ports[0],
                    port_max=ports[1],
                    workers=1,
                )
            )
            children.append(child)
            ng_port = await child.start()
            transport, link = await loop.create_datagram_endpoint(
                lambda: _WorkerLink(front), remote_addr=("127.0.0.1", ng_port)
            )
            transports.append(transport)
            links.append(link)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: front, local_addr=(config.ng_host, config.ng_port)
        )
        transports.append(transport)
        address = cast(Address, transport.get_extra_info("sockname")[:2])
        log.info("media relay: %d workers behind ng %s:%d", len(links), *address)
        if on_ready is not None:
            on_ready(address)
        await asyncio.Event().wait()
    finally:
        for item in transports:
            item.close()
        for child in children:
            await child.close()
