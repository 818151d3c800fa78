"""Who is asking: the operator a request's session cookie signs in, its CSRF token, its
language; and the answers a request without them gets."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lwork.admin.i18n import Lang, pick, translator
from lwork.admin.operators import Operator, OperatorStore, csrf_matches, csrf_token
from lwork.admin.pages import SECURITY_HEADERS, error_page
from lwork.settings.admin import AdminSettings

LANG_COOKIE = "lwork_lang"
FORM_LIMIT = 16 * 1024
"""Largest console form body, in bytes (the forms hold a few short fields)."""


class Refused(Exception):
    """A request the console does not serve, with the answer it gets instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True, slots=True)
class Visitor:
    operator: Operator
    session_id: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)


class Gate:
    def __init__(
        self, store: OperatorStore, settings: AdminSettings, secure: bool,
        wall: Callable[[], float],
    ) -> None:  # fmt: skip
        """``secure``: the cookie is only sent over HTTPS (the server itself speaks TLS)."""
        self.store = store
        self.settings = settings
        self.secure = secure
        self.wall = wall

    @property
    def pre_cookie(self) -> str:
        """The cookie that carries a sign-in form's CSRF token before any session exists."""
        return self.settings.cookie_name + "_pre"

    def lang(self, request: Request) -> Lang:
        return pick(request.cookies.get(LANG_COOKIE), self.settings.language)

    def translate(self, request: Request, key: str) -> str:
        """A catalogue string in the request's language (for messages built in code)."""
        return translator(self.lang(request))(key)

    async def visitor(self, request: Request) -> Visitor | None:
        session_id = request.cookies.get(self.settings.cookie_name)
        if not session_id or len(session_id) > 128:
            return None
        operator = await self.store.session(session_id, self.wall())
        return Visitor(operator, session_id) if operator is not None else None

    async def reader(self, request: Request) -> Visitor:
        """The signed-in visitor of a page; else the sign-in page, to come back after."""
        visitor = await self.visitor(request)
        if visitor is None:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise Refused(
                RedirectResponse(f"/admin/sign-in?next={quote(here)}", 303, SECURITY_HEADERS)
            )
        return visitor

    async def changer(self, request: Request, form: dict[str, str]) -> Visitor:
        """The visitor of a state-changing POST: signed in, with the session's CSRF token (in
        the form or the ``X-CSRF-Token`` header), as an ``admin``. A refusal is 403."""
        lang = self.lang(request)
        visitor = await self.visitor(request)
        if visitor is None:
            raise Refused(error_page(lang, 403, "forbidden"))
        token = form.get("csrf") or request.headers.get("x-csrf-token", "")
        if not csrf_matches(visitor.session_id, token):
            raise Refused(error_page(lang, 403, "csrf_failed"))
        if not visitor.operator.may_change:
            raise Refused(error_page(lang, 403, "read_only"))
        return visitor

    def set_session(self, response: Response, session_id: str) -> None:
        response.set_cookie(
            self.settings.cookie_name, session_id, max_age=self.settings.session_ttl_s,
            path="/admin", secure=self.secure, httponly=True, samesite="strict",
        )  # fmt: skip
        response.delete_cookie(self.pre_cookie, path="/admin")

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            self.settings.cookie_name, path="/admin", secure=self.secure, httponly=True,
            samesite="strict",
        )  # fmt: skip

    def pre_token(self, request: Request) -> str:
        """The sign-in form's CSRF token: the one its cookie holds, else a new one."""
        token = request.cookies.get(self.pre_cookie, "")
        return token if len(token) == 43 else secrets.token_urlsafe(32)

    def set_pre(self, response: Response, token: str) -> None:
        response.set_cookie(
            self.pre_cookie, token, max_age=3600, path="/admin", secure=self.secure,
            httponly=True, samesite="strict",
        )  # fmt: skip


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form of at most ``FORM_LIMIT`` bytes (the first value of each name);
    anything else is refused with 400/413."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise Refused(Response("form expected", 400, headers=SECURITY_HEADERS))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise Refused(Response("form too large", 413, headers=SECURITY_HEADERS))
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(name, value)
    return form
