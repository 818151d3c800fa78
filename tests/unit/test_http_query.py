"""The edge's query parsing reads every query string as Starlette's ``query_params`` does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from lwork.http.server import _query

PIECES = st.sampled_from(
    ["session_id", "=", "&", "%", "%2", "%E4%BD%A0", "+", ";", "a", "é", "\x00"]
)


@given(
    st.one_of(st.binary(max_size=200), st.lists(PIECES, max_size=30).map("".join).map(str.encode))
)
def test_any_query_reads_as_starlette_reads_it(raw: bytes) -> None:
    assert dict(_query(raw)) == dict(QueryParams(raw))


def test_the_last_of_a_repeated_name_wins() -> None:
    assert _query(b"session_id=a&session_id=b&x=") == {"session_id": "b", "x": ""}
    assert _query(b"") == {}
