"""A flood of broken INVITEs at the trunk's socket: counted, answered or dropped, never fatal."""

import asyncio
import random
import socket

from lwork.sip.message import SipResponse, parse_message
from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.user_agent import InboundCall, Trunk

WAIT = 15.0
SDP = (
    "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
HEADERS = [
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{n};rport",
    "From: <sip:01632960001@127.0.0.1>;tag=f{n}",
    "To: <sip:02079460000@127.0.0.1>",
    "Call-ID: fuzz-{n}",
    "CSeq: 1 INVITE",
    "Contact: <sip:carrier@127.0.0.1:{port}>",
    "Max-Forwards: 70",
    "Content-Type: application/sdp",
]
# Well-formed SIP that is wrong further up: each must be answered or dropped, not crash.
SEMANTIC_BREAKAGE = [
    ("To: <sip:02079460000@127.0.0.1>", "To: <sip:02079460000@127.0.0.1>;tag=nobody"),
    (";tag=f{n}", ""),  # no From tag
    ("Contact: <sip:carrier@127.0.0.1:{port}>", "Contact: *"),
    ("Contact: <sip:carrier@127.0.0.1:{port}>", "X-No-Contact: 1"),
    ("sip:02079460000@127.0.0.1>", "sip:unknown-user@127.0.0.1>"),
    ("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
    (";branch=z9hG4bK{n}", ""),
    ("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 OPUS/48000"),
    ("m=audio 40000 RTP/AVP 8", "m=audio x RTP/AVP 999"),
    ("v=0", "garbage"),
    ("Content-Type: application/sdp", "Content-Type: application/sdp\r\nContent-Length: 99999"),
    ("127.0.0.1:{port};branch", "[::1:{port};branch"),
]


def invite(n: int, port: int) -> str:
    head = "\r\n".join(HEADERS).replace("{port}", str(port)).replace("{n}", str(n))
    request_line = "INVITE sip:02079460000@127.0.0.1 SIP/2.0"
    return f"{request_line}\r\n{head}\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"


def mutate(rng: random.Random, n: int, port: int) -> bytes:
    text = invite(n, port)
    kind = rng.randrange(6)
    if kind == 0:
        old, new = rng.choice(SEMANTIC_BREAKAGE)
        return text.replace(old.replace("{n}", str(n)).replace("{port}", str(port)), new).encode()
    data = bytearray(text.encode())
    if kind == 1:
        return bytes(data[: rng.randrange(len(data))])
    if kind == 2:
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 3:
        lines = text.split("\r\n")
        del lines[rng.randrange(1, 10)]
        return "\r\n".join(lines).encode()
    if kind == 4:
        lines = text.split("\r\n")
        index = rng.randrange(1, 10)
        lines.insert(index, lines[index])  # a duplicated header
        return "\r\n".join(lines).encode()
    return rng.randbytes(rng.randrange(1, 300))


def drain(sock: socket.socket) -> None:
    """Read and discard the trunk's answers so our receive buffer never overflows."""
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return


async def test_invite_flood_of_malformed_messages_never_crashes_the_trunk() -> None:
    offered: list[InboundCall] = []

    async def reject_all(call: InboundCall) -> None:
        offered.append(call)
        call.reject(404)

    config = TrunkConfig(
        proxy_host="127.0.0.1",
        listen_port=0,
        number_rules=(NumberRule("0", "+44"),),
        options_interval_s=0,
    )
    trunk = Trunk(config, reject_all)
    address = await trunk.start()
    rng = random.Random(20261128)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        try:
            for n in range(1500):
                sock.sendto(mutate(rng, n, port), address)
                if n % 25 == 0:
                    await asyncio.sleep(0.005)  # pace it so the kernel buffers do not drop
                    drain(sock)
            # Still alive: a good INVITE reaches the call service and its 404 comes back.
            # Like any UAC on UDP we retransmit it: a loaded machine may drop datagrams.
            good = invite(99999, port).encode()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            next_send = loop.time()
            while True:
                assert loop.time() < deadline, "the trunk stopped answering"
                if loop.time() >= next_send:
                    sock.sendto(good, address)
                    next_send = loop.time() + 0.5
                try:
                    reply = parse_message(sock.recv(65535))
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                except ValueError:
                    continue
                if isinstance(reply, SipResponse) and reply.call_id == "fuzz-99999":
                    if reply.status_code == 404:
                        break
            assert any(call.call_id == "fuzz-99999" for call in offered)
        finally:
            stats = trunk.stats
            await trunk.close()
    assert stats.malformed > 100
    assert stats.handler_errors == 0
    assert stats.active_calls == 0
