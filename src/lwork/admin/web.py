"""The console's routes under ``/admin``: sign-in and sign-out, the language switch, its static
files. Mounted before the mobile API's catch-all route, so the edge's fast path for the apps'
requests never sees them (nor they it).

No request here ends in a 500: a failure is logged and answered with an error page."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from lwork.addresses import limit_key
from lwork.admin.gate import LANG_COOKIE, Gate, Refused, Visitor, read_form
from lwork.admin.i18n import LANGS
from lwork.admin.operators import Operator, valid_name
from lwork.admin.pages import SECURITY_HEADERS, error_page, render, static
from lwork.admin.second_factor import PENDING_TTL_S, PendingSignIns
from lwork.admin.totp import parse_code
from lwork.boss.audit import AuditTrail
from lwork.errors import TooManyRequests
from lwork.http.client_address import ClientAddress
from lwork.http.shared_limits import machine_limiter

log = logging.getLogger("lwork.admin")

Endpoint = Callable[[Request], Awaitable[Response]]


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if value and value.startswith("/admin/") and "//" not in value and "\\" not in value:
        return value
    return "/admin/calls"


class Console:
    def __init__(
        self,
        gate: Gate,
        audit: AuditTrail,
        addresses: ClientAddress,
        monotonic: Callable[[], float],
        pending: PendingSignIns,
    ) -> None:
        """``pending``: signs the cookie that carries a sign-in from its password to its TOTP
        code, for operators who enrolled one."""
        self.gate = gate
        self.audit = audit
        self.addresses = addresses
        self.monotonic = monotonic
        self.pending = pending
        per_minute = gate.settings.sign_in_per_minute
        # For the whole machine under http.workers (see lwork.http.shared_limits).
        self._by_address = machine_limiter("admin.sign_in.address", per_minute, 60.0)
        self._by_name = machine_limiter("admin.sign_in.name", per_minute, 60.0)
        self._pages: list[BaseRoute] = []

    def add_pages(self, routes: list[Route]) -> None:
        """The routes of a section of the console (live calls, records), under ``/admin``."""
        self._pages.extend(routes)

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else "0.0.0.0"
        return self.addresses.client(peer, request.headers.getlist("x-forwarded-for"))

    async def record(
        self, visitor: Visitor | None, action: str, fields: dict[str, object], result: str,
        actor: str | None = None,
    ) -> None:  # fmt: skip
        """One row of the audit trail (shared with the BOSS's): ``console:<operator>``.

        ``actor``: the name a sign-in typed. One that no operator could have is written as
        ``?`` (its text goes into the JSON detail, escaped), so ``lwork boss audit`` never
        prints a stranger's control characters into the operator's terminal."""
        who = actor if actor is not None else visitor.operator.name if visitor else "-"
        if not valid_name(who) and who != "-":
            fields = {**fields, "name": who}
            who = "?"
        await self.audit.record(f"console:{who}", action, dict(fields), result, self.gate.wall())

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Refused as refused:
                return refused.response
            except TooManyRequests as exc:  # the password hashers are all busy
                lang = self.gate.lang(request)
                return error_page(lang, 429, "too_many", {"retry-after": str(exc.retry_after)})
            except Exception:
                log.exception("console: %s %s failed", request.method, request.url.path)
                return error_page(self.gate.lang(request), 503, "unavailable")

        return run

    def mount(self) -> list[BaseRoute]:
        """``/admin`` (sent on to ``/admin/``) and everything under it."""
        g = self.guarded
        routes: list[BaseRoute] = [
            Route("/", g(self.home), methods=["GET"]),
            Route("/sign-in", g(self.sign_in_page), methods=["GET"]),
            Route("/sign-in", g(self.sign_in), methods=["POST"]),
            Route("/sign-in/code", g(self.sign_in_code), methods=["POST"]),
            Route("/sign-out", g(self.sign_out), methods=["POST"]),
            Route("/lang/{lang}", g(self.switch_language), methods=["GET"]),
            Route("/static/{name}", g(self.static_file), methods=["GET"]),
            *self._pages,
            Route("/{rest:path}", g(self.not_found)),
        ]
        return [Route("/admin", g(self.home), methods=["GET"]), Mount("/admin", routes=routes)]

    async def not_found(self, request: Request) -> Response:
        return error_page(self.gate.lang(request), 404, "not_found")

    async def home(self, request: Request) -> Response:
        visitor = await self.gate.visitor(request)
        target = "/admin/calls" if visitor is not None else "/admin/sign-in"
        return RedirectResponse(target, 303, SECURITY_HEADERS)

    async def static_file(self, request: Request) -> Response:
        found = static(request.path_params["name"])
        return found if found is not None else await self.not_found(request)

    async def switch_language(self, request: Request) -> Response:
        lang = request.path_params["lang"]
        if lang not in LANGS:
            return await self.not_found(request)
        response = RedirectResponse(safe_next(request.query_params.get("next")), 303,
                                    SECURITY_HEADERS)  # fmt: skip
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/admin",
                            samesite="strict", secure=self.gate.secure)  # fmt: skip
        return response

    def _sign_in_form(
        self, request: Request, status: int = 200, problem: str = "", name: str = "",
        next_: str = "",
    ) -> Response:  # fmt: skip
        token = self.gate.pre_token(request)
        response = render(
            "sign_in.html", self.gate.lang(request), status, who=None, csrf=token,
            here="/admin/sign-in", section="", problem=problem, name=name,
            next=safe_next(next_ or request.query_params.get("next")),
        )  # fmt: skip
        self.gate.set_pre(response, token)
        return response

    async def sign_in_page(self, request: Request) -> Response:
        if await self.gate.visitor(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303,
                                    SECURITY_HEADERS)  # fmt: skip
        return self._sign_in_form(request)

    async def sign_in(self, request: Request) -> Response:
        form = await read_form(request)
        name, password = form.get("name", "")[:64], form.get("password", "")
        # Login CSRF: the form's token must be the one its cookie holds (double submit).
        expected = request.cookies.get(self.gate.pre_cookie, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return error_page(self.gate.lang(request), 403, "csrf_failed")
        now, ip = self.monotonic(), self.client_ip(request)
        wait = self._by_address.hit(limit_key(ip), now) or self._by_name.check(name, now)
        if wait:
            await self.record(None, "sign_in", {"client": ip}, "too_many", actor=name)
            response = self._sign_in_form(request, 429, "too_many", name, form.get("next", ""))
            response.headers["retry-after"] = str(max(1, round(wait)))
            return response
        operator = await self.gate.store.check(name, password)
        if operator is None:
            self._by_name.hit(name, now)  # failures per name: guessing from many addresses
            await self.record(None, "sign_in", {"client": ip}, "bad_password", actor=name)
            return self._sign_in_form(request, 401, "bad_credentials", name, form.get("next", ""))
        if operator.totp:
            await self.record(None, "sign_in", {"client": ip}, "password_ok", actor=operator.name)
            response = self._code_form(request, form.get("next", ""))
            response.set_cookie(
                self.pending_cookie, self.pending.issue(operator.name, self.gate.wall()),
                max_age=PENDING_TTL_S, path="/admin/sign-in", secure=self.gate.secure,
                httponly=True, samesite="strict",
            )  # fmt: skip
            return response
        return await self._signed_in(operator, ip, form.get("next"))

    @property
    def pending_cookie(self) -> str:
        return self.gate.settings.cookie_name + "_2fa"

    def _code_form(
        self, request: Request, next_: str, status: int = 200, problem: str = ""
    ) -> Response:
        token = self.gate.pre_token(request)
        response = render(
            "sign_in_code.html", self.gate.lang(request), status, who=None, csrf=token,
            here="/admin/sign-in", section="", problem=problem, next=safe_next(next_),
        )  # fmt: skip
        self.gate.set_pre(response, token)
        return response

    async def _signed_in(self, operator: Operator, ip: str, next_: str | None) -> Response:
        session_id = await self.gate.store.open_session(
            operator, self.gate.settings.session_ttl_s, self.gate.wall()
        )
        await self.record(None, "sign_in", {"client": ip, "totp": operator.totp or None}, "ok",
                          actor=operator.name)  # fmt: skip
        response = RedirectResponse(safe_next(next_), 303, SECURITY_HEADERS)
        self.gate.set_session(response, session_id)
        response.delete_cookie(self.pending_cookie, path="/admin/sign-in")
        return response

    async def sign_in_code(self, request: Request) -> Response:
        """The second step of an enrolled operator's sign-in: the TOTP code, within
        ``PENDING_TTL_S`` of the right password, limited as password guesses are."""
        form = await read_form(request)
        expected = request.cookies.get(self.gate.pre_cookie, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return error_page(self.gate.lang(request), 403, "csrf_failed")
        name = self.pending.name_of(request.cookies.get(self.pending_cookie, ""), self.gate.wall())
        if name is None:  # no password given, or too long ago: start again
            return self._sign_in_form(request, 401, "code_expired", "", form.get("next", ""))
        now, ip = self.monotonic(), self.client_ip(request)
        wait = self._by_address.hit(limit_key(ip), now) or self._by_name.check(name, now)
        if wait:
            await self.record(None, "sign_in", {"client": ip}, "too_many", actor=name)
            response = self._code_form(request, form.get("next", ""), 429, "too_many")
            response.headers["retry-after"] = str(max(1, round(wait)))
            return response
        code = parse_code(form.get("code", ""))
        operator = None
        if code is not None:
            operator = await self.gate.store.use_code(name, code, self.gate.wall())
        if operator is None:
            self._by_name.hit(name, now)
            await self.record(None, "sign_in", {"client": ip}, "bad_code", actor=name)
            return self._code_form(request, form.get("next", ""), 401, "bad_code")
        return await self._signed_in(operator, ip, form.get("next"))

    async def sign_out(self, request: Request) -> Response:
        form = await read_form(request)
        visitor = await self.gate.visitor(request)
        if visitor is None:
            return error_page(self.gate.lang(request), 403, "forbidden")
        if not hmac.compare_digest(visitor.csrf, form.get("csrf", "")):
            return error_page(self.gate.lang(request), 403, "csrf_failed")
        # Read-only operators may sign out too: it changes nothing but their own session.
        await self.gate.store.close_session(visitor.session_id)
        await self.record(visitor, "sign_out", {}, "ok")
        response = RedirectResponse("/admin/sign-in", 303, SECURITY_HEADERS)
        self.gate.clear_session(response)
        return response
