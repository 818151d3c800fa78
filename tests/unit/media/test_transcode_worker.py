"""A transcoding worker reports each call's figures to the relay once per STATS_S, a slice of
its calls at a time (never all in one burst that every packet would wait behind), and runs
below a real-time relay that started it, never beside it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


def _realtime_allowed() -> bool:
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(not _realtime_allowed(), reason="no root, CAP_SYS_NICE or RLIMIT_RTPRIO here")
@pytest.mark.parametrize(("relay", "expected"), [
    (3, (os.SCHED_FIFO, 2)), (1, (os.SCHED_OTHER, 0)), (0, (os.SCHED_OTHER, 0)),
])  # fmt: skip
def test_a_worker_runs_below_its_real_time_relay(relay: int, expected: tuple[int, int]) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def as_the_relay() -> None:  # what a relay with media.relay_realtime_priority runs at
        if relay:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(relay))

    worker = subprocess.Popen(
        [sys.executable, "-m", "lwork.media.relay.transcode_worker", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),), preexec_fn=as_the_relay, stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    theirs.close()
    try:
        # Running: it answers a bad message by logging it (after it set its scheduling).
        ours.send(b"{}")
        assert worker.stderr is not None
        lines = [worker.stderr.readline()]
        while b"bad control message" not in lines[-1] and len(lines) < 5:
            lines.append(worker.stderr.readline())
        assert b"bad control message" in lines[-1]
        assert (b"below the relay" in lines[0]) is (relay > 0)  # and says so when it does
        found = (os.sched_getscheduler(worker.pid), os.sched_getparam(worker.pid).sched_priority)
        assert found == expected
    finally:
        ours.close()  # the worker exits when the relay's end closes
        worker.wait(10)
