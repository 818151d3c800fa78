"""A transcoding worker reports each call's figures to the relay once per STATS_S, a slice of
its calls at a time (never all in one burst that every packet would wait behind)."""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator

import pytest

from lwork.media.codecs import amrnb
from lwork.media.relay.transcode_plan import LegCodec, Plan
from lwork.media.relay.transcode_wire import plan_to_json
from lwork.media.relay.transcode_worker import STATS_SLICES, Worker

pytestmark = pytest.mark.skipif(amrnb.available() is not None, reason=str(amrnb.available()))


@pytest.fixture
def worker() -> Iterator[tuple[Worker, socket.socket]]:
    ours, relay = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    relay.setblocking(False)
    made = Worker(ours, rtcp_interval_s=5.0, max_leg_pps=0)
    yield made, relay
    for call_id in list(made.calls):
        made.delete(call_id)
    made.epoll.close()
    ours.close()
    relay.close()


def add_call(worker: Worker, call_id: str) -> None:
    socks = []
    for _ in range(4):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [sock.getsockname()[1] for sock in socks]
    plan = Plan(ports[0], ports[2], LegCodec("AMR", 102), LegCodec("PCMA", 8))
    legs = [
        {"tag": tag, "port": port, "clock_rate": 8000, "advertised": None, "strict": False,
         "expected_host": None, "rtp_peer": None, "rtcp_peer": None, "events": []}
        for tag, port in (("app", ports[0]), ("carrier", ports[2]))
    ]  # fmt: skip
    message = {"op": "add", "call": call_id, "plan": plan_to_json(plan), "legs": legs}
    worker.add(message, [sock.detach() for sock in socks])


def reported(relay: socket.socket) -> list[str]:
    calls: list[str] = []
    while True:
        try:
            message = json.loads(relay.recv(1 << 16))
        except BlockingIOError:
            return calls
        assert message["op"] == "stats"
        calls += list(message["calls"])


def test_each_call_is_reported_once_a_round_a_slice_at_a_time(
    worker: tuple[Worker, socket.socket],
) -> None:
    made, relay = worker
    for n in range(25):
        add_call(made, f"call-{n}")
    made.delete("call-7")
    slices = []
    for _ in range(STATS_SLICES):
        made.send_stats()
        slices.append(reported(relay))
    assert max(len(s) for s in slices) == 3  # 25 calls in 10 slices: 3 at most in one
    assert Counter(c for s in slices for c in s) == {f"call-{n}": 1 for n in range(25) if n != 7}
    # The next round reports them all again, and a call added meanwhile within it.
    add_call(made, "late")
    again = []
    for _ in range(STATS_SLICES):
        made.send_stats()
        again += reported(relay)
    assert sorted(again) == sorted([*made.calls])
