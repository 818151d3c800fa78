"""How lwork reaches its media relay: an external one by ``media.ng_url``, else the built-in
relay as a child process (or inline in the event loop)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from lwork.media.ng.client import NgClient
from lwork.media.ng_transcoding import offer_codecs, probe
from lwork.media.relay.child import RelayChild
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer
from lwork.settings import MediaSettings

log = logging.getLogger(__name__)
NO_TRANSCODING = (
    "media: %s does not transcode AMR <-> G.711: a carrier must speak AMR to be understood "
    "(a G.711 carrier is logged per call, and kept in the call record's carrier_codec)"
)


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
        transcoding=settings.transcoding and transcoding_refused(settings) is None,
        transcode_workers=settings.transcode_workers,
    )


async def external_transcoding(settings: MediaSettings, client: NgClient) -> bool:
    """Whether the relay at ``media.ng_url`` transcodes AMR <-> G.711 for lwork: asked once at
    start-up (`ng_transcoding.probe`), said once in the log. When it does, lwork's offers ask
    it to (the ng ``codec`` option) and carriers are offered and answered G.711."""
    where = f"the relay at {settings.ng_url}"
    if not settings.transcoding:
        log.warning(NO_TRANSCODING + " (%s)", where, "media.transcoding is off")
        return False
    why = await probe(client)
    if why is not None:
        # Debian's rtpengine, for one: it decodes AMR but cannot encode it.
        log.warning(NO_TRANSCODING + " (%s)", where, why)
        return False
    log.info("media: %s transcodes AMR <-> G.711 for G.711 carriers (ng codec options)", where)
    client.offer_codecs = offer_codecs
    return True


def transcoding_refused(settings: MediaSettings) -> str | None:
    """Why the built-in relay will not transcode with these settings; None: it will."""
    if not settings.transcoding:
        return "media.transcoding is off"
    from lwork.media.codecs import amrnb

    return amrnb.available()


@dataclasses.dataclass(frozen=True)
class RelayConnection:
    """The relay lwork is connected to: its ng client, and the relay child process when lwork
    started one (None for an external relay or the inline one)."""

    ng: NgClient
    child: RelayChild | None = None
    transcoding: bool = False
    """The relay transcodes AMR <-> G.711: carriers may be offered and answered G.711."""

    @property
    def restarts(self) -> int:
        """Times the built-in relay child was started again after dying (0: none, or not ours)."""
        return 0 if self.child is None else self.child.restarts


@contextlib.asynccontextmanager
async def media_control(settings: MediaSettings) -> AsyncIterator[RelayConnection]:
    """A connection to the configured relay, starting the built-in one for as long as needed."""
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
            yield RelayConnection(client, transcoding=await external_transcoding(settings, client))
        return
    config = relay_config(settings)
    refused = transcoding_refused(settings)
    if refused is None:
        log.info("media: the built-in relay transcodes AMR <-> G.711 for G.711 carriers")
    else:
        log.warning(NO_TRANSCODING + " (%s)", "the built-in relay", refused)
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
                yield RelayConnection(client, transcoding=config.transcoding)
        return
    child = RelayChild(config)
    try:
        port = await child.start()
        async with NgClient(
            "127.0.0.1", port, timeout_s=timeout_s, secret=secret, sdp_flags=flags
        ) as client:
            yield RelayConnection(client, child, transcoding=config.transcoding)
    finally:
        await child.close()
