"""Which new INVITEs the trunk refuses itself, on the captured carrier INVITE."""

from pathlib import Path

import pytest

from lwork.sip.message import SipRequest, parse_message
from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.inbound import Refusal, screen_invite, source_address

CAPTURE = Path(__file__).parents[2] / "data" / "sip" / "invite.sip"
CHINA = TrunkConfig(
    proxy_host="203.0.113.10",
    number_rules=(NumberRule("00", "+"), NumberRule("86", "+86"), NumberRule("0", "+86")),
    default_country_code="86",
)


def captured_invite(replace: tuple[str, str] | None = None) -> SipRequest:
    data = CAPTURE.read_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    if replace is not None:
        old, new = (part.encode() for part in replace)
        assert old in data
        data = data.replace(old, new)
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def test_carrier_invite_passes_with_e164_caller_and_callee() -> None:
    assert screen_invite(CHINA, captured_invite()) == ("+8613912345678", "+862150001234")


def test_unknown_kind_of_callee_is_refused_404() -> None:
    invite = captured_invite(("INVITE sip:862150001234@", "INVITE sip:service@"))
    assert screen_invite(CHINA, invite) == Refusal(404)


def test_offer_without_a_common_codec_is_refused_488() -> None:
    config = TrunkConfig(
        proxy_host="203.0.113.10", codecs=("G722",), number_rules=CHINA.number_rules
    )
    assert screen_invite(config, captured_invite()) == Refusal(488)


def test_unparseable_offer_is_refused_400() -> None:
    invite = captured_invite(("m=audio 31294 RTP/AVP", "m=audio 3129x RTP/AVP"))
    assert screen_invite(CHINA, invite) == Refusal(400, "Bad SDP")


def test_anonymous_caller_is_kept_as_sent() -> None:
    invite = captured_invite(('"8613912345678" <sip:8613912345678@', "<sip:anonymous@"))
    assert screen_invite(CHINA, invite) == ("anonymous", "+862150001234")


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        ("SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKa", ("", 5060)),
        ("SIP/2.0/UDP 203.0.113.10:5070;branch=z9hG4bKa;received=203.0.113.10",
         ("203.0.113.10", 5070)),
        ("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa;received=198.51.100.1;rport=4000",
         ("198.51.100.1", 4000)),
        ("SIP/2.0/UDP carrier.example;branch=z9hG4bKa", ("", 5060)),
    ],
)  # fmt: skip
def test_source_address_is_only_what_the_transport_stamped(
    via: str, expected: tuple[str, int]
) -> None:
    invite = captured_invite()
    invite.headers.replace_first("Via", via)
    assert source_address(invite) == expected
