"""A dialog written down at answer and restored by another process builds the same BYE the
original would have, with a CSeq above anything sent since (RFC 3261 12.2.1.1)."""

import pytest
from test_sip_dialog import OUR_CONTACT, OUR_SENT_BY, answer

from lwork.sip.dialog import Dialog, SentBy
from lwork.sip.dialog_snapshot import CSEQ_MARGIN, DialogSnapshot
from lwork.sip.headers import NameAddr
from lwork.sip.message import parse_message

from sip_helpers import make_request

NEW_CONTACT = NameAddr.parse("<sip:lwork@198.51.100.8:5070>")
NEW_SENT_BY = SentBy("UDP", "198.51.100.8", 5070)


def confirmed() -> Dialog:
    invite = make_request("INVITE", cseq=7)
    dialog = Dialog.from_uac_response(
        invite, answer(invite, 200), local_contact=OUR_CONTACT, sent_by=OUR_SENT_BY
    )
    dialog.create_request("INFO")  # a digit sent after the answer: CSeq 8
    return dialog


def test_a_restored_dialog_sends_the_bye_the_original_would_have() -> None:
    original = confirmed()
    text = DialogSnapshot.of(original, ("203.0.113.10", 5060)).to_json()
    snapshot = DialogSnapshot.from_json(text)
    assert snapshot.peer == ("203.0.113.10", 5060)
    restored = snapshot.restore(local_contact=NEW_CONTACT, sent_by=NEW_SENT_BY)
    expected = original.create_request("BYE")
    bye = parse_message(bytes(restored.create_request("BYE")))
    assert (bye.method, str(bye.uri), bye.call_id) == ("BYE", str(expected.uri), expected.call_id)  # type: ignore[union-attr]
    assert (bye.from_addr.tag, bye.to_addr.tag) == ("uac1", "uas-tag")
    assert str(bye.from_addr) == str(expected.from_addr) and str(bye.to_addr) == str(
        expected.to_addr
    )
    assert bye.headers.get_all("Route") == expected.headers.get_all("Route")
    assert len(bye.headers.get_all("Route")) == 2
    assert bye.cseq.seq == 9 + CSEQ_MARGIN > expected.cseq.seq
    assert bye.vias[0].host == "198.51.100.8"  # sent from the process that restored it


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"call_id": 1}', "nonsense"])
def test_anything_but_a_snapshot_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        DialogSnapshot.from_json(text)
