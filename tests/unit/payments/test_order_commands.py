"""``--amount`` of ``lwork boss orders refund``: yuan with at most two decimals, positive, or a
clear ValueError."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.commands import _fen


@given(st.integers(min_value=1, max_value=10**10))
def test_two_decimal_amounts_are_exact_fen(fen: int) -> None:
    assert _fen(f"{Decimal(fen) / 100:.2f}") == fen


@given(st.text(max_size=30))
def test_any_text_is_fen_or_a_value_error(text: str) -> None:
    try:
        fen = _fen(text)
    except ValueError:
        return
    assert fen > 0 and Decimal(text.strip()) * 100 == fen


@pytest.mark.parametrize("bad", ["0", "-1", "0.001", "abc", "nan", "inf", "1e999999999", ""])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="--amount"):
        _fen(bad)
