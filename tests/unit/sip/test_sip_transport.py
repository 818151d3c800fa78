"""The asyncio SIP endpoint on real loopback sockets, against itself and against sipp."""

import asyncio
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from lwork.sip.builders import create_request, create_response
from lwork.sip.dialog import Dialog, SentBy
from lwork.sip.events import AckReceived, RequestReceived, ResponseReceived, SipEvent
from lwork.sip.headers import NameAddr, Via
from lwork.sip.ids import new_branch, new_call_id, new_tag
from lwork.sip.message import SipRequest
from lwork.sip.offer_answer import PayloadFormat, build_answer, select_audio
from lwork.sip.sdp import Origin, SessionDescription
from lwork.sip.trunk.transport import SipEndpoint
from lwork.sip.uri import SipUri

EventT = TypeVar("EventT")
WAIT = 20.0  # generous: a loaded 2-core CI machine
SIPP = shutil.which("sipp")
needs_sipp = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)


class Recorder:
    """Collects an endpoint's events; an optional handler plays the transaction user."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SipEvent] = asyncio.Queue()
        self.handler: Callable[[SipEvent], None] | None = None

    def __call__(self, event: SipEvent) -> None:
        self.queue.put_nowait(event)
        if self.handler is not None:
            self.handler(event)

    async def next_of(self, kind: type[EventT]) -> EventT:
        while True:
            event = await asyncio.wait_for(self.queue.get(), WAIT)
            if isinstance(event, kind):
                return event


def options(local: tuple[str, int], remote: tuple[str, int], transport: str = "UDP") -> SipRequest:
    return create_request(
        "OPTIONS",
        SipUri(remote[0], port=remote[1]),
        via=Via(transport, local[0], local[1], (("branch", new_branch()), ("rport", None))),
        from_addr=NameAddr(SipUri(local[0], "lwork", local[1])).with_tag(new_tag()),
        to_addr=NameAddr(SipUri(remote[0], port=remote[1])),
        call_id=new_call_id(),
        cseq=1,
    )


def answer_everything(endpoint: SipEndpoint) -> Callable[[SipEvent], None]:
    def handle(event: SipEvent) -> None:
        if isinstance(event, RequestReceived):
            endpoint.send_response(create_response(event.request, 200, to_tag="srv"))

    return handle


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_options_between_two_endpoints(transport: str) -> None:
    client_events, server_events = Recorder(), Recorder()
    client, server = SipEndpoint(client_events), SipEndpoint(server_events)
    server_events.handler = answer_everything(server)
    try:
        client_address = await client.listen_udp()
        server_address = await (server.listen_tcp() if transport == "TCP" else server.listen_udp())
        client.send_request(options(client_address, server_address, transport), server_address)
        received = await server_events.next_of(RequestReceived)
        via = received.request.top_via
        assert via.received == "127.0.0.1"
        assert via.rport is not None and via.transport == transport
        answered = await client_events.next_of(ResponseReceived)
        assert answered.response.status_code == 200 and answered.response.to_addr.tag == "srv"
        assert server.stats.malformed == client.stats.malformed == 0
    finally:
        await client.close()
        await server.close()


async def test_malformed_datagram_is_counted_dropped_and_survived() -> None:
    events = Recorder()
    endpoint = SipEndpoint(events)
    events.handler = answer_everything(endpoint)
    try:
        address = await endpoint.listen_udp()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.sendto(b"INVITE garbage\r\n\r\n", address)
            sock.sendto(bytes(options(sock.getsockname(), address)), address)
            sock.settimeout(WAIT)
            reply = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 65535)
        assert reply.startswith(b"SIP/2.0 200 OK\r\n")
        assert endpoint.stats.malformed == 1
    finally:
        await endpoint.close()


async def test_unframeable_tcp_stream_is_closed_and_keepalive_answered() -> None:
    endpoint = SipEndpoint(Recorder())
    try:
        address = await endpoint.listen_tcp()
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
        writer.write(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed by the endpoint
        writer.close()
        assert endpoint.stats.malformed == 1
    finally:
        await endpoint.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_sipp(tmp_path: Path, *args: str) -> tuple[int, str]:
    assert SIPP is not None
    process = await asyncio.create_subprocess_exec(
        SIPP, *args, "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error",
        "-i", "127.0.0.1", "-mi", "127.0.0.1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")[-2000:]


class AnsweringUas:
    """A minimal UAS on top of the endpoint: answers INVITE with SDP, BYE with 200."""

    def __init__(self, endpoint: SipEndpoint, sent_by: SentBy) -> None:
        self.endpoint = endpoint
        self.sent_by = sent_by
        self.dialogs: dict[str, Dialog] = {}
        self.acked = asyncio.Event()
        self.ended = asyncio.Event()

    def __call__(self, event: SipEvent) -> None:
        match event:
            case RequestReceived(request=request) if request.method == "INVITE":
                self._answer_invite(request)
            case RequestReceived(request=request) if request.method == "BYE":
                self.dialogs[request.call_id].receive_request(request)
                self.endpoint.send_response(create_response(request, 200))
                self.ended.set()
            case AckReceived():
                self.acked.set()

    def _answer_invite(self, invite: SipRequest) -> None:
        contact = NameAddr(SipUri(self.sent_by.host, "lwork", self.sent_by.port))
        tag = new_tag()
        dialog = Dialog.from_uas_request(
            invite, local_tag=tag, local_contact=contact, sent_by=self.sent_by
        )
        self.dialogs[invite.call_id] = dialog
        offer = SessionDescription.parse(invite.body)
        selection = select_audio(offer, [PayloadFormat(8, "PCMA"), PayloadFormat(0, "PCMU")])
        origin = Origin("lwork", "1", "1", self.sent_by.host)
        sdp = build_answer(offer, selection, address=self.sent_by.host, port=40000, origin=origin)
        self.endpoint.send_response(create_response(invite, 180, to_tag=tag, contact=contact))
        ok = create_response(
            invite,
            200,
            to_tag=tag,
            contact=contact,
            body=bytes(sdp),
            content_type="application/sdp",
        )
        self.endpoint.send_response(ok)
        dialog.confirm()


@needs_sipp
@pytest.mark.parametrize(("transport", "sipp_mode"), [("UDP", "u1"), ("TCP", "t1")])
async def test_sipp_uac_call_to_our_uas(tmp_path: Path, transport: str, sipp_mode: str) -> None:
    events = Recorder()
    endpoint = SipEndpoint(events)
    try:
        if transport == "TCP":
            address = await endpoint.listen_tcp()
        else:
            address = await endpoint.listen_udp()
        uas = AnsweringUas(endpoint, SentBy(transport, *address))
        events.handler = uas
        code, output = await run_sipp(
            tmp_path, "-sn", "uac", "-t", sipp_mode, f"{address[0]}:{address[1]}"
        )
        assert code == 0, output
        assert uas.acked.is_set() and uas.ended.is_set()
        assert endpoint.stats.malformed == 0
    finally:
        await endpoint.close()


@needs_sipp
async def test_our_uac_call_to_sipp_uas(tmp_path: Path) -> None:
    events = Recorder()
    endpoint = SipEndpoint(events)
    try:
        local = await endpoint.listen_udp()
        sipp_address = ("127.0.0.1", free_udp_port())
        sipp = asyncio.create_task(run_sipp(tmp_path, "-sn", "uas", "-p", str(sipp_address[1])))
        sent_by = SentBy("UDP", *local)
        contact = NameAddr(SipUri(local[0], "lwork", local[1]))
        invite = create_request(
            "INVITE",
            SipUri(sipp_address[0], "service", sipp_address[1]),
            via=sent_by.via(new_branch()),
            from_addr=NameAddr(SipUri(local[0], "lwork")).with_tag(new_tag()),
            to_addr=NameAddr(SipUri(sipp_address[0], "service")),
            call_id=new_call_id(),
            cseq=1,
            contact=contact,
            body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            content_type="application/sdp",
        )
        # sipp needs a moment to bind; INVITE retransmissions (timer A) cover a late start.
        endpoint.send_request(invite, sipp_address)
        while (event := await events.next_of(ResponseReceived)).response.status_code < 200:
            pass
        assert event.response.status_code == 200
        dialog = Dialog.from_uac_response(
            invite, event.response, local_contact=contact, sent_by=sent_by
        )
        endpoint.send_request(dialog.create_ack(invite), sipp_address)
        bye = dialog.create_request("BYE")
        endpoint.send_request(bye, sipp_address)
        bye_answer = await events.next_of(ResponseReceived)
        assert (bye_answer.response.cseq.method, bye_answer.response.status_code) == ("BYE", 200)
        code, output = await sipp
        assert code == 0, output
    finally:
        await endpoint.close()
