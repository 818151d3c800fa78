"""RFC 3261 section 17 transaction state machines, driven with an explicit clock."""

import pytest

from lwork.sip.builders import create_cancel, create_response
from lwork.sip.client_transaction import InviteClientTransaction, NonInviteClientTransaction
from lwork.sip.events import (
    AckReceived,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    StrayResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.server_transaction import InviteServerTransaction, NonInviteServerTransaction
from lwork.sip.transaction import Transaction, TransactionState, TransactionStateError
from lwork.sip.transaction_layer import TransactionLayer

from sip_helpers import UAC_ADDRESS, UAS_ADDRESS, LossyLink, make_request


def events(transaction: Transaction | TransactionLayer) -> list[SipEvent]:
    collected = []
    while (event := transaction.next_event()) is not None:
        collected.append(event)
    return collected


def sent_methods(transaction: Transaction) -> list[str]:
    out = []
    for item in transaction.messages_to_send():
        message = item.message
        out.append(message.method if isinstance(message, SipRequest) else str(message.status_code))
    return out


def run_timers(transaction: Transaction, end: float) -> list[tuple[float, list[str]]]:
    """Fire every timer up to ``end``; the times at which something was sent, and what."""
    sends = []
    while (deadline := transaction.get_timer()) is not None and deadline <= end:
        transaction.handle_timer(deadline)
        if sent := sent_methods(transaction):
            sends.append((deadline, sent))
    return sends


def response_to(request: SipRequest, code: int) -> SipResponse:
    return create_response(request, code, to_tag="uas1")


class TestInviteClient:
    def test_timer_a_doubles_without_cap_until_timer_b(self) -> None:
        tx = InviteClientTransaction(make_request("INVITE"), UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        assert sent_methods(tx) == ["INVITE"]
        assert (tx.timer_deadline("A"), tx.timer_deadline("B")) == (0.5, 32.0)
        sends = run_timers(tx, end=100.0)
        assert [time for time, _ in sends] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
        assert events(tx) == [TransactionTimedOut(tx.key, "B"), TransactionTerminated(tx.key)]
        assert tx.state is TransactionState.TERMINATED and tx.get_timer() is None

    def test_reliable_transport_never_retransmits(self) -> None:
        tx = InviteClientTransaction(make_request("INVITE"), UAS_ADDRESS, reliable=True)
        tx.send_request(now=10.0)
        sent_methods(tx)
        assert tx.timer_deadline("A") is None and tx.get_timer() == 42.0
        assert run_timers(tx, end=100.0) == []
        assert isinstance(events(tx)[0], TransactionTimedOut)

    def test_provisional_stops_retransmission_and_timer_b(self) -> None:
        request = make_request("INVITE")
        tx = InviteClientTransaction(request, UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        ringing = response_to(request, 180)
        tx.receive_response(ringing, now=0.7)
        assert tx.state is TransactionState.PROCEEDING
        assert tx.get_timer() is None
        assert events(tx) == [ResponseReceived(tx.key, ringing)]

    def test_final_error_is_acked_and_absorbed_until_timer_d(self) -> None:
        request = make_request("INVITE")
        tx = InviteClientTransaction(request, UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        sent_methods(tx)
        busy = response_to(request, 486)
        tx.receive_response(busy, now=1.0)
        [ack] = [item.message for item in tx.messages_to_send()]
        assert isinstance(ack, SipRequest) and ack.method == "ACK"
        assert ack.top_via.branch == request.top_via.branch
        assert (ack.cseq.seq, ack.cseq.method) == (request.cseq.seq, "ACK")
        assert ack.to_addr.tag == "uas1" and ack.uri == request.uri
        assert events(tx) == [ResponseReceived(tx.key, busy)]
        tx.receive_response(busy, now=2.0)  # retransmission: ACK again, not reported
        assert sent_methods(tx) == ["ACK"] and events(tx) == []
        assert tx.timer_deadline("D") == 33.0
        tx.handle_timer(33.0)
        assert events(tx) == [TransactionTerminated(tx.key)]

    def test_final_error_on_reliable_transport_terminates_at_once(self) -> None:
        request = make_request("INVITE")
        tx = InviteClientTransaction(request, UAS_ADDRESS, reliable=True)
        tx.send_request(now=0.0)
        tx.receive_response(response_to(request, 603), now=1.0)
        assert [type(e) for e in events(tx)] == [ResponseReceived, TransactionTerminated]

    def test_2xx_enters_accepted_and_reports_retransmissions_until_timer_m(self) -> None:
        request = make_request("INVITE")
        tx = InviteClientTransaction(request, UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        sent_methods(tx)
        ok = response_to(request, 200)
        tx.receive_response(ok, now=1.0)
        tx.receive_response(ok, now=1.5)
        assert sent_methods(tx) == []  # the ACK of a 2xx is the TU's job
        assert events(tx) == [ResponseReceived(tx.key, ok), ResponseReceived(tx.key, ok)]
        tx.receive_response(response_to(request, 486), now=2.0)
        assert events(tx) == []
        tx.handle_timer(33.0)
        assert events(tx) == [TransactionTerminated(tx.key)]


class TestNonInviteClient:
    def test_timer_e_doubles_up_to_t2_until_timer_f(self) -> None:
        tx = NonInviteClientTransaction(make_request("OPTIONS"), UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        sent_methods(tx)
        sends = run_timers(tx, end=100.0)
        expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        assert [time for time, _ in sends] == expected
        assert events(tx) == [TransactionTimedOut(tx.key, "F"), TransactionTerminated(tx.key)]

    def test_proceeding_retransmits_every_t2(self) -> None:
        request = make_request("BYE")
        tx = NonInviteClientTransaction(request, UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        tx.receive_response(response_to(request, 100), now=0.1)
        assert tx.state is TransactionState.PROCEEDING
        sends = run_timers(tx, end=12.0)
        assert [time for time, _ in sends] == [0.5, 4.5, 8.5]

    def test_final_response_then_timer_k(self) -> None:
        request = make_request("BYE")
        tx = NonInviteClientTransaction(request, UAS_ADDRESS, reliable=False)
        tx.send_request(now=0.0)
        ok = response_to(request, 200)
        tx.receive_response(ok, now=0.2)
        tx.receive_response(ok, now=0.3)
        assert events(tx) == [ResponseReceived(tx.key, ok)]
        assert tx.get_timer() == pytest.approx(5.2)
        tx.handle_timer(5.2)
        assert events(tx) == [TransactionTerminated(tx.key)]

    def test_reliable_final_terminates_at_once_and_no_timer_e(self) -> None:
        request = make_request("REGISTER")
        tx = NonInviteClientTransaction(request, UAS_ADDRESS, reliable=True)
        tx.send_request(now=0.0)
        assert tx.timer_deadline("E") is None and tx.timer_deadline("F") == 32.0
        tx.receive_response(response_to(request, 401), now=0.2)
        assert [type(e) for e in events(tx)] == [ResponseReceived, TransactionTerminated]

    def test_sending_twice_is_local_misuse(self) -> None:
        tx = NonInviteClientTransaction(make_request("BYE"), UAS_ADDRESS, reliable=True)
        tx.send_request(now=0.0)
        with pytest.raises(TransactionStateError):
            tx.send_request(now=1.0)


class TestInviteServer:
    def test_request_is_reported_once_and_trying_resent(self) -> None:
        invite = make_request("INVITE")
        tx = InviteServerTransaction(invite, UAC_ADDRESS, reliable=False)
        tx.receive_request(invite, now=0.0)
        assert events(tx) == [RequestReceived(tx.key, invite)]
        assert sent_methods(tx) == ["100"]
        tx.receive_request(invite, now=0.5)
        assert sent_methods(tx) == ["100"] and events(tx) == []
        tx.send_response(response_to(invite, 180), now=0.6)
        tx.receive_request(invite, now=1.5)
        assert sent_methods(tx) == ["180", "180"]

    def test_timer_g_capped_at_t2_until_timer_h(self) -> None:
        invite = make_request("INVITE")
        tx = InviteServerTransaction(invite, UAC_ADDRESS, reliable=False)
        tx.receive_request(invite, now=0.0)
        sent_methods(tx)
        tx.send_response(response_to(invite, 486), now=0.0)
        assert sent_methods(tx) == ["486"]
        sends = run_timers(tx, end=100.0)
        assert [time for time, _ in sends] == [
            0.5,
            1.5,
            3.5,
            7.5,
            11.5,
            15.5,
            19.5,
            23.5,
            27.5,
            31.5,
        ]
        assert events(tx)[-2:] == [TransactionTimedOut(tx.key, "H"), TransactionTerminated(tx.key)]

    def test_ack_confirms_then_timer_i(self) -> None:
        invite = make_request("INVITE")
        tx = InviteServerTransaction(invite, UAC_ADDRESS, reliable=False)
        tx.receive_request(invite, now=0.0)
        busy = response_to(invite, 486)
        tx.send_response(busy, now=0.0)
        tx.receive_request(invite, now=0.2)  # retransmitted INVITE gets the final again
        assert sent_methods(tx) == ["100", "486", "486"]
        ack = InviteClientTransaction(invite, UAS_ADDRESS, reliable=False).build_ack(busy)
        tx.receive_request(ack, now=0.3)
        assert tx.state is TransactionState.CONFIRMED
        assert tx.get_timer() == pytest.approx(5.3)
        tx.receive_request(ack, now=0.4)
        assert sent_methods(tx) == []
        tx.handle_timer(5.3)
        assert events(tx)[-1] == TransactionTerminated(tx.key)

    def test_reliable_ack_terminates_at_once(self) -> None:
        invite = make_request("INVITE")
        tx = InviteServerTransaction(invite, UAC_ADDRESS, reliable=True)
        tx.receive_request(invite, now=0.0)
        busy = response_to(invite, 480)
        tx.send_response(busy, now=0.0)
        assert tx.timer_deadline("G") is None and tx.timer_deadline("H") == 32.0
        tx.receive_request(
            InviteClientTransaction(invite, UAS_ADDRESS, reliable=True).build_ack(busy), now=1
        )
        assert events(tx)[-1] == TransactionTerminated(tx.key)

    def test_2xx_accepted_passes_ack_up_and_lets_tu_retransmit(self) -> None:
        invite = make_request("INVITE")
        tx = InviteServerTransaction(invite, UAC_ADDRESS, reliable=False)
        tx.receive_request(invite, now=0.0)
        ok = response_to(invite, 200)
        tx.send_response(ok, now=1.0)
        tx.send_response(ok, now=1.5)
        tx.receive_request(invite, now=1.6)  # absorbed in Accepted
        assert sent_methods(tx) == ["100", "200", "200"]
        ack = make_request("ACK", branch=invite.top_via.branch)
        tx.receive_request(ack, now=2.0)
        assert events(tx)[1:] == [AckReceived(ack)]
        assert tx.get_timer() == 33.0
        with pytest.raises(TransactionStateError):
            tx.send_response(response_to(invite, 500), now=3.0)
        tx.handle_timer(33.0)
        assert events(tx) == [TransactionTerminated(tx.key)]


class TestNonInviteServer:
    def test_trying_absorbs_then_last_response_is_repeated_until_timer_j(self) -> None:
        bye = make_request("BYE")
        tx = NonInviteServerTransaction(bye, UAC_ADDRESS, reliable=False)
        tx.receive_request(bye, now=0.0)
        assert events(tx) == [RequestReceived(tx.key, bye)]
        tx.receive_request(bye, now=0.5)
        assert sent_methods(tx) == []
        tx.send_response(response_to(bye, 100), now=0.6)
        tx.receive_request(bye, now=1.5)
        tx.send_response(response_to(bye, 200), now=1.6)
        tx.receive_request(bye, now=2.0)
        assert sent_methods(tx) == ["100", "100", "200", "200"]
        assert tx.get_timer() == pytest.approx(33.6)
        with pytest.raises(TransactionStateError):
            tx.send_response(response_to(bye, 500), now=3.0)
        tx.handle_timer(33.6)
        assert events(tx) == [TransactionTerminated(tx.key)]

    def test_reliable_final_terminates_at_once(self) -> None:
        options = make_request("OPTIONS")
        tx = NonInviteServerTransaction(options, UAC_ADDRESS, reliable=True)
        tx.receive_request(options, now=0.0)
        tx.send_response(response_to(options, 200), now=0.0)
        assert [type(e) for e in events(tx)] == [RequestReceived, TransactionTerminated]


def pair() -> tuple[TransactionLayer, TransactionLayer, LossyLink]:
    client, server = TransactionLayer(), TransactionLayer()
    return client, server, LossyLink(client, server)


class TestLayersOverLossyLink:
    def test_rejected_invite_survives_loss_in_both_directions(self) -> None:
        client, server, link = pair()
        link.drop_to_server = {0, 1, 3}  # INVITE twice, first ACK
        link.drop_to_client = {1}  # first 486
        invite = make_request("INVITE")
        client.send_request(invite, UAS_ADDRESS, reliable=False, now=0.0)
        link.transfer(0.0)
        link.run_until(1.5)  # third INVITE copy arrives at 1.5, 100 Trying goes back
        [received] = events(server)
        assert isinstance(received, RequestReceived) and received.request.method == "INVITE"
        server.send_response(response_to(received.request, 486), now=2.0)
        link.transfer(2.0)
        link.run_until(100.0)
        client_codes = [
            e.response.status_code for e in events(client) if isinstance(e, ResponseReceived)
        ]
        assert client_codes == [100, 486]
        assert [m.method for m in link.sent_to_server if isinstance(m, SipRequest)] == [
            "INVITE", "INVITE", "INVITE", "ACK", "ACK",
        ]  # fmt: skip
        assert [type(e) for e in events(server)] == [TransactionTerminated]
        assert len(client) == len(server) == 0

    def test_bye_answer_lost_once_is_repeated_from_completed(self) -> None:
        client, server, link = pair()
        link.drop_to_client = {0}
        bye = make_request("BYE", cseq=2)
        key = client.send_request(bye, UAS_ADDRESS, reliable=False, now=0.0)
        link.transfer(0.0)
        [received] = events(server)
        assert isinstance(received, RequestReceived)
        server.send_response(response_to(received.request, 200), now=0.1)
        link.transfer(0.1)
        link.run_until(100.0)
        client_events = events(client)
        assert key is not None
        assert [type(e) for e in client_events] == [ResponseReceived, TransactionTerminated]
        assert client_events[1] == TransactionTerminated(key)
        assert len(link.sent_to_server) == 2 and len(link.sent_to_client) == 2

    def test_dead_peer_times_out_with_timer_b(self) -> None:
        client, server, link = pair()
        link.drop_to_server = set(range(100))
        key = client.send_request(make_request("INVITE"), UAS_ADDRESS, reliable=False, now=0.0)
        link.transfer(0.0)
        assert link.run_until(100.0) == 32.0
        assert key is not None
        assert events(client) == [TransactionTimedOut(key, "B"), TransactionTerminated(key)]

    def test_stray_2xx_and_ack_reach_the_tu(self) -> None:
        client, server, _ = pair()
        invite = make_request("INVITE")
        client.receive_response(response_to(invite, 200), now=0.0)
        [stray] = events(client)
        assert isinstance(stray, StrayResponseReceived)
        ack = make_request("ACK")
        assert client.send_request(ack, UAS_ADDRESS, reliable=False, now=0.0) is None
        assert [out.message for out in client.messages_to_send()] == [ack]
        server.receive_request(ack, UAC_ADDRESS, reliable=False, now=0.0)
        assert events(server) == [AckReceived(ack)]

    def test_layer_rejects_reused_branch_and_unknown_response(self) -> None:
        client, server, _ = pair()
        invite = make_request("INVITE", branch="z9hG4bKsame")
        client.send_request(invite, UAS_ADDRESS, reliable=True, now=0.0)
        with pytest.raises(TransactionStateError):
            client.send_request(invite, UAS_ADDRESS, reliable=True, now=0.0)
        with pytest.raises(TransactionStateError):
            server.send_response(response_to(invite, 200), now=0.0)

    def test_cancel_is_its_own_transaction_next_to_the_invite(self) -> None:
        _, server, _ = pair()
        invite = make_request("INVITE", branch="z9hG4bKcancelme")
        cancel = make_request("CANCEL", branch="z9hG4bKcancelme")
        built = create_cancel(invite)
        assert (built.uri, built.call_id, built.top_via) == (
            invite.uri,
            invite.call_id,
            invite.top_via,
        )
        assert (built.cseq.seq, built.cseq.method) == (invite.cseq.seq, "CANCEL")
        assert built.to_addr == invite.to_addr and built.from_addr == invite.from_addr
        server.receive_request(invite, UAC_ADDRESS, reliable=False, now=0.0)
        server.receive_request(cancel, UAC_ADDRESS, reliable=False, now=0.1)
        received = [e for e in events(server) if isinstance(e, RequestReceived)]
        assert [e.request.method for e in received] == ["INVITE", "CANCEL"]
        assert received[0].key != received[1].key
        assert len(server) == 2
