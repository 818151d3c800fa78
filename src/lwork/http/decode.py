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
