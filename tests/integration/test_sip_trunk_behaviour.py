"""The SIP trunk against a scripted carrier: a raw UDP socket on loopback that sends
hand-written SIP and reads what the trunk sends back. Covers what sipp scenarios make
awkward: limits, re-INVITE, INFO DTMF, 2xx retransmissions in both directions, CANCEL in,
OPTIONS in and out."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from lwork.sip.message import SipRequest, SipResponse, parse_message
from lwork.sip.transaction import TimerSettings
from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.outbound import OutboundCall
from lwork.sip.trunk.user_agent import CallStateError, InboundCall, OnInvite, Trunk, TrunkBusy

from fakes.leg_recorder import RecordingListener as Listener

WAIT = 15.0
OFFER = "v=0\r\no=lwork 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + (
    "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
FAST = TimerSettings(t1=0.05, t2=0.2, t4=0.2, timer_d=0.2)  # ack timeout after 3.2 s


class RawPeer(asyncio.DatagramProtocol):
    """A UDP socket that plays the carrier by hand."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.address = ("", 0)

    @classmethod
    async def bind(cls, host: str = "127.0.0.1") -> "RawPeer":
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, 0))
        peer.transport = transport
        peer.address = transport.get_extra_info("sockname")[:2]
        return peer

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait(parse_message(data))

    def send(self, text: str, to: tuple[str, int]) -> None:
        assert self.transport is not None
        head, _, body = text.partition("\n\n")
        head = head.replace("\n", "\r\n") + f"\r\nContent-Length: {len(body.encode())}"
        self.transport.sendto((head + "\r\n\r\n" + body).encode(), to)

    async def next_request(self, method: str) -> SipRequest:
        """The next request of ``method``; anything else on the way is skipped."""
        while True:
            message = await asyncio.wait_for(self.received.get(), WAIT)
            if isinstance(message, SipRequest) and message.method == method:
                return message

    async def next_response(self, code: int) -> SipResponse:
        """The next response with status ``code``; anything else on the way is skipped."""
        while True:
            message = await asyncio.wait_for(self.received.get(), WAIT)
            if isinstance(message, SipResponse) and message.status_code == code:
                return message

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


async def ignore(call: InboundCall) -> None:
    pass


@asynccontextmanager
async def trunk_and_carrier(
    on_invite: OnInvite = ignore, timers: TimerSettings | None = None, **changes: object
) -> AsyncIterator[tuple[Trunk, RawPeer, tuple[str, int]]]:
    carrier = await RawPeer.bind()
    config = TrunkConfig(
        proxy_host="127.0.0.1",
        proxy_port=carrier.address[1],
        listen_port=0,
        number_rules=(NumberRule("0", "+44"),),
        options_interval_s=0,
    )
    config = replace(config, **changes)  # type: ignore[arg-type]
    trunk = Trunk(config, on_invite, timers=timers or TimerSettings())
    address = await trunk.start()
    try:
        yield trunk, carrier, address
    finally:
        await trunk.close()
        carrier.close()


def echo_response(
    request: SipRequest, status: str, headers: str = "", body: str = "", to_tag: str = ""
) -> str:
    """A response copying the request's Via, From, To, Call-ID and CSeq."""
    to = request.headers.get("To") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status}", *(f"Via: {via}" for via in request.headers.get_all("Via"))]
    lines += [f"From: {request.headers.get('From')}", f"To: {to}"]
    lines += [f"Call-ID: {request.call_id}", f"CSeq: {request.cseq}"]
    if headers:
        lines.append(headers)
    return "\n".join(lines) + "\n\n" + body


async def test_calls_per_second_limit_refuses_at_once() -> None:
    async with trunk_and_carrier(calls_per_second=2.0) as (trunk, carrier, _):
        for _ in range(2):
            await trunk.dial("02079460000", "01632960001", OFFER, Listener())
        with pytest.raises(TrunkBusy, match="calls per second"):
            await trunk.dial("02079460000", "01632960001", OFFER, Listener())
        assert trunk.stats.busy_refused == 1 and trunk.stats.calls_out == 2
        first = await carrier.next_request("INVITE")
        assert first.uri.user == "+442079460000"


