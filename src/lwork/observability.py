"""Logging: a request id on every line, phone numbers masked, and one JSON object a line for a
log shipper (``log_format = "json"``).

Masking happens in the formatter, on the text a line is about to become, so it covers every
logger (ours, uvicorn's, httpx's) whatever it was given to print; the records themselves are
left as they are for in-process handlers.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
from typing import Literal

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

_NUMBER = re.compile(r"(?<![\w@.-])(\+?\d{3,})(\d{4})(?![\w-])")
"""A phone number: seven digits or more, alone (not inside a hex id, a version or a time)."""
_CALL_ID = re.compile(r"\b[\w.-]+@@[0-9a-f]{32}\b")
"""A call's session id (``<node>@@<128 random bits>``, lwork.ids)."""


def mask_numbers(text: str) -> str:
    """Every phone number in ``text`` reduced to its last four digits (``*******8000``)."""
    return _NUMBER.sub(lambda m: "*" * len(m.group(1)) + m.group(2), text)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class MaskingFormatter(logging.Formatter):
    """The text format, with phone numbers masked unless ``full_numbers``."""

    def __init__(self, full_numbers: bool = False) -> None:
        super().__init__(TEXT_FORMAT)
        self._full_numbers = full_numbers

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line if self._full_numbers else mask_numbers(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, request id, the call id the
    message names (if any), the message and any exception, numbers masked unless
    ``full_numbers``."""

    def __init__(self, full_numbers: bool = False) -> None:
        super().__init__()
        self._full_numbers = full_numbers

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, str] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
        }
        call = _CALL_ID.search(message)
        if call is not None:
            entry["call_id"] = call.group(0)
        entry["msg"] = message
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False)
        return line if self._full_numbers else mask_numbers(line)


def setup_logging(level: str, log_format: LogFormat = "text", full_numbers: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    formatter = JsonFormatter if log_format == "json" else MaskingFormatter
    handler.setFormatter(formatter(full_numbers))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces every plugin at INFO on each start; only its problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
