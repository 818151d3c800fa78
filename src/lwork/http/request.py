"""What a handler sees of an HTTP request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from lwork.errors import InvalidParams
from lwork.http.decode import parse_struct

T = TypeVar("T", bound=msgspec.Struct)


@dataclass(slots=True)
class ApiRequest:
    method: str
    path: str
    body: Any
    """The parsed JSON body after ``data_enc`` unwrapping; ``None`` when the request had none."""
    query: Mapping[str, str]
    client_ip: str
    bearer: str | None
    """The token from ``Authorization: Bearer``, if any."""
    request_id: str
    gone: Callable[[], Awaitable[None]]
    """Completes when the client disconnects (for requests that wait, such as long polls)."""

    def parse(self, struct_type: type[T]) -> T:
        return parse_struct(struct_type, {} if self.body is None else self.body)

    def query_param(self, name: str, max_length: int = 256) -> str:
        value = self.query.get(name)
        if value is None and isinstance(self.body, dict):
            body_value = self.body.get(name)
            value = body_value if isinstance(body_value, str) else None
        if not value:
            raise InvalidParams(name, f"{name} is required")
        if len(value) > max_length:
            raise InvalidParams(name, f"{name} is too long")
        return value
