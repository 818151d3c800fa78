"""Destination prefixes, pure: the longest matching prefix decides, in E.164 form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.fraud.defaults import CALL_ALLOW, CALL_DENY, SMS_ALLOW, SMS_DENY
from lwork.fraud.prefixes import NumberPlan, PrefixRules, checked_prefix
from lwork.sip.trunk.config import NumberRule

digits = st.text("0123456789", min_size=0, max_size=6)
prefixes = st.lists(digits.map(lambda d: "+" + d), max_size=6).map(tuple)
numbers = st.text("0123456789", min_size=3, max_size=15).map(lambda d: "+" + d)


def by_hand(rules: PrefixRules, number: str) -> bool:
    """The rule as the README states it, checked from the longest prefix down."""
    for length in range(len(number), 0, -1):
        head = number[:length]
        if head in rules.deny:
            return False
        if head in rules.allow:
            return True
    return True


@given(prefixes, prefixes, numbers)
def test_the_longest_matching_prefix_decides_and_a_tie_denies(
    allow: tuple[str, ...], deny: tuple[str, ...], number: str
) -> None:
    assert PrefixRules(allow, deny).permits(number) == by_hand(PrefixRules(allow, deny), number)


@given(prefixes, numbers)
def test_without_a_deny_list_everything_passes(allow: tuple[str, ...], number: str) -> None:
    assert PrefixRules(allow, ()).permits(number)
    assert PrefixRules(allow, ()).permits(None)
    assert PrefixRules(allow, ()).denied_by(number) is None


@given(prefixes, prefixes, numbers)
def test_an_account_allowance_of_the_number_itself_wins_unless_denied_as_precisely(
    allow: tuple[str, ...], deny: tuple[str, ...], number: str
) -> None:
    rules = PrefixRules(allow, tuple(p for p in deny if p != number)).plus((number,), ())
    assert rules.permits(number)


def test_the_production_defaults_of_a_mainland_operator() -> None:
    calls = PrefixRules(CALL_ALLOW, CALL_DENY)
    plan = NumberPlan((NumberRule("00", "+"), NumberRule("0", "+86")), "86")
    for allowed in ("13800138000", "02112345678", "4008123123", "+86 10 6552 9988"):
        assert calls.permits(plan.e164(allowed)), allowed
    for denied, by in (("0044 20 7946 0000", "+"), ("+85212345678", "+"),
                       ("+8821612345678", "+"), ("12590123456", "+861259"),
                       ("1680123456", "+86168"), ("96123", "+8696"),
                       ("1795102112345", "+86179"), ("95012345", "+86950")):  # fmt: skip
        assert not calls.permits(plan.e164(denied)), denied
        assert calls.denied_by(plan.e164(denied)) == by
    assert not calls.permits(None)  # "*123#" is no number: refused once anything is denied
    sms = PrefixRules(SMS_ALLOW, SMS_DENY)
    assert sms.permits("+8613800138000") and sms.permits("+8619912345678")
    for denied in ("+862112345678", "+86106575000", "+8617951123", "+447700900123"):
        assert not sms.permits(denied), denied


def test_numbers_in_e164_form() -> None:
    plan = NumberPlan((NumberRule("00", "+"),), "86")
    assert plan.e164("13800138000") == "+8613800138000"
    assert plan.e164("0044 20 7946 0000") == "+442079460000"
    assert plan.e164("*99#") is None and plan.e164("1234567890123456") is None
    assert plan.key("+86 138 0013 8000") == plan.key("13800138000")
    assert plan.key("*99#") == "*99#"


@pytest.mark.parametrize("bad", ["86", "+86a", "", "+1234567890123456", "++1"])
def test_prefixes_are_checked(bad: str) -> None:
    with pytest.raises(ValueError):
        checked_prefix(bad)
    assert checked_prefix("+") == "+"
