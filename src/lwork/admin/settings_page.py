"""The effective settings, read-only, with every secret masked: what this node runs with (the
file and the environment merged), for an operator checking a deployment without a shell.

Masked: every ``SecretStr``; every field named like a credential (key, secret, password,
token, auth, …) whatever its type, unless it is a number or a flag; the password of any URL
(``postgresql://user:…@host``) and the values of URL query parameters named like a
credential. A mask says only whether something is set."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, SecretBytes, SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lwork.admin.pages import render
from lwork.admin.web import Console
from lwork.settings import Settings

SET, UNSET = "•••••• (set)", "(empty)"
_SECRET_NAME = re.compile(
    r"key|secret|passw|pwd|token|auth|credential|private|signature|salt|cookie", re.IGNORECASE
)


def secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _mask(value: object) -> str:
    empty = value is None or value == "" or value == {} or value == [] or value == ()
    if isinstance(value, SecretStr | SecretBytes):
        empty = not value.get_secret_value()
    return UNSET if empty else SET


def _url(text: str) -> str:
    """``text`` with a URL's password and credential-named query values masked."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # not a URL after all (a bad port…): show nothing of it
        return SET
    netloc = parts.netloc
    if password is not None:
        user = parts.username or ""
        netloc = f"{user}:******@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "******" if secret_name(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _plain(value: object) -> object:
    """A value as JSON can show it, secrets inside masked (lists of sections, dicts)."""
    if isinstance(value, SecretStr | SecretBytes):
        return _mask(value)
    if isinstance(value, BaseModel):
        return {name: _field(name, getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _url(value)
    if isinstance(value, PurePath):
        return str(value)
    return value


def _field(name: str, value: object) -> object:
    if isinstance(value, SecretStr | SecretBytes):
        return _mask(value)
    if secret_name(name) and not isinstance(value, bool | int | float) and value is not None:
        return _mask(value)
    return _plain(value)


def rows(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted name, value as shown)`` for every setting, sections walked in order."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from rows(value, f"{prefix}{name}.")
            continue
        shown = _field(name, value)
        text = (
            shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False, default=str)
        )
        yield f"{prefix}{name}", text


class SettingsPage:
    def __init__(self, console: Console, settings: Settings) -> None:
        self.console = console
        # Built once: the settings are frozen for the process's life.
        self.rows: list[tuple[str, str]] = list(rows(settings))

    def routes(self) -> list[Route]:
        return [Route("/settings", self.console.guarded(self.page), methods=["GET"])]

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        return render(
            "settings.html", self.console.gate.lang(request), who=visitor.operator,
            csrf=visitor.csrf, here="/admin/settings", section="settings", rows=self.rows,
        )  # fmt: skip
