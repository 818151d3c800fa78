"""Phone numbers masked in every log line, ids and times left alone, and the JSON line format."""

from __future__ import annotations

import json
import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from lwork.ids import new_call_session_id
from lwork.observability import JsonFormatter, MaskingFormatter, mask_numbers


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    entry = logging.LogRecord("lwork.test", logging.WARNING, __file__, 1, message, args, info)
    entry.request_id = "req-1"
    return entry


def test_numbers_keep_their_last_four_digits() -> None:
    assert mask_numbers("SMS to 13800138000 sent") == "SMS to *******8000 sent"
    assert mask_numbers("from +8613800138000,") == "from **********8000,"
    assert mask_numbers("uuid=13800138000&x=1") == "uuid=*******8000&x=1"
    assert mask_numbers("port 40000 pid 1234 at 12:30:45") == "port 40000 pid 1234 at 12:30:45"


def test_ids_and_versions_are_not_numbers() -> None:
    sid = new_call_session_id("n1")
    for text in (sid, "a1234567890b", "v1.2345678", "0123456789abcdef" * 2, "abc-12345678"):
        assert mask_numbers(text) == text


@given(st.from_regex(r"\+?[0-9]{7,15}", fullmatch=True), st.text(max_size=20))
def test_any_number_alone_is_masked_to_four_digits(number: str, other: str) -> None:
    masked = mask_numbers(f"to {number} ")
    assert masked == f"to {'*' * (len(number) - 4)}{number[-4:]} "
    assert number not in mask_numbers(f"{other} {number} {other}") or len(number) < 7


@given(st.text(max_size=200))
def test_masking_never_fails_and_keeps_the_length(text: str) -> None:
    assert len(mask_numbers(text)) == len(text)


def test_the_text_format_masks_unless_told_not_to() -> None:
    entry = record("development SMS to %s: %s", "13800138000", "hello")
    assert "*******8000" in MaskingFormatter().format(entry)
    assert "[req-1]" in MaskingFormatter().format(entry)
    assert "13800138000" in MaskingFormatter(full_numbers=True).format(entry)


def test_a_json_line_names_the_call_and_carries_the_exception() -> None:
    sid = new_call_session_id("n1")
    try:
        raise ValueError("boom for 13800138000")
    except ValueError:
        entry = record("call %s ended for %s", sid, "13800138000", exc=True)
    line = JsonFormatter().format(entry)
    parsed = json.loads(line)
    assert parsed["call_id"] == sid and parsed["request_id"] == "req-1"
    assert parsed["level"] == "WARNING" and parsed["logger"] == "lwork.test"
    assert parsed["msg"] == f"call {sid} ended for *******8000"
    assert "ValueError: boom for *******8000" in parsed["exc"]
    assert "13800138000" not in line
    assert parsed["ts"].endswith("+00:00")
