"""Rendering: Jinja2 templates (autoescaped: every value an operator or an app typed comes back
as text, never markup) and the headers every console answer carries."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from lwork.admin.i18n import Lang, translator

# Scripts and styles from our own files only: an injected <script> would not run even if some
# value slipped past the escaping. No framing (clickjacking of the hang-up button).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

_env = Environment(
    loader=PackageLoader("lwork.admin", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt variable fails the test, not the operator's eye
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_time(at: float | None, zone: ZoneInfo) -> str:
    """An instant as the operator reads it: ``2026-12-05 18:04:18+08:00`` in
    ``billing.timezone``; empty for none."""
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, zone).isoformat(sep=" ", timespec="seconds")


STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}
_static = {
    name: (resources.files("lwork.admin") / "static" / name).read_bytes() for name in STATIC_TYPES
}


def render(template: str, lang: Lang, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(t=translator(lang), lang=lang, **context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def static(name: str) -> Response | None:
    body = _static.get(name)
    if body is None:
        return None
    headers = {**SECURITY_HEADERS, "cache-control": "max-age=300"}
    return Response(body, media_type=STATIC_TYPES[name], headers=headers)


def error_page(
    lang: Lang, status: int, key: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A page that says what went wrong (``key`` of the catalogue), with ``status``."""
    response = render(
        "error.html",
        lang,
        status,
        message_key=key,
        code=status,
        who=None,
        csrf="",
        here="/admin/",
        section="",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
