"""The cut of ``<method>_response`` out of an Alipay reply: the exact text, whatever the
spacing, escapes and member order, and a clear Unreadable (never another error) for anything
else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.alipay_reply import Unreadable, parsed, response_text

KEY = "alipay_trade_query_response"
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
objects = st.dictionaries(st.text(max_size=8), values, max_size=4)
separators = st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :"), (",\n", ":\t")])


@given(objects, objects, separators, st.booleans(), st.booleans())
def test_the_exact_response_text_is_cut_out(
    response: dict[str, object],
    other: dict[str, object],
    seps: tuple[str, str],
    ascii_only: bool,
    sign_first: bool,
) -> None:
    text = json.dumps(response, separators=seps, ensure_ascii=ascii_only)
    other_text = json.dumps(other, ensure_ascii=ascii_only)
    members = [f'"{KEY}" :{text}', f'"sign":"c2lnbg==","other" : {other_text}']
    raw = " { " + ",".join(reversed(members) if sign_first else members) + " } "
    assert response_text(raw, KEY) == text
    assert parsed(text) == response


@given(st.text(max_size=200))
def test_anything_else_is_unreadable_or_found(raw: str) -> None:
    try:
        text = response_text(raw, KEY)
    except Unreadable:
        return
    assert isinstance(parsed(text), dict)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "[]",
        '{"sign":"x"}',
        f'{{"{KEY}":[1]}}',
        f'{{"{KEY}":"text"}}',
        f'{{"x":{{"{KEY}":{{}}}}}}',  # nested, not at the top level
        "[" * 100_000,
    ],
)
def test_replies_without_the_response_object_are_unreadable(raw: str) -> None:
    with pytest.raises(Unreadable):
        response_text(raw, KEY)
