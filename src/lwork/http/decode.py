"""Turning a JSON body into a typed request struct, with the contract's error for bad input."""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from typing import Any, TypeVar

import msgspec

from lwork.errors import InvalidParams

T = TypeVar("T", bound=msgspec.Struct)

MAX_JSON_DEPTH = 32
"""The deepest nesting of arrays and objects a request body may have. The apps send at most
three levels; msgspec's decoder recurses once per level, so a body thousands deep ends in a
RecursionError (and a deep value later recurses again wherever it is copied or encoded)."""

# A JSON string, or an unterminated one running to the end. Possessive repeats and the ``\Z``
# alternative keep this linear: every match attempt succeeds where it starts, so a body of
# escaped quotes cannot make the scan restart inside a string.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\Z)', re.DOTALL)
_FOLD = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")

_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r"- at `\$\.?([^`]*)`")


@cache
def _string_fields(struct_type: type[msgspec.Struct]) -> frozenset[str]:
    names = set()
    for field in msgspec.structs.fields(struct_type):
        options = typing.get_args(field.type) if _is_union(field.type) else (field.type,)
        if any(_is_str(option) for option in options):
            names.add(field.encode_name)
    return frozenset(names)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_str(tp: Any) -> bool:
    # ``Annotated[str, Meta(...)]`` has ``str`` as its origin.
    return tp is str or getattr(tp, "__origin__", None) is str


def too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays/objects more than ``limit`` levels deep.

    Decided without decoding: a body with at most ``limit`` opening brackets in all (every
    normal request, the status poll included) is answered by two ``bytes.count`` calls. Larger
    ones are reduced to their brackets outside strings, and innermost ``[]`` pairs are deleted
    ``limit`` times: a pair left after that sat deeper than ``limit``. Every step is a C-level
    pass: the worst full 64 KiB body (every group exactly ``limit`` deep) costs a few
    milliseconds, a fraction of one login's password hash; a body with ``limit + 1`` openers in
    a row, the usual attack, is refused after one search. Malformed text (unbalanced brackets)
    is left to the decoder, which rejects it.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(_FOLD, _NOT_BRACKET)
    if b"[" * (limit + 1) in brackets:
        return True  # the usual attack, thousands of openers in a row: no peeling needed
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return b"[]" in brackets


def field_of(error: msgspec.ValidationError, prefix: str = "") -> str:
    """The field a msgspec validation error is about, as ``a.b[0].c``."""
    text = str(error)
    at = _AT.search(text)
    path = at.group(1) if at else ""
    missing = _MISSING.search(text)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    path = path or "body"
    return f"{prefix}{path}"


def parse_struct(struct_type: type[T], body: Any) -> T:
    """Validate ``body`` (parsed JSON) into ``struct_type``.

    Numbers are accepted where a string is expected (the original's ``s`` fields took both and
    apps send phone numbers either way); everything else must have the declared type.
    """
    if not isinstance(body, dict):
        raise InvalidParams("body", "the body must be a JSON object")
    strings = _string_fields(struct_type)
    if strings:
        for key in strings:
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                body = {**body, key: str(value)}
    try:
        return msgspec.convert(body, struct_type)
    except msgspec.ValidationError as exc:
        raise InvalidParams(field_of(exc), str(exc)) from exc
