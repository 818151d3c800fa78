"""The BOSS ``package`` body (CONTRACT §9): whatever JSON arrives, it is a valid package or a
refusal with a reason, never anything else."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lwork.boss.operations import PackageBody, Refusal, parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip
fields = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.text(max_size=140) | json_values,
        "account": st.text(max_size=70) | json_values,
        "minutes": st.integers(-5, 20_000_000) | json_values,
        "period": st.sampled_from(["month", "week", ""]) | json_values,
        "periods": st.integers(-2, 200) | json_values,
        "start": st.dates().map(dt.date.isoformat) | st.text(max_size=12) | json_values,
        "extra": json_values,
    },
)


@given(fields)
def test_a_package_body_is_valid_or_refused(body: dict[str, Any]) -> None:
    try:
        parsed = parse("package", json.dumps(body).encode())
    except Refusal as refusal:
        assert refusal.reason in ("invalid_params", "invalid_json")
        assert refusal.status_code == 400
        return
    assert isinstance(parsed, PackageBody)
    assert parsed.minutes > 0 and 0 < parsed.periods <= 120 and parsed.period == "month"
    assert isinstance(parsed.start, dt.date) and parsed.request_id and parsed.account


@given(st.binary(max_size=200))
def test_bytes_that_are_not_a_package_are_refused(raw: bytes) -> None:
    try:
        parse("package", raw)
    except Refusal as refusal:
        assert refusal.reason in ("invalid_params", "invalid_json")


def test_a_valid_body() -> None:
    raw = b'{"request_id":"r","account":"021","minutes":300,"periods":3,"start":"2026-01-31"}'
    parsed = parse("package", raw)
    assert isinstance(parsed, PackageBody)
    assert (parsed.minutes, parsed.periods, parsed.start) == (300, 3, dt.date(2026, 1, 31))
