"""lwork's error hierarchy, mapped to the wire in one place (``http/server.py``).

    LworkError
    ├── Failed(reason)            HTTP 200 {"status":"failed","reason":…}: an application result
    └── HttpError(status, reason) a transport-level problem, still with a JSON body
        ├── InvalidParams(field)  400 invalid_params (+ "field")
        ├── NotFound              404 not_found
        ├── MethodNotAllowed      405 method_not_allowed
        ├── PayloadTooLarge       413 payload_too_large
        └── TooManyRequests       429 too_many_requests (+ Retry-After)

Anything else raised by a handler is a bug: it is logged with the request id and answered
200 ``service_not_available`` (the original's catch-all), never 500.
"""

from __future__ import annotations

import math


class LworkError(Exception):
    """Base of every error lwork turns into a response."""


class Failed(LworkError):
    """The request was understood and refused: ``{"status":"failed","reason":reason}``."""

    def __init__(self, reason: str, **extra: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


class HttpError(LworkError):
    status_code = 500
    reason = "service_not_available"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail


class InvalidParams(HttpError):
    status_code = 400
    reason = "invalid_params"

    def __init__(self, field: str, detail: str = "") -> None:
        super().__init__(detail or f"invalid field {field}")
        self.field = field


class NotFound(HttpError):
    status_code = 404
    reason = "not_found"


class MethodNotAllowed(HttpError):
    status_code = 405
    reason = "method_not_allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__("method not allowed")
        self.allowed = allowed


class PayloadTooLarge(HttpError):
    status_code = 413
    reason = "payload_too_large"


class TooManyRequests(HttpError):
    status_code = 429
    reason = "too_many_requests"

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limited")
        self.retry_after = max(1, math.ceil(retry_after))
