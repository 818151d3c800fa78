"""The HTTP edge: route, unwrap ``data_enc``, call the handler, map errors, wrap responses.

Every response carries a JSON body with ``status``; no request produces a 500 (CONTRACT §1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from lwork.addresses import limit_key
from lwork.errors import (
    Failed,
    HttpError,
    InvalidParams,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
)
from lwork.http.client_address import ClientAddress
from lwork.http.decode import MAX_JSON_DEPTH, too_deep
from lwork.http.envelope import EnvelopeError, unwrap_request, wrap_response
from lwork.http.request import ApiRequest
from lwork.http.routing import AfterSend, Match, RawReply, RouteTable
from lwork.ids import new_request_id
from lwork.observability import request_id_var
from lwork.ratelimit import RateLimiter
from lwork.storage.outage import OutageLog, outage_of
from lwork.telemetry import Telemetry

log = logging.getLogger("lwork.http")

_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_NO_QUERY: dict[str, str] = {}


_JSON_TYPE = (b"content-type", b"application/json")
_TEXT_TYPE = (b"content-type", b"text/plain; charset=utf-8")
_ANY_ORIGIN = (b"access-control-allow-origin", b"*")


class EdgeAnswer:
    """A response as the edge makes it: sent straight through ASGI by ``EdgeFirst`` (a
    Starlette ``Response`` costs a status poll a few per cent more), or as a ``Response`` where
    Starlette routes the request."""

    __slots__ = ("status", "body", "headers", "background")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        background: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        """Raw header pairs, without ``content-length`` (added when sent)."""
        self.background = background

    async def send(self, send: Send) -> None:
        headers = [(b"content-length", str(len(self.body)).encode()), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
        if self.background is not None:
            await self.background()

    def response(self) -> Response:
        response = Response(self.body, self.status)
        response.raw_headers.extend(self.headers)
        if self.background is not None:
            response.background = BackgroundTask(self.background)
        return response


def _json(status_code: int, body: Any, headers: dict[str, str] | None = None) -> EdgeAnswer:
    raw = [_JSON_TYPE]
    if headers:
        raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return EdgeAnswer(status_code, _encoder.encode(body), raw)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first header ``name`` (lower case) of ``scope``, read from the raw pairs: cheaper
    than Starlette's ``Headers`` for the one or two a request needs before its handler."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _query(raw: bytes) -> Mapping[str, str]:
    """The query's parameters, the last of a repeated name winning, as Starlette's
    ``query_params`` reads them; a plain dict, which costs a call-status poll a third of what
    Starlette's multi-dict does."""
    if not raw:
        return _NO_QUERY
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    # Nothing escaped (a status poll's ``session_id=n1@@…``): split, as parse_qsl would.
    params: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params


async def _disconnected(request: Request) -> None:
    # The body has been read, so the next ASGI message can only be the disconnect.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


_UNROUTED = "unrouted"


