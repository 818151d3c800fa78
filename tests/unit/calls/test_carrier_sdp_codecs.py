"""The codecs lwork speaks with a carrier (CONTRACT §6.4): the offer toward the trunk, the
answer to a carrier's offer, the codec a carrier settled on, and the call record keeping it
(SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.calls.carrier_sdp import (
    NoCommonCodec,
    answer_for_carrier,
    chosen_codec,
    codecs_we_take,
    offer_for_carrier,
)
from lwork.calls.records import CallRecord
from lwork.calls.records_store import RecordStore
from lwork.media.sdp_min import build_sdp
from lwork.sip.sdp import SessionDescription

RELAY_SDP = build_sdp("203.0.113.5", 30000)


def carrier_offer(*formats: tuple[int, str]) -> str:
    pts = " ".join(str(pt) for pt, _ in formats)
    maps = "".join(f"a=rtpmap:{pt} {name}/8000\r\n" for pt, name in formats)
    return (
        "v=0\r\no=c 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP {pts}\r\n{maps}a=sendrecv\r\n"
    )


def test_the_offer_to_the_trunk_is_amr_then_pcma_pcmu_then_events_when_transcoding() -> None:
    assert offer_for_carrier(RELAY_SDP, transcoding=False) == RELAY_SDP
    offer = SessionDescription.parse(offer_for_carrier(RELAY_SDP, transcoding=True))
    [audio] = offer.media
    assert audio.formats == ["102", "8", "0", "101"]
    assert [audio.rtpmap(pt).encoding for pt in (102, 8, 0, 101)] == [  # type: ignore[union-attr]
        "AMR", "PCMA", "PCMU", "telephone-event",
    ]  # fmt: skip
    assert audio.port == 30000 and offer.connection is not None
    assert offer.connection.address == "203.0.113.5"
    with pytest.raises(ValueError):
        offer_for_carrier("v=0\r\n", transcoding=True)


def test_an_inbound_g711_only_offer_is_answered_in_g711_only_when_transcoding() -> None:
    offer = carrier_offer((8, "PCMA"), (0, "PCMU"), (101, "telephone-event"))
    with pytest.raises(NoCommonCodec):
        answer_for_carrier(offer, "203.0.113.5", 30000, 7, transcoding=False)
    answer = answer_for_carrier(offer, "203.0.113.5", 30000, 7, transcoding=True)
    assert chosen_codec(answer) == "PCMA"  # the offerer's preference wins (RFC 3264 §6.1)
    assert SessionDescription.parse(answer).media[0].formats == ["8", "101"]
    amr_too = carrier_offer((0, "PCMU"), (96, "AMR"))
    assert chosen_codec(answer_for_carrier(amr_too, "203.0.113.5", 1, 7, transcoding=False)) == (
        "AMR"
    )


def test_an_inbound_answer_lists_what_a_re_invite_may_move_to() -> None:
    answer = answer_for_carrier(
        carrier_offer((8, "PCMA/8000"), (101, "telephone-event/8000")),
        "203.0.113.5", 30000, 7, transcoding=True,
    )  # fmt: skip
    wider = SessionDescription.parse(codecs_we_take(answer, "octet-align=1", transcoding=True))
    original = SessionDescription.parse(answer)
    [media] = wider.media
    assert media.formats == ["102", "8", "0", "101"] and media.port == 30000
    assert ("fmtp", "102 octet-align=1") in media.attributes
    assert wider.origin == original.origin and wider.connection == original.connection
    alone = SessionDescription.parse(codecs_we_take(answer, "octet-align=0", transcoding=False))
    assert alone.media[0].formats == ["102", "101"]


def test_the_codec_a_carrier_chose() -> None:
    assert chosen_codec(carrier_offer((0, "PCMU"), (101, "telephone-event"))) == "PCMU"
    assert chosen_codec(carrier_offer((101, "telephone-event"), (8, "PCMA"))) == "PCMA"
    assert chosen_codec(RELAY_SDP) == "AMR"
    assert chosen_codec(carrier_offer((101, "telephone-event"))) is None
    assert chosen_codec("not sdp") is None and chosen_codec("") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_chosen_codec_of_any_text_is_a_name_or_none(text: str) -> None:
    codec = chosen_codec(text)
    assert codec is None or codec == codec.upper()


async def test_the_call_record_keeps_the_carriers_codec(engine: AsyncEngine) -> None:
    store = RecordStore(engine, LedgerStore(engine))
    record = CallRecord(
        id="n1@@pcma", account="13800138000", kind="out", caller="13800138000",
        callee="02079460000", caller_id="", started_at=997.0, answered_at=1_000.0,
        ended_at=None, node="n1", carrier_codec="PCMA",
    )  # fmt: skip
    await store.open(record, "n1/old", 1_000.0)
    await store.close(replace(record, ended_at=1_010.0), None, 1_010.0)
    await store.open(replace(record, id="n1@@open", carrier_codec="PCMU"), "n1/old", 1_000.0)
    rows = {row["id"]: row["carrier_codec"] for row in await store.rows(record.account, 0, 1e12)}
    assert rows == {"n1@@pcma": "PCMA", "n1@@open": "PCMU"}
    [orphan] = await store.orphans("n1/new", "n1", 60.0, 2_000.0)  # its node died: it keeps it
    assert orphan.id == "n1@@open" and orphan.carrier_codec == "PCMU"
