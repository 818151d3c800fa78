"""Dialog creation and in-dialog request construction (RFC 3261 section 12)."""

from pathlib import Path

import pytest

from lwork.sip.builders import create_response
from lwork.sip.dialog import Dialog, DialogState, SentBy
from lwork.sip.headers import NameAddr
from lwork.sip.message import SipRequest, SipResponse, parse_message

from sip_helpers import make_request

DATA = Path(__file__).parents[2] / "data" / "sip"
OUR_CONTACT = NameAddr.parse("<sip:862150001234@198.51.100.7:5060>")
OUR_SENT_BY = SentBy("UDP", "198.51.100.7", 5060)


def answer(
    invite: SipRequest,
    code: int,
    *,
    contact: str = "<sip:callee@203.0.113.50:5060>",
    record_route: tuple[str, ...] = (
        "<sip:edge.carrier.example;lr>",
        "<sip:core.carrier.example;lr>",
    ),
) -> SipResponse:
    response = create_response(invite, code, to_tag="uas-tag", contact=NameAddr.parse(contact))
    for entry in record_route:
        response.headers.add("Record-Route", entry)
    return response


def uac_dialog(code: int = 180) -> tuple[SipRequest, Dialog]:
    invite = make_request("INVITE", cseq=7)
    dialog = Dialog.from_uac_response(
        invite, answer(invite, code), local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
    )
    return invite, dialog


class TestUacDialog:
    def test_provisional_creates_an_early_dialog_with_reversed_route_set(self) -> None:
        invite, dialog = uac_dialog(180)
        assert dialog.state is DialogState.EARLY
        assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (
            invite.call_id,
            "uac1",
            "uas-tag",
        )
        assert [r.uri.host for r in dialog.route_set] == [
            "core.carrier.example",
            "edge.carrier.example",
        ]
        assert str(dialog.remote_target) == "sip:callee@203.0.113.50:5060"
        assert (dialog.local_seq, dialog.remote_seq) == (7, None)

    def test_2xx_confirms_refreshes_target_and_recomputes_routes(self) -> None:
        invite, dialog = uac_dialog(183)
        ok = answer(
            invite,
            200,
            contact="<sip:callee@203.0.113.51:5070>",
            record_route=("<sip:only.example;lr>",),
        )
        dialog.receive_response(invite, ok)
        assert dialog.state is DialogState.CONFIRMED
        assert dialog.remote_target.host == "203.0.113.51" and dialog.remote_target.port == 5070
        assert [r.uri.host for r in dialog.route_set] == ["only.example"]

    def test_response_from_a_forked_branch_belongs_to_another_dialog(self) -> None:
        invite, dialog = uac_dialog(180)
        forked = create_response(invite, 200, to_tag="other-branch", contact=OUR_CONTACT)
        with pytest.raises(ValueError):
            dialog.receive_response(invite, forked)
        assert dialog.state is DialogState.EARLY

    def test_error_final_ends_an_early_dialog(self) -> None:
        invite, dialog = uac_dialog(180)
        dialog.receive_response(invite, answer(invite, 486))
        assert dialog.state is DialogState.TERMINATED

    def test_ack_for_2xx_keeps_invite_cseq_and_takes_a_new_branch(self) -> None:
        invite, dialog = uac_dialog(200)
        ack = dialog.create_ack(invite)
        assert ack.method == "ACK" and ack.cseq.seq == 7
        assert ack.top_via.branch != invite.top_via.branch
        assert ack.top_via.branch is not None and ack.top_via.branch.startswith("z9hG4bK")
        assert ack.uri == dialog.remote_target
        assert [str(r) for r in ack.routes] == [
            "<sip:core.carrier.example;lr>",
            "<sip:edge.carrier.example;lr>",
        ]
        assert dialog.local_seq == 7
        assert parse_message(bytes(ack)).cseq == ack.cseq

    def test_bye_and_reinvite_use_the_next_cseq_and_dialog_tags(self) -> None:
        _, dialog = uac_dialog(200)
        bye = dialog.create_request("BYE")
        reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
        info = dialog.create_request(
            "INFO", extra_headers=[("Content-Type", "application/dtmf-relay")]
        )
        assert [r.cseq.seq for r in (bye, reinvite, info)] == [8, 9, 10]
        assert bye.from_addr.tag == "uac1" and bye.to_addr.tag == "uas-tag"
        assert bye.headers.get("Contact") is None
        assert reinvite.contacts == [OUR_CONTACT]
        assert reinvite.content_type == "application/sdp" and reinvite.body == b"v=0\r\n"
        assert info.headers.get("Content-Type") == "application/dtmf-relay"
        assert dialog.matches(answer(bye, 200))
        with pytest.raises(ValueError):
            dialog.create_request("CANCEL")

    def test_strict_router_goes_into_the_request_uri(self) -> None:
        invite = make_request("INVITE")
        response = answer(
            invite,
            200,
            record_route=("<sip:loose.example;lr>", "<sip:strict.example;maddr=10.0.0.9>"),
        )
        dialog = Dialog.from_uac_response(
            invite, response, local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
        )
        bye = dialog.create_request("BYE")
        assert str(bye.uri) == "sip:strict.example"
        assert [str(r.uri) for r in bye.routes] == [
            "sip:loose.example;lr",
            str(dialog.remote_target),
        ]

    def test_responses_that_cannot_create_a_dialog_are_refused(self) -> None:
        invite = make_request("INVITE")
        trying = create_response(invite, 100)
        no_tag = create_response(invite, 180, contact=OUR_CONTACT)
        no_contact = create_response(invite, 180, to_tag="x")
        for response in (trying, no_tag, no_contact):
            with pytest.raises(ValueError):
                Dialog.from_uac_response(
                    invite, response, local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
                )


