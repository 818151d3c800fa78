"""`python -m lwork.media.relay`: a stand-alone relay for development and benchmarks, and the
worker process of a multi-process relay (`--config-json`). Production starts the relay through
`lwork relay` with lwork's settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal

from lwork.media.relay.child import SECRET_ENV
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.front import serve_sharded
from lwork.media.relay.scheduling import apply_realtime_priority
from lwork.media.relay.server import RelayServer, new_runner, run_relay
from lwork.observability import setup_logging


async def _worker(config: RelayConfig) -> None:
    """Serve one shard, or with `workers` > 1 the front of several (the API's relay child);
    announce the ng port on stdout; exit when the parent closes stdin."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(0, 4096):
            stop.set()

    loop.add_reader(0, on_stdin)
    # Stopped on purpose, by whichever signal: exit 0, which tells the parent not to restart it.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if config.workers > 1:
        front = asyncio.create_task(
            serve_sharded(config, lambda address: print(f"READY {address[1]}", flush=True))
        )
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([front, stopped], return_when=asyncio.FIRST_COMPLETED)
        front.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await front  # a worker that failed to start surfaces here, and the process exits
        return
    apply_realtime_priority(config.realtime_priority)
    async with RelayServer(config) as relay:
        print(f"READY {relay.ng_address[1]}", flush=True)
        await stop.wait()


def _config_from_json(text: str) -> RelayConfig:
    names = {f.name for f in dataclasses.fields(RelayConfig)}
    values = {k: v for k, v in json.loads(text).items() if k in names}
    values["ng_allowed_sources"] = tuple(values.get("ng_allowed_sources", ("127.0.0.1",)))
    values["ng_secret"] = os.environ.get(SECRET_ENV, "")
    return RelayConfig(**values)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lwork.media.relay")
    parser.add_argument("--ng", default="127.0.0.1:2223", help="ng control address host:port")
    parser.add_argument("--bind", default="127.0.0.1", help="address RTP sockets bind to")
    parser.add_argument("--advertise", default=None, help="address written into SDP")
    parser.add_argument("--ports", default="30000-40000", help="RTP port range min-max")
    parser.add_argument("--timeout", type=float, default=60.0, help="media timeout, seconds")
    parser.add_argument("--workers", type=int, default=1, help="relay processes (one per core)")
    parser.add_argument(
        "--max-leg-pps", type=int, default=1000, help="packets/s per phone, 0: no limit"
    )
    parser.add_argument(
        "--realtime-priority", type=int, default=0, help="SCHED_FIFO priority 1-99 (0: off)"
    )
    parser.add_argument(
        "--ng-allow",
        default="127.0.0.0/8,::1",
        help=f"comma-separated networks ng requests are taken from (secret: ${SECRET_ENV})",
    )
    parser.add_argument(
        "--transcode", action="store_true", help="transcode AMR <-> G.711 (libopencore-amrnb)"
    )
    parser.add_argument(
        "--transcode-workers", type=int, default=1, help="transcoding processes (with --transcode)"
    )
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--config-json", help="worker mode: full RelayConfig as JSON")
    args = parser.parse_args()
    setup_logging("info")  # lwork's own line format, so a relay child's lines read alike
    if args.config_json:
        config = _config_from_json(args.config_json)
        with new_runner(config) as runner:
            runner.run(_worker(config))
        return
    ng_host, _, ng_port = args.ng.rpartition(":")
    low, _, high = args.ports.partition("-")
    run_relay(
        RelayConfig(
            bind_host=args.bind,
            advertised_address=args.advertise,
            ng_host=ng_host or "127.0.0.1",
            ng_port=int(ng_port),
            port_min=int(low),
            port_max=int(high),
            media_timeout_s=args.timeout,
            use_uvloop=not args.no_uvloop,
            workers=args.workers,
            realtime_priority=args.realtime_priority,
            max_leg_pps=args.max_leg_pps,
            ng_allowed_sources=tuple(n.strip() for n in args.ng_allow.split(",") if n.strip()),
            ng_secret=os.environ.get(SECRET_ENV, ""),
            transcoding=args.transcode,
            transcode_workers=args.transcode_workers,
        )
    )


if __name__ == "__main__":
    main()