class HttpEdge:
    """The one Starlette endpoint that serves the whole route table."""

    def __init__(
        self,
        table: RouteTable,
        *,
        body_limit: int,
        ip_limiter: RateLimiter,
        login_limiter: RateLimiter,
        trusted_proxies: Sequence[str],
        monotonic: Callable[[], float],
        telemetry: Telemetry | None = None,
    ) -> None:
        self._table = table
        self._telemetry = telemetry or Telemetry()
        self._body_limit = body_limit
        self._ip_limiter = ip_limiter
        self._login_limiter = login_limiter
        self._addresses = ClientAddress(trusted_proxies)
        self._monotonic = monotonic
        self._outages = OutageLog()

    def client_ip(self, request: Request) -> str:
        client = request.scope.get("client")
        peer = client[0] if client else "0.0.0.0"
        if not self._addresses.proxied:
            return self._addresses.client(peer, ())
        return self._addresses.client(peer, request.headers.getlist("x-forwarded-for"))

    @property
    def table(self) -> RouteTable:
        return self._table

    async def handle(self, request: Request, match: Match | None = None) -> Response:
        """The answer to ``request`` as a Starlette response (routes Starlette dispatches)."""
        return (await self.answer(request, match)).response()

    async def answer(self, request: Request, match: Match | None = None) -> EdgeAnswer:
        """The answer to ``request``; ``match``: the table's match for it, if already made."""
        began = time.perf_counter()
        request_id = new_request_id()
        token = request_id_var.set(request_id)
        wrapped = False
        try:
            if match is None:
                match = self._table.match(request.method, request.scope["path"])
            if match is not None:
                wrapped = match.wrapped
            answer = await self._dispatch(request, match, request_id)
        except Failed as exc:
            answer = _json(200, {"status": "failed", "reason": exc.reason, **exc.extra})
        except HttpError as exc:
            answer = self._http_error(exc)
        except ClientDisconnect:
            answer = EdgeAnswer(499, b"", [])
        except Exception as exc:
            self._log_failure(request, exc)
            answer = _json(200, {"status": "failed", "reason": "service_not_available"})
        finally:
            request_id_var.reset(token)
        if wrapped and answer.body:
            # Apps on /lwork/mobile1/ decode every answer, errors included.
            answer.body = wrap_response(answer.body)
            answer.headers = [_JSON_TYPE, *(h for h in answer.headers if h[0] != b"content-type")]
        answer.headers.append((b"x-request-id", request_id.encode()))
        if request.method == "POST":
            answer.headers.append(_ANY_ORIGIN)
        # Only routes of the table name a series: a stranger's paths must not add any.
        label = _UNROUTED if match is None or match.route is None else match.route.label
        self._telemetry.http_answered(label, answer.status, time.perf_counter() - began)
        return answer

    def _log_failure(self, request: Request, exc: Exception) -> None:
        outage = outage_of(exc)
        if outage is None:
            log.exception("unhandled error on %s %s", request.method, request.scope["path"])
        elif (line := self._outages.failed(outage, self._monotonic())) is not None:
            log.error("%s (last on %s %s)", line, request.method, request.scope["path"])

    async def _dispatch(self, request: Request, match: Match | None, request_id: str) -> EdgeAnswer:
        if match is None:
            raise NotFound("no such path")
        route = match.route
        if route is None:
            raise MethodNotAllowed(list(match.allowed))
        client_ip = self.client_ip(request)
        if route.rate_limited:
            now, key = self._monotonic(), limit_key(client_ip)
            wait = self._ip_limiter.hit(key, now)
            if not wait and route.checks_password:
                wait = self._login_limiter.hit(key, now)
            if wait:
                raise TooManyRequests(wait)
        raw = await self._read_raw(request)
        if too_deep(raw):
            # Before any decoding: msgspec recurses once per level (see MAX_JSON_DEPTH).
            raise InvalidParams("body", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        typed = None
        if route.body is not None and raw and b'"data_enc"' not in raw:
            # Plain JSON straight into the request struct; anything unusual (an envelope,
            # numbers for strings, a bad field) takes the generic path and its error messages.
            try:
                typed = msgspec.json.decode(raw, type=route.body)
            except (msgspec.ValidationError, msgspec.DecodeError):
                typed = None
        if typed is None:
            body, parse_body = self._parse_body(raw), None
        else:
            body, parse_body = None, lambda: self._parse_body(raw)
        auth = (_header(request.scope, b"authorization") or b"").decode("latin-1")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        api_request = ApiRequest(
            method=route.method,
            path=route.path,
            body=body,
            parse_body=parse_body,
            typed=typed,
            query=_query(request.scope.get("query_string", b"")),
            client_ip=client_ip,
            bearer=bearer or None,
            request_id=request_id,
            gone=lambda: _disconnected(request),
            headers=request.headers,
        )
        reply = await route.handler(api_request)
        if isinstance(reply, RawReply):
            media_type = reply.media_type.encode()
            if media_type.startswith(b"text/") and b"charset" not in media_type:
                media_type += b"; charset=utf-8"  # as Starlette's Response adds it
            return EdgeAnswer(200, reply.body, [(b"content-type", media_type)])
        if isinstance(reply, AfterSend):
            answer = _json(200, reply.reply)
            answer.background = reply.then
            return answer
        return _json(200, reply)

    async def _read_raw(self, request: Request) -> bytes:
        declared = _header(request.scope, b"content-length")
        if declared is None and _header(request.scope, b"transfer-encoding") is None:
            return b""  # no body announced (a GET): nothing to wait for
        if declared is not None and declared.isdigit() and int(declared) > self._body_limit:
            raise PayloadTooLarge("body too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._body_limit:
                raise PayloadTooLarge("body too large")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _parse_body(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            parsed = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidParams("body", "the body is not JSON") from exc
        try:
            return unwrap_request(parsed)
        except EnvelopeError as exc:
            raise InvalidParams("data_enc", str(exc)) from exc

    def _http_error(self, exc: HttpError) -> EdgeAnswer:
        body: dict[str, Any] = {"status": "failed", "reason": exc.reason}
        headers: dict[str, str] = {}
        if isinstance(exc, InvalidParams):
            body["field"] = exc.field
        elif isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, MethodNotAllowed):
            headers["Allow"] = ", ".join(exc.allowed)
        return _json(exc.status_code, body, headers)


def build_starlette(edge: HttpEdge) -> Starlette:
    """An app serving ``edge``, whose routes are all known now."""
    return Starlette(routes=[StarletteRoute("/{path:path}", edge.handle, methods=_METHODS)])


EDGE = "edge"
ComposingLifespan = Callable[[Starlette], AbstractAsyncContextManager[Mapping[str, HttpEdge]]]
"""A lifespan that composes the edge at start-up and yields it as ``{EDGE: edge}``."""


def build_starlette_composed(lifespan: ComposingLifespan) -> EdgeFirst:
    """An app whose edge is composed at start-up, once what its routes need runs (the relay, the
    SIP trunk): ``lifespan`` yields it as Starlette's lifespan state, which the server copies
    into every request's scope; requests are only served after start-up, so each finds it."""

    async def handle(request: Request) -> Response:
        edge: HttpEdge = request.scope["state"][EDGE]
        return await edge.handle(request)

    return EdgeFirst(
        routes=[StarletteRoute("/{path:path}", handle, methods=_METHODS)], lifespan=lifespan
    )


Endpoint = Callable[[Request], Awaitable[Response]]
"""A handler that answers every request it is given itself, errors included."""


class EdgeFirst(Starlette):
    """Requests for a route of the edge's table go to the edge at once, and those for a path of
    ``direct`` (provider notifications) to its endpoint; the rest (lifespan, the routes put
    before the catch-all: the BOSS) through Starlette.

    Starlette's error middleware, router and per-route wrapper would only pass such a request
    on: the edge and the direct endpoints answer every error themselves. Skipping them takes
    about a sixth off the server's time for a call-status poll, the most frequent request
    (bench.calls_bench), and a fifth off a payment notification's (bench.pay_bench)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[str, Endpoint] = {}
        """Exact path → the endpoint that serves every method of it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.direct.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
            edge: HttpEdge | None = scope.get("state", {}).get(EDGE)
            match = edge.table.match(scope["method"], scope["path"]) if edge else None
            if edge is not None and match is not None and match.route is not None:
                scope["app"] = self
                answer = await edge.answer(Request(scope, receive, send), match)
                await answer.send(send)
                return
        await super().__call__(scope, receive, send)