async def test_concurrent_call_limit_refuses_at_once() -> None:
    async with trunk_and_carrier(max_concurrent_calls=1) as (trunk, _, _):
        call = await trunk.dial("02079460000", "01632960001", OFFER, Listener())
        with pytest.raises(TrunkBusy, match="concurrent"):
            await trunk.dial("02079460000", "01632960001", OFFER, Listener())
        call.hangup()  # CANCEL waits for a provisional, but the slot is free at once
        await trunk.dial("02079460000", "01632960001", OFFER, Listener())


async def answered_call(
    trunk: Trunk, carrier: RawPeer, listener: Listener, peer: tuple[str, int]
) -> tuple[OutboundCall, SipRequest, str]:
    call = await trunk.dial("02079460000", "01632960001", OFFER, listener)
    invite = await carrier.next_request("INVITE")
    assert isinstance(invite, SipRequest)
    contact = f"Contact: <sip:carrier@{carrier.address[0]}:{carrier.address[1]}>"
    headers = f"{contact}\nContent-Type: application/sdp"
    ok = echo_response(invite, "200 OK", headers, OFFER, to_tag="c1")
    carrier.send(ok, peer)
    return call, invite, ok


async def test_answered_call_reack_reinvite_info_and_remote_bye() -> None:
    async with trunk_and_carrier() as (trunk, carrier, address):
        listener = Listener()
        call, invite, ok = await answered_call(trunk, carrier, listener, address)
        assert (await listener.next())[0] == "answered"
        first_ack = await carrier.next_request("ACK")
        carrier.send(ok, address)  # as if the carrier missed our ACK
        second_ack = await carrier.next_request("ACK")
        assert first_ack.cseq.seq == second_ack.cseq.seq == invite.cseq.seq
        assert call.call_id == invite.call_id

        tags = f"From: <sip:carrier@127.0.0.1>;tag=c1\nTo: {invite.headers.get('From')}"
        dialog = f"Call-ID: {invite.call_id}\n{tags}"
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch=z9hG4bKreinv"
        contact = f"Contact: <sip:carrier@127.0.0.1:{carrier.address[1]}>"
        carrier.send(
            f"INVITE sip:lwork@127.0.0.1 SIP/2.0\n{via}\n{dialog}\nCSeq: 7 INVITE\n{contact}\n"
            f"Content-Type: application/sdp\n\n{OFFER}",
            address,
        )
        refresh = await carrier.next_response(200)
        assert refresh.cseq.method == "INVITE" and refresh.body.decode() == OFFER
        call.send_info_dtmf("5")
        info = await carrier.next_request("INFO")
        assert info.content_type == "application/dtmf-relay"
        assert b"Signal=5" in info.body

        bye_via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch=z9hG4bKbye"
        carrier.send(
            f"BYE sip:lwork@127.0.0.1 SIP/2.0\n{bye_via}\n{dialog}\nCSeq: 8 BYE\n\n", address
        )
        bye_ok = await carrier.next_response(200)
        assert bye_ok.cseq.method == "BYE"
        assert await listener.next() == ("ended", "remote_bye")
        assert trunk.stats.active_calls == 0 and trunk.stats.handler_errors == 0


def inbound_invite(carrier: RawPeer, call_id: str, branch: str) -> str:
    via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch={branch};rport"
    return (
        f"INVITE sip:02079460000@127.0.0.1 SIP/2.0\n{via}\n"
        f"From: <sip:01632960001@127.0.0.1>;tag=in1\nTo: <sip:02079460000@127.0.0.1>\n"
        f"Call-ID: {call_id}\nCSeq: 1 INVITE\n"
        f"Contact: <sip:carrier@127.0.0.1:{carrier.address[1]}>\n"
        f"Content-Type: application/sdp\n\n{OFFER}"
    )


