"""The built-in relay as `lwork serve` starts it: its process tree, workers and scheduling.

Real processes throughout: the relay child of `media_control`, its workers, and what the
kernel reports of their scheduling (`/proc`, `sched_getscheduler`).
"""

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lwork.media.control import media_control, relay_config
from lwork.media.ng.client import NgClient, NgError
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.sharding import split_ports
from lwork.media.sdp_min import build_sdp
from lwork.settings import MediaSettings

from fakes.rtp_peer import RtpPeer, eventually

HOST = "127.0.0.1"
PORTS = {"port_min": 24000, "port_max": 24999}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _relay_tree() -> tuple[int, list[int]]:
    """The relay child of this test process and that child's own children."""
    relays = [
        pid
        for pid in _children(os.getpid())
        if b"lwork.media.relay" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(relays) == 1, relays
    return relays[0], _children(relays[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _answers_again(ng: NgClient) -> bool:
    for _ in range(50):
        with contextlib.suppress(NgError):
            if await ng.ping():
                return True
        await asyncio.sleep(0.1)
    return False


def _realtime_allowed() -> bool:
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


async def test_relay_workers_from_settings_share_calls_and_leave_with_the_api() -> None:
    settings = MediaSettings(relay_workers=2, **PORTS)
    slices = split_ports(PORTS["port_min"], PORTS["port_max"], 2)
    peers = [await RtpPeer.open() for _ in range(2)]
    try:
        async with media_control(settings) as relay:
            ng = relay.ng
            front, workers = _relay_tree()
            assert len(workers) == 2
            used = set()
            for i in range(8):
                await ng.offer(f"c{i}", "a", build_sdp(HOST, peers[0].port))
                port = (
                    await ng.answer(f"c{i}", "a", "b", build_sdp(HOST, peers[1].port))
                ).media.port
                used.add(next(n for n, (lo, hi) in enumerate(slices) if lo <= port <= hi))
            assert used == {0, 1}
            # media flows through whichever worker owns the call
            offer = await ng.offer("media", "a", build_sdp(HOST, peers[0].port))
            answer = await ng.answer("media", "a", "b", build_sdp(HOST, peers[1].port))
            peers[0].send_rtp(RtpPacket(102, 1, 160, 0xA, bytes(32)), (HOST, answer.media.port))
            peers[1].send_rtp(RtpPacket(102, 1, 160, 0xB, bytes(32)), (HOST, offer.media.port))
            assert len(await peers[1].wait_rtp(1)) == 1 and len(await peers[0].wait_rtp(1)) == 1
            assert sorted(await ng.list()) == sorted([f"c{i}" for i in range(8)] + ["media"])
        # the API closing its link stops the front, and the front its workers: no orphans
        assert await eventually(lambda: not any(map(_alive, [front, *workers])), 10)
    finally:
        for peer in peers:
            peer.close()


@pytest.mark.skipif(not _realtime_allowed(), reason="no root, CAP_SYS_NICE or RLIMIT_RTPRIO here")
async def test_realtime_priority_raises_the_packet_processes_only() -> None:
    settings = MediaSettings(relay_workers=2, relay_realtime_priority=3, **PORTS)
    async with media_control(settings) as relay:
        ng = relay.ng
        assert await ng.ping()
        front, workers = _relay_tree()
        assert os.sched_getscheduler(front) == os.SCHED_OTHER  # routes ng only
        for worker in workers:
            assert os.sched_getscheduler(worker) == os.SCHED_FIFO
            assert os.sched_getparam(worker).sched_priority == 3
        assert os.sched_getscheduler(os.getpid()) == os.SCHED_OTHER  # never the API itself


async def test_a_refused_priority_leaves_the_relay_running_and_says_why() -> None:
    command = [sys.executable, "-m", "lwork.media.relay", "--config-json"]
    config = relay_config(MediaSettings(relay_realtime_priority=3, **PORTS))
    command.append(json.dumps(dataclasses.asdict(config)))
    if _realtime_allowed():
        setpriv = shutil.which("setpriv")
        if setpriv is None or os.geteuid() != 0:
            pytest.skip("real-time scheduling is allowed here and setpriv cannot take it away")
        command = [setpriv, "--bounding-set=-sys_nice", *command]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.startswith(b"READY ")
        async with NgClient(HOST, int(line.split()[1]), timeout_s=2.0) as ng:
            assert await ng.ping()
        assert os.sched_getscheduler(process.pid) == os.SCHED_OTHER
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 10)
    log = (await process.stderr.read()).decode()
    assert "real-time priority 3 refused" in log and "normal scheduling" in log


async def test_a_relay_that_dies_is_restarted_on_the_same_ng_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = await RtpPeer.open()
    try:
        async with media_control(MediaSettings(ng_timeout_s=0.2, **PORTS)) as relay:
            ng = relay.ng
            first, _ = _relay_tree()
            await ng.offer("before", "a", build_sdp(HOST, peer.port))
            os.kill(first, signal.SIGKILL)
            assert await eventually(lambda: not _alive(first), 5)
            assert await _answers_again(ng)  # the same ng client, unchanged
            second, _ = _relay_tree()
            assert second != first
            with pytest.raises(NgError, match="Unknown call-id"):
                await ng.query("before")  # its calls died with it, and nothing pretends not
            assert (await ng.offer("after", "a", build_sdp(HOST, peer.port))).media.port
            assert relay.restarts == 1  # /metrics: lwork_relay_restarts_total
        assert "media relay exited (code -9); restarting it" in caplog.text
        assert "media relay restarted (1 so far)" in caplog.text
        assert not _alive(second)
    finally:
        peer.close()


async def test_a_dead_worker_is_restarted_and_the_other_workers_calls_go_on() -> None:
    slices = split_ports(PORTS["port_min"], PORTS["port_max"], 2)
    peers = [await RtpPeer.open() for _ in range(2)]
    try:
        async with media_control(
            MediaSettings(relay_workers=2, ng_timeout_s=0.2, **PORTS)
        ) as relay:
            ng = relay.ng
            front, workers = _relay_tree()
            by_slice: dict[int, str] = {}
            for i in range(12):  # a call on each worker
                await ng.offer(f"c{i}", "a", build_sdp(HOST, peers[0].port))
                port = (
                    await ng.answer(f"c{i}", "a", "b", build_sdp(HOST, peers[1].port))
                ).media.port
                by_slice.setdefault(
                    next(n for n, (lo, hi) in enumerate(slices) if lo <= port <= hi), f"c{i}"
                )
            assert set(by_slice) == {0, 1}
            victim = next(  # the worker owning slice 0: its /proc cmdline names its ports
                pid
                for pid in workers
                if f'"port_min": {slices[0][0]},' in Path(f"/proc/{pid}/cmdline").read_text()
            )
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                front_now, workers_now = _relay_tree()
                assert front_now == front  # the front, and the other worker, stay
                return len(workers_now) == 2 and victim not in workers_now

            assert await eventually(replaced, 10)
            assert await _answers_again(ng)
            assert (await ng.query(by_slice[1])).legs  # the other worker's call lives on
            # the dead worker's call is gone, and its replacement says so once it listens
            answer = ""
            for _ in range(50):
                try:
                    await ng.query(by_slice[0])
                except NgError as exc:
                    answer = str(exc)
                    if "Unknown call-id" in answer:
                        break
                await asyncio.sleep(0.1)
            assert "Unknown call-id" in answer
    finally:
        for peer in peers:
            peer.close()


@pytest.mark.parametrize("how", ["ctrl_c", "service_stop"])
async def test_stopping_lwork_serve_stops_its_relay_without_restarting_it(
    how: str, tmp_path: Path
) -> None:
    # A terminal's Ctrl-C sends SIGINT to the foreground process group; a service manager
    # (systemd's KillMode=control-group) sends SIGTERM to every process of the service.
    import httpx

    from fakes.servers import free_port

    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        serve = subprocess.Popen(
            [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
            env={**os.environ, "LWORK_DATA_DIR": str(tmp_path / "var"),
                 "LWORK_MEDIA__PORT_MIN": "26000", "LWORK_MEDIA__PORT_MAX": "26999"},
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://{HOST}:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(log_path.read_text())
        relays = [
            pid
            for pid in _children(serve.pid)
            if b"lwork.media.relay" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(relays) == 1
        if how == "ctrl_c":
            os.killpg(serve.pid, signal.SIGINT)  # the relay has a session of its own
        else:
            os.kill(serve.pid, signal.SIGTERM)
            os.kill(relays[0], signal.SIGTERM)
        # uvicorn re-raises a SIGTERM once it has shut down (systemd counts that a clean stop)
        expected = 0 if how == "ctrl_c" else -signal.SIGTERM
        assert await asyncio.to_thread(serve.wait, 20) == expected
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    log = log_path.read_text()
    assert "Application shutdown complete" in log, log
    assert "; restarting it" not in log and " ERROR " not in log and "Traceback" not in log, log
    assert not _alive(relays[0])
