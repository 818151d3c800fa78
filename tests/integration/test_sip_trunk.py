"""The SIP trunk against a real carrier look-alike: sipp scenarios from tests/data/sipp/."""

import asyncio
import hashlib
import re
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.user_agent import InboundCall, Trunk

from fakes.leg_recorder import RecordingListener

SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
SCENARIOS = Path(__file__).parent.parent / "data" / "sipp"
WAIT = 30.0  # generous for a loaded 2-core machine; the happy path takes well under a second
OFFER = (
    "v=0\r\no=lwork 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 96 8 0 101\r\na=rtpmap:96 AMR/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
ANSWER = (
    "v=0\r\no=lwork 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40010 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


def free_udp_port() -> int:
    """A port free for both UDP and TCP (sipp listens on both kinds in these tests)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def base_config(proxy_port: int, **changes: object) -> TrunkConfig:
    config = TrunkConfig(
        proxy_host="127.0.0.1",
        proxy_port=proxy_port,
        listen_port=0,
        number_rules=(NumberRule("00", "+"), NumberRule("0", "+44")),
        default_country_code="44",
        options_interval_s=0,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


class Sipp:
    """One sipp process playing a scenario file for a single call."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(
        cls, tmp_path: Path, scenario: str, *args: str, ip: str = "127.0.0.1"
    ) -> "Sipp":
        assert SIPP is not None
        process = await asyncio.create_subprocess_exec(
            SIPP, "-sf", str(SCENARIOS / scenario), *args, "-m", "1", "-nostdin",
            "-timeout", "20s", "-timeout_error", "-i", ip, "-mi", ip,
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process)

    async def finished(self) -> tuple[int, str]:
        output, _ = await asyncio.wait_for(self.process.communicate(), 30)
        assert self.process.returncode is not None
        return self.process.returncode, output.decode(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def wait_for_tcp_listener(port: int) -> None:
    """sipp binds its TCP port a moment after it starts; our INVITE needs it there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert loop.time() < deadline, "sipp never listened"
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def never_called(call: InboundCall) -> None:
    raise AssertionError(f"unexpected inbound call {call.call_id}")


@asynccontextmanager
async def running_trunk(
    config: TrunkConfig, on_invite: Callable[[InboundCall], Awaitable[None]] = never_called
) -> AsyncIterator[Trunk]:
    trunk = Trunk(config, on_invite)
    await trunk.start()
    try:
        yield trunk
    finally:
        await trunk.close()


@asynccontextmanager
async def carrier(tmp_path: Path, scenario: str, *args: str) -> AsyncIterator[tuple[Sipp, int]]:
    port = free_udp_port()
    sipp = await Sipp.start(tmp_path, scenario, "-p", str(port), *args)
    try:
        yield sipp, port  # INVITE retransmissions (timer A) cover sipp binding late
    finally:
        sipp.kill()


@pytest.mark.parametrize(("transport", "sipp_mode"), [("udp", "u1"), ("tcp", "t1")])
async def test_carrier_answers_and_we_hang_up(
    tmp_path: Path, transport: str, sipp_mode: str
) -> None:
    async with carrier(tmp_path, "uas_answer.xml", "-t", sipp_mode) as (sipp, port):
        if transport == "tcp":
            await wait_for_tcp_listener(port)
        async with running_trunk(base_config(port, transport=transport)) as trunk:
            listener = RecordingListener()
            call = await trunk.dial("020 7946 0000", "+441632960001", OFFER, listener)
            kind, sdp = await listener.next()
            assert kind == "answered" and "PCMA/8000" in str(sdp)
            assert call.number == "+442079460000"
            call.hangup()
            code, output = await sipp.finished()
            assert code == 0, output
            assert trunk.stats.active_calls == 0 and trunk.stats.malformed == 0


async def test_carrier_rings_answers_and_hangs_up(tmp_path: Path) -> None:
    async with carrier(tmp_path, "uas_ring_answer_bye.xml") as (sipp, port):
        async with running_trunk(base_config(port)) as trunk:
            listener = RecordingListener()
            await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            assert await listener.next() == ("ringing", None)
            kind, early = await listener.next()
            assert kind == "ringing" and "PCMU/8000" in str(early)
            kind, sdp = await listener.next()
            assert kind == "answered" and "m=audio 40102" in str(sdp)
            assert await listener.next() == ("ended", "remote_bye")
            code, output = await sipp.finished()
            assert code == 0, output
            assert trunk.stats.active_calls == 0


async def test_carrier_busy_fails_the_leg(tmp_path: Path) -> None:
    async with carrier(tmp_path, "uas_busy.xml") as (sipp, port):
        async with running_trunk(base_config(port)) as trunk:
            listener = RecordingListener()
            await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            assert await listener.next() == ("failed", (486, "Busy Here"))
            code, output = await sipp.finished()
            assert code == 0, output  # sipp got its ACK
            assert trunk.stats.active_calls == 0


async def test_hangup_before_answer_cancels(tmp_path: Path) -> None:
    async with carrier(tmp_path, "uas_no_answer.xml") as (sipp, port):
        async with running_trunk(base_config(port)) as trunk:
            listener = RecordingListener()
            call = await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            assert await listener.next() == ("ringing", None)
            call.hangup()
            code, output = await sipp.finished()
            assert code == 0, output  # CANCEL seen, 487 ACKed
            assert call.final_status == 487
            assert listener.events.empty()  # no callbacks after our own hangup


async def test_challenge_is_answered_with_a_digest_sipp_verifies(tmp_path: Path) -> None:
    async with carrier(tmp_path, "uas_auth_401.xml") as (sipp, port):
        config = base_config(port, username="trunkuser", password="s3cret")
        async with running_trunk(config) as trunk:
            listener = RecordingListener()
            call = await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            kind, _ = await listener.next()
            assert kind == "answered"  # sipp's verifyauth accepted the digest
            call.hangup()
            code, output = await sipp.finished()
            assert code == 0, output


async def test_wrong_password_ends_in_failure(tmp_path: Path) -> None:
    async with carrier(tmp_path, "uas_auth_401.xml") as (sipp, port):
        config = base_config(port, username="trunkuser", password="wrong")
        async with running_trunk(config) as trunk:
            listener = RecordingListener()
            await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            assert await listener.next() == ("failed", (403, "Forbidden"))
            code, _ = await sipp.finished()
            assert code != 0  # the scenario's bad-credentials branch fails the call


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


async def test_proxy_challenge_is_answered_with_a_valid_digest(tmp_path: Path) -> None:
    port = free_udp_port()
    sipp = await Sipp.start(tmp_path, "uas_auth_407.xml", "-p", str(port), "-trace_logs")
    try:
        config = base_config(port, username="trunkuser", password="s3cret")
        async with running_trunk(config) as trunk:
            listener = RecordingListener()
            call = await trunk.dial("+442079460000", "+441632960001", OFFER, listener)
            kind, _ = await listener.next()
            assert kind == "answered"
            call.hangup()
            code, output = await sipp.finished()
            assert code == 0, output
    finally:
        sipp.kill()
    # sipp cannot verify Proxy-Authorization itself: recompute RFC 2617 from its log.
    (log_file,) = tmp_path.glob("uas_auth_407_*_logs.log")
    logged = log_file.read_text()
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', logged[logged.index("Digest") :]))
    assert (params["username"], params["realm"]) == ("trunkuser", "carrier.example")
    assert (params["nonce"], params["qop"]) == ("4f1b0c9e2d7a6", "auth")
    ha1 = md5("trunkuser:carrier.example:s3cret")
    ha2 = md5(f"INVITE:{params['uri']}")
    expected = md5(f"{ha1}:4f1b0c9e2d7a6:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    assert params["response"] == expected


class AnsweringService:
    """Plays the call service for inbound calls: ring, then answer or reject."""

    def __init__(self, reject_with: int | None = None) -> None:
        self.reject_with = reject_with
        self.listener = RecordingListener()
        self.calls: list[InboundCall] = []

    async def __call__(self, call: InboundCall) -> None:
        self.calls.append(call)
        call.attach(self.listener)
        if self.reject_with is not None:
            call.reject(self.reject_with)
            return
        call.ring()
        await asyncio.sleep(0)  # the service would wait for the app here
        call.answer(ANSWER)


async def test_carrier_calls_us_and_we_answer(tmp_path: Path) -> None:
    service = AnsweringService()
    async with running_trunk(base_config(free_udp_port()), service) as trunk:
        assert trunk.local_address is not None
        target = f"{trunk.local_address[0]}:{trunk.local_address[1]}"
        sipp = await Sipp.start(tmp_path, "uac_call.xml", "-s", "02079460000", target)
        try:
            code, output = await sipp.finished()
        finally:
            sipp.kill()
        assert code == 0, output
        assert await service.listener.next() == ("ended", "remote_bye")
        (call,) = service.calls
        assert (call.caller, call.callee) == ("+441632960001", "+442079460000")
        assert "AMR/8000" in call.remote_sdp
        assert call.acked and call.end_reason == "remote_bye"
        assert trunk.stats.calls_in == 1 and trunk.stats.active_calls == 0


async def test_carrier_calls_us_and_we_are_busy(tmp_path: Path) -> None:
    service = AnsweringService(reject_with=486)
    async with running_trunk(base_config(free_udp_port()), service) as trunk:
        assert trunk.local_address is not None
        target = f"{trunk.local_address[0]}:{trunk.local_address[1]}"
        sipp = await Sipp.start(tmp_path, "uac_busy.xml", "-s", "02079460000", target)
        try:
            code, output = await sipp.finished()
        finally:
            sipp.kill()
        assert code == 0, output
        assert len(service.calls) == 1 and trunk.stats.active_calls == 0
        assert trunk.stats.unmatched == 0  # the ACK matched the 486 transaction


async def test_untrusted_source_is_refused(tmp_path: Path) -> None:
    service = AnsweringService()
    async with running_trunk(base_config(free_udp_port()), service) as trunk:
        assert trunk.local_address is not None
        target = f"{trunk.local_address[0]}:{trunk.local_address[1]}"
        sipp = await Sipp.start(
            tmp_path, "uac_untrusted.xml", "-s", "02079460000", target, ip="127.0.0.2"
        )
        try:
            code, output = await sipp.finished()
        finally:
            sipp.kill()
        assert code == 0, output
        assert service.calls == []
        assert trunk.stats.untrusted_rejected == 1


async def test_registration_with_digest_and_refresh(tmp_path: Path) -> None:
    async with carrier(tmp_path, "registrar.xml") as (sipp, port):
        config = base_config(
            free_udp_port(), registrar=f"127.0.0.1:{port}", username="trunkuser", password="s3cret"
        )
        async with running_trunk(config) as trunk:
            code, output = await sipp.finished()  # two challenge rounds, 2 s expiry between
            assert code == 0, output
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while trunk.stats.registrations < 2:  # the last 200 may still be in flight
                assert loop.time() < deadline
                await asyncio.sleep(0.01)
            assert trunk.stats.registered and trunk.stats.registration_failures == 0