async def test_inbound_cancel_gets_487_and_ends_the_leg() -> None:
    listener = Listener()

    async def ring(call: InboundCall) -> None:
        call.attach(listener)
        call.ring()

    async with trunk_and_carrier(ring) as (trunk, carrier, address):
        carrier.send(inbound_invite(carrier, "cancel-me", "z9hG4bKinv1"), address)
        ringing = await carrier.next_response(180)
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch=z9hG4bKinv1;rport"
        carrier.send(
            f"CANCEL sip:02079460000@127.0.0.1 SIP/2.0\n{via}\n"
            f"From: <sip:01632960001@127.0.0.1>;tag=in1\nTo: <sip:02079460000@127.0.0.1>\n"
            f"Call-ID: cancel-me\nCSeq: 1 CANCEL\n\n",
            address,
        )
        assert (await carrier.next_response(200)).cseq.method == "CANCEL"
        terminated = await carrier.next_response(487)
        assert terminated.to_addr.tag == ringing.to_addr.tag
        assert await listener.next() == ("ended", "cancelled")
        assert trunk.stats.active_calls == 0


async def test_a_trunk_does_not_listen_before_it_knows_who_takes_its_calls() -> None:
    carrier = await RawPeer.bind()
    config = TrunkConfig(
        proxy_host="127.0.0.1",
        proxy_port=carrier.address[1],
        listen_port=0,
        number_rules=(NumberRule("0", "+44"),),
        options_interval_s=0,
    )
    trunk = Trunk(config)  # the app builds it before the call service that answers INVITEs
    try:
        with pytest.raises(CallStateError, match="no invite handler"):
            await trunk.start()
        assert trunk.local_address is None  # no socket was bound

        taken: list[str] = []

        async def take(call: InboundCall) -> None:
            taken.append(call.callee)
            call.reject(486)

        trunk.on_invite = take  # bound once the call service exists, then started
        address = await trunk.start()
        carrier.send(inbound_invite(carrier, "late-bound", "z9hG4bKlate"), address)
        assert (await carrier.next_response(486)).call_id == "late-bound"
        assert taken == ["+442079460000"]

        trunk.on_invite = None  # nobody takes calls any more: refused, not dropped
        carrier.send(inbound_invite(carrier, "nobody", "z9hG4bKnobody"), address)
        assert (await carrier.next_response(503)).call_id == "nobody"
        assert taken == ["+442079460000"]
    finally:
        await trunk.close()
        carrier.close()


async def test_unacknowledged_answer_is_resent_then_given_up_with_bye() -> None:
    listener = Listener()

    async def answer(call: InboundCall) -> None:
        call.attach(listener)
        call.answer(OFFER)

    async with trunk_and_carrier(answer, timers=FAST) as (trunk, carrier, address):
        carrier.send(inbound_invite(carrier, "never-acked", "z9hG4bKinv2"), address)
        first = await carrier.next_response(200)
        again = await carrier.next_response(200)  # RFC 3261 13.3.1.4: re-sent until the ACK
        assert bytes(first) == bytes(again)
        bye = await carrier.next_request("BYE")
        assert bye.call_id == "never-acked"
        assert await listener.next() == ("ended", "ack_timeout")


async def test_options_keepalive_and_options_from_outside() -> None:
    async with trunk_and_carrier(options_interval_s=0.2) as (trunk, carrier, address):
        ping = await carrier.next_request("OPTIONS")
        carrier.send(echo_response(ping, "200 OK", to_tag="p1"), address)
        while trunk.keepalive.proxy_alive is not True:
            await asyncio.sleep(0.01)

        stranger = await RawPeer.bind("127.0.0.2")
        try:
            for peer, expected in ((carrier, 200), (stranger, 403)):
                host, port = peer.address
                via = f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKo{expected}"
                peer.send(
                    f"OPTIONS sip:127.0.0.1 SIP/2.0\n{via}\nFrom: <sip:x@{peer.address[0]}>;tag=o\n"
                    f"To: <sip:127.0.0.1>\nCall-ID: opt-{expected}\nCSeq: 1 OPTIONS\n\n",
                    address,
                )
                answer = await peer.next_response(expected)
                assert answer.call_id == f"opt-{expected}"
        finally:
            stranger.close()
        assert trunk.stats.untrusted_rejected == 1


async def test_no_provisional_response_gives_up_with_408() -> None:
    async with trunk_and_carrier(provisional_timeout_s=0.3) as (trunk, carrier, _):
        listener = Listener()
        await trunk.dial("02079460000", "01632960001", OFFER, listener)
        await carrier.next_request("INVITE")  # and never a word back
        assert await listener.next() == ("failed", (408, "Request Timeout"))
        assert trunk.stats.active_calls == 0


