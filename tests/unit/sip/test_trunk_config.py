"""Trunk configuration: E.164 normalisation, trusted sources, codec formats."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.sip.trunk.config import NumberRule, TrunkConfig, normalise_number

UK_RULES = (NumberRule("00", "+"), NumberRule("0", "+44"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946-0000", "+442079460000"),
        ("0044 (20) 7946 0000", "+442079460000"),
        ("020.7946.0000", "+442079460000"),
        ("2079460000", "+442079460000"),  # national without trunk prefix: country code added
        ("+8613800138000;npdi", "+8613800138000"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert normalise_number(raw, UK_RULES, "44") == expected


@pytest.mark.parametrize("raw", ["", "+", "anonymous", "+12", "+1234567890123456", "0x12345"])
def test_non_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_number(raw, UK_RULES, "44")


def test_national_number_without_country_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="country code"):
        normalise_number("2079460000")


def test_first_matching_rule_wins() -> None:
    rules = (NumberRule("011", "+"), NumberRule("0", "+1"))
    assert normalise_number("01144123456", rules) == "+44123456"
    assert normalise_number("0555123", rules) == "+1555123"


@given(st.text(max_size=40))
def test_normalise_gives_e164_or_value_error(raw: str) -> None:
    try:
        number = normalise_number(raw, UK_RULES, "44")
    except ValueError:
        return
    assert re.fullmatch(r"\+[0-9]{3,15}", number)


def test_trusted_sources_accept_addresses_and_networks() -> None:
    config = TrunkConfig(proxy_host="192.0.2.10", trusted_sources=("198.51.100.0/24", "::1"))
    assert config.is_trusted("192.0.2.10")  # the proxy itself
    assert config.is_trusted("198.51.100.77")
    assert config.is_trusted("[::1]")
    assert not config.is_trusted("203.0.113.5")
    assert not config.is_trusted("carrier.example")


def test_proxy_given_by_name_is_not_implicitly_trusted() -> None:
    config = TrunkConfig(proxy_host="sbc.carrier.example")
    assert not config.is_trusted("192.0.2.10")
    assert config.request_domain == "sbc.carrier.example"


@pytest.mark.parametrize(
    "changes",
    [{"transport": "sctp"}, {"codecs": ("OPUS",)}, {"calls_per_second": 0}],
)
def test_invalid_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrunkConfig(proxy_host="192.0.2.10", **changes)  # type: ignore[arg-type]


def test_codecs_map_to_payload_formats_in_preference_order() -> None:
    config = TrunkConfig(proxy_host="192.0.2.10", codecs=("PCMA", "AMR"))
    encodings = [fmt.encoding for fmt in config.payload_formats()]
    assert encodings == ["PCMA", "AMR", "AMR"]  # AMR in both framings


def test_dial_string_can_drop_the_plus() -> None:
    config = TrunkConfig(proxy_host="192.0.2.10", dial_with_plus=False)
    assert config.dial_string("+442079460000") == "442079460000"
