"""The operator's web console at ``/admin``: sign-in sessions, their cookie, its language."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lwork.settings.base import Section

# RFC 6265 cookie-name characters (an HTTP token), so the name needs no quoting anywhere.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class AdminSettings(Section):
    enabled: bool = True
    """Serve the console at ``/admin``. Nobody can sign in until an operator user exists
    (``lwork admin user add``); false: ``/admin`` answers 404 like any unknown path."""
    session_ttl_s: int = Field(8 * 3600, ge=60)
    """How long a sign-in lasts (seconds) before the operator must sign in again."""
    cookie_name: str = "lwork_admin"
    """Name of the session cookie (HttpOnly, SameSite=Strict; Secure when lwork serves TLS
    itself and always with ``env = "production"``, where TLS may end at a proxy)."""
    language: Literal["zh", "en"] = "zh"
    """The console's language until an operator picks the other one (a cookie keeps it)."""
    sign_in_per_minute: int = Field(10, ge=1)
    """Sign-in attempts one client address may make a minute; more get 429 (password guessing
    by address). Failures per user name are limited the same way."""
    live_streams: int = Field(32, ge=1, le=10_000)
    """Live-call event streams (``/admin/calls/events``, one per open live-calls page) a node
    holds at once; more get 429. Each costs a task and a send of the snapshot a second (about
    260 KB with 500 rows: see ``bench.console_bench``)."""
    full_numbers: bool = False
    """Show phone numbers whole in the console; false cuts them to their last four digits as
    the logs do (``log_full_numbers``)."""

    @field_validator("cookie_name")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError("admin.cookie_name must be an HTTP token (letters, digits, _-.)")
        return value
