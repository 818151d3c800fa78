"""How lwork reaches its media relay: an external one by ``media.ng_url``, else the built-in
relay as a child process (or inline in the event loop)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

from lwork.media.ng.client import CallStats, NgClient, NgError, SdpResult
from lwork.media.relay.child import RelayChild
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer
from lwork.settings import MediaSettings


def relay_config(settings: MediaSettings) -> RelayConfig:
    return RelayConfig(
        bind_host=settings.bind_host,
        advertised_address=settings.advertised_address or None,
        ng_host="127.0.0.1",
        ng_port=0,
        port_min=settings.port_min,
        port_max=settings.port_max,
        media_timeout_s=settings.media_timeout_s,
        rtcp_interval_s=settings.rtcp_interval_s,
        connected_peers=settings.connected_peers,
        max_leg_pps=settings.max_leg_pps,
        workers=settings.relay_workers,
        realtime_priority=settings.relay_realtime_priority,
        ng_allowed_sources=tuple(settings.ng_allowed_sources),
        ng_secret=settings.ng_secret.get_secret_value(),
    )


@contextlib.asynccontextmanager
async def media_control(
    settings: MediaSettings, link: RelayLink | None = None
) -> AsyncIterator[NgClient]:
    """An ng client to the configured relay, starting the built-in one for as long as needed;
    `link` learns of the relay child (for its restart count)."""
    timeout_s = settings.ng_timeout_s
    flags = ("strict source",) if settings.strict_source else ()
    if settings.ng_url:
        url = urlsplit(settings.ng_url)
        if url.scheme not in ("udp", "") or not url.hostname or not url.port:
            raise ValueError(f"media.ng_url must be udp://host:port, not {settings.ng_url!r}")
        secret = settings.ng_secret.get_secret_value()
        async with NgClient(
            url.hostname, url.port, timeout_s=timeout_s, secret=secret, sdp_flags=flags
        ) as client:
            yield client
        return
    config = relay_config(settings)
    # The built-in relay listens on loopback, where any local user could send it commands: a
    # secret of its own (random when none is set) keeps them out.
    config = dataclasses.replace(config, ng_secret=config.ng_secret or secrets.token_hex(16))
    secret = config.ng_secret
    if settings.relay_mode == "inline":
        async with RelayServer(config) as relay:
            host, port = relay.ng_address[:2]
            async with NgClient(
                host, port, timeout_s=timeout_s, secret=secret, sdp_flags=flags
            ) as client:
                yield client
        return
    child = RelayChild(config)
    if link is not None:
        link.child = child
    try:
        port = await child.start()
        async with NgClient(
            "127.0.0.1", port, timeout_s=timeout_s, secret=secret, sdp_flags=flags
        ) as client:
            yield client
    finally:
        await child.close()


class RelayLink:
    """The media control of the call service, connected once the relay is up (at start-up)."""

    def __init__(self) -> None:
        self.client: NgClient | None = None
        self.child: RelayChild | None = None

    @property
    def restarts(self) -> int:
        """Times the built-in relay child was started again after dying (0: none, or not ours)."""
        return 0 if self.child is None else self.child.restarts

    def _ng(self) -> NgClient:
        if self.client is None:
            raise NgError("the media relay is not connected")
        return self.client

    async def offer(self, call_id: str, from_tag: str, sdp: str) -> SdpResult:
        return await self._ng().offer(call_id, from_tag, sdp)

    async def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> SdpResult:
        return await self._ng().answer(call_id, from_tag, to_tag, sdp)

    async def delete(self, call_id: str, from_tag: str | None = None) -> CallStats | None:
        return await self._ng().delete(call_id, from_tag)

    async def forget(self, call_id: str) -> None:
        await self._ng().forget(call_id)

    async def query(self, call_id: str, from_tag: str | None = None) -> CallStats:
        return await self._ng().query(call_id, from_tag)

    async def query_many(self, call_ids: Sequence[str]) -> dict[str, CallStats]:
        return await self._ng().query_many(call_ids)

    async def relay_address(self, call_id: str, tag: str) -> tuple[str, int]:
        return await self._ng().relay_address(call_id, tag)

    async def play_dtmf(self, call_id: str, from_tag: str, digit: str) -> None:
        await self._ng().play_dtmf(call_id, from_tag, digit)