async def test_ring_timeout_cancels_and_fails_with_408() -> None:
    async with trunk_and_carrier(ring_timeout_s=0.5) as (trunk, carrier, address):
        listener = Listener()
        call = await trunk.dial("02079460000", "01632960001", OFFER, listener)
        invite = await carrier.next_request("INVITE")
        carrier.send(echo_response(invite, "180 Ringing", to_tag="r1"), address)
        assert await listener.next() == ("ringing", None)
        assert await listener.next() == ("failed", (408, "Request Timeout"))
        cancel = await carrier.next_request("CANCEL")
        assert cancel.top_via.branch == invite.top_via.branch
        carrier.send(echo_response(cancel, "200 OK", to_tag="r1"), address)
        carrier.send(echo_response(invite, "487 Request Terminated", to_tag="r1"), address)
        ack = await carrier.next_request("ACK")
        assert ack.top_via.branch == invite.top_via.branch
        assert call.final_status == 487


@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
@pytest.mark.parametrize("via_params", [";received=127.0.0.1", ";received=127.0.0.1;rport=5060"])
async def test_a_forged_received_in_the_via_does_not_borrow_the_trunks_trust(
    method: str, via_params: str
) -> None:
    """Only 127.0.0.1 (the proxy) is trusted; a stranger on 127.0.0.2 claims it in its Via."""
    offered: list[InboundCall] = []

    async def record(call: InboundCall) -> None:
        offered.append(call)

    async with trunk_and_carrier(record) as (trunk, _, address):
        stranger = await RawPeer.bind("127.0.0.2")
        try:
            host, port = stranger.address
            via = f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKforged{via_params}"
            stranger.send(
                f"{method} sip:02079460000@127.0.0.1 SIP/2.0\n{via}\n"
                f"From: <sip:01632960001@{host}>;tag=f1\nTo: <sip:02079460000@127.0.0.1>\n"
                f"Call-ID: forged-{method}\nCSeq: 1 {method}\n"
                f"Contact: <sip:stranger@{host}:{port}>\n"
                f"Content-Type: application/sdp\n\n{OFFER if method == 'INVITE' else ''}",
                address,
            )
            refused = await stranger.next_response(403)
            assert refused.call_id == f"forged-{method}"
            assert refused.top_via.received == "127.0.0.2"
        finally:
            stranger.close()
        assert trunk.stats.untrusted_rejected == 1
        assert offered == [] and trunk.stats.calls_in == 0


async def test_a_re_invite_that_moves_the_carriers_media_is_reported_once() -> None:
    moved = OFFER.replace("127.0.0.1", "127.0.0.2").replace("40000", "40002")
    async with trunk_and_carrier() as (trunk, carrier, address):
        listener = Listener()
        _, invite, _ = await answered_call(trunk, carrier, listener, address)
        assert (await listener.next())[0] == "answered"
        tags = f"From: <sip:carrier@127.0.0.1>;tag=c1\nTo: {invite.headers.get('From')}"
        dialog = f"Call-ID: {invite.call_id}\n{tags}"
        contact = f"Contact: <sip:carrier@127.0.0.1:{carrier.address[1]}>"
        for cseq, sdp in ((7, OFFER), (8, moved), (9, moved)):  # same, moved, same again
            via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch=z9hG4bKmv{cseq}"
            carrier.send(
                f"INVITE sip:lwork@127.0.0.1 SIP/2.0\n{via}\n{dialog}\nCSeq: {cseq} INVITE\n"
                f"{contact}\nContent-Type: application/sdp\n\n{sdp}",
                address,
            )
            assert (await carrier.next_response(200)).cseq.seq == cseq
        bye_via = f"Via: SIP/2.0/UDP 127.0.0.1:{carrier.address[1]};branch=z9hG4bKmvbye"
        carrier.send(
            f"BYE sip:lwork@127.0.0.1 SIP/2.0\n{bye_via}\n{dialog}\nCSeq: 10 BYE\n\n", address
        )
        assert await listener.next() == ("media_moved", moved)
        assert await listener.next() == ("ended", "remote_bye")