class TestUasDialog:
    def carrier_invite(self) -> SipRequest:
        invite = parse_message((DATA / "invite.sip").read_bytes())
        assert isinstance(invite, SipRequest)
        return invite

    def test_dialog_from_the_carrier_invite(self) -> None:
        invite = self.carrier_invite()
        dialog = Dialog.from_uas_request(
            invite, local_tag="ours", local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
        )
        states = [dialog.state]
        assert (dialog.remote_seq, dialog.remote_tag, dialog.local_tag) == (
            102,
            "as5c1b7e21",
            "ours",
        )
        assert str(dialog.remote_target) == "sip:8613912345678@203.0.113.10:5060;transport=udp"
        dialog.confirm()
        states.append(dialog.state)
        assert states == [DialogState.EARLY, DialogState.CONFIRMED]
        bye = dialog.create_request("BYE")
        assert bye.cseq.seq == 1
        assert bye.from_addr.tag == "ours" and bye.to_addr.tag == "as5c1b7e21"
        assert bye.uri == dialog.remote_target
        assert [str(r) for r in bye.routes] == ["<sip:203.0.113.10;lr;ftag=as5c1b7e21>"]

    def test_carrier_bye_matches_and_terminates(self) -> None:
        invite = self.carrier_invite()
        dialog = Dialog.from_uas_request(
            invite, local_tag="9fxced76sl", local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
        )
        bye = parse_message((DATA / "bye.sip").read_bytes())
        assert isinstance(bye, SipRequest)
        assert dialog.matches(bye)
        dialog.receive_request(bye)
        assert dialog.remote_seq == 103 and dialog.state is DialogState.TERMINATED
        assert dialog.id.remote_tag == "as5c1b7e21"

    def test_out_of_order_cseq_is_refused_and_reinvite_refreshes_target(self) -> None:
        invite = self.carrier_invite()
        dialog = Dialog.from_uas_request(
            invite, local_tag="t", local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
        )
        older = parse_message(
            (DATA / "bye.sip").read_bytes().replace(b"CSeq: 103 BYE", b"CSeq: 101 BYE")
        )
        assert isinstance(older, SipRequest)
        with pytest.raises(ValueError):
            dialog.receive_request(older)
        reinvite = parse_message(
            (DATA / "invite.sip")
            .read_bytes()
            .replace(b"CSeq: 102", b"CSeq: 104")
            .replace(
                b"Contact: <sip:8613912345678@203.0.113.10:5060",
                b"Contact: <sip:8613912345678@203.0.113.11:5060",
            )
        )
        assert isinstance(reinvite, SipRequest)
        dialog.receive_request(reinvite)
        assert dialog.remote_target.host == "203.0.113.11" and dialog.remote_seq == 104

    def test_request_without_from_tag_cannot_create_a_dialog(self) -> None:
        invite = make_request("INVITE")
        invite.headers.set("From", "<sip:anon@198.51.100.7>")
        with pytest.raises(ValueError):
            Dialog.from_uas_request(
                invite, local_tag="t", local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
            )
