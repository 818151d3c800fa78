"""What a handler sees of an HTTP request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec

from lwork.errors import InvalidParams
from lwork.http.decode import parse_struct

T = TypeVar("T", bound=msgspec.Struct)

BodyParser = Callable[[], Any]


class ApiRequest:
    """A request as the routing table hands it to a handler.

    ``typed`` is the route's request struct when the body decoded straight into it (the fast
    path for plain JSON); otherwise the body is decoded generically (``data_enc``, numbers for
    strings) on first use, and validation errors name the field."""

    __slots__ = ("method", "path", "query", "client_ip", "bearer", "request_id", "gone",
                 "typed", "headers", "_parse_body", "_body", "_parsed")  # fmt: skip

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query: Mapping[str, str],
        client_ip: str,
        bearer: str | None,
        request_id: str,
        gone: Callable[[], Awaitable[None]],
        body: Any = None,
        parse_body: BodyParser | None = None,
        typed: msgspec.Struct | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.client_ip = client_ip
        self.bearer = bearer
        """The token from ``Authorization: Bearer``, if any."""
        self.request_id = request_id
        self.gone = gone
        """Completes when the client disconnects (for requests that wait, such as long polls)."""
        self.typed = typed
        self.headers: Mapping[str, str] = headers or {}
        """The request's headers (lower-case names)."""
        self._parse_body = parse_body
        self._body = body
        self._parsed = parse_body is None

    @property
    def body(self) -> Any:
        """The JSON body after ``data_enc`` unwrapping; ``None`` when the request had none."""
        if not self._parsed:
            assert self._parse_body is not None
            self._body = self._parse_body()
            self._parsed = True
        return self._body

    def parse(self, struct_type: type[T]) -> T:
        if type(self.typed) is struct_type:
            return self.typed
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
