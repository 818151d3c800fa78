"""Loopback fakes of the third-party push services: Baidu Cloud Push, Google OAuth2 + FCM v1, APNs.

Each fake is a real server on 127.0.0.1 (port 0): HTTP/1.1 via h11 for Baidu and Google, HTTP/2
with prior knowledge (h2c) via h2 for APNs. Each checks the wire format and the credentials of
every request *independently of the code under test* (signatures are recomputed or verified
with the test keys), records what it received in `requests`, writes every violation it finds to
`problems`, and answers with the service's documented success body, or with the documented error
the test queued with `enqueue(...)`. `hold()` / `release()` park answers so tests can fill the
provider's in-flight slots.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

Clock = Callable[[], float]


@dataclass
class RecordedRequest:
    """One request as the fake received it (header names lower-case, in arrival order)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return values[0] if values else None


@dataclass
class FakeResponse:
    """What the fake answers. `drop_connection` closes the socket instead (a network error)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop_connection: bool = False

    @classmethod
    def json(cls, status: int, data: object, headers: dict[str, str] | None = None) -> FakeResponse:
        return cls(
            status,
            json.dumps(data).encode(),
            {"content-type": "application/json", **(headers or {})},
        )


Handler = Callable[[RecordedRequest], Awaitable[FakeResponse]]


def baidu_error(code: int, message: str, *, status: int = 400) -> FakeResponse:
    """Baidu v3 error body: ``{"request_id", "error_code", "error_msg"}``."""
    return FakeResponse.json(status, {"request_id": 1, "error_code": code, "error_msg": message})


def fcm_error(
    http_status: int,
    status: str,
    message: str,
    *,
    error_code: str | None = None,
    field_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> FakeResponse:
    """FCM v1 error body with optional FcmError / BadRequest details."""
    details: list[dict[str, object]] = []
    if error_code is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    if field_name is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field_name, "description": message}],
            }
        )
    error = {"code": http_status, "message": message, "status": status, "details": details}
    return FakeResponse.json(http_status, {"error": error}, headers)


def apns_error(
    status: int,
    reason: str,
    *,
    timestamp_ms: int | None = None,
    headers: dict[str, str] | None = None,
) -> FakeResponse:
    """APNs error body ``{"reason": ...}`` (410 answers also carry ``timestamp``)."""
    body: dict[str, object] = {"reason": reason}
    if timestamp_ms is not None:
        body["timestamp"] = timestamp_ms
    return FakeResponse.json(status, body, {"apns-id": str(uuid.uuid4()), **(headers or {})})


class _Script:
    """Queued answers, the request log and the hold/release gate shared by all fakes."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.problems: list[str] = []
        self._queued: deque[FakeResponse] = deque()
        self._gate = asyncio.Event()
        self._gate.set()
        self._arrived = asyncio.Condition()

    def enqueue(self, *responses: FakeResponse) -> None:
        """Answer the next requests with these, in order, then go back to success."""
        self._queued.extend(responses)

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    async def _record(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        async with self._arrived:
            self._arrived.notify_all()

    def _problem(self, text: str) -> None:
        self.problems.append(text)

    async def _answer(self, default: FakeResponse) -> FakeResponse:
        response = self._queued.popleft() if self._queued else default
        await self._gate.wait()
        if response.delay_s:
            await asyncio.sleep(response.delay_s)
        return response


class _LoopbackServer:
    """Accept loop on 127.0.0.1:0 that tracks its connection tasks so close() ends them."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class Http1Server(_LoopbackServer):
    """Minimal keep-alive HTTP/1.1 server (h11) calling `handler` once per request."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request: RecordedRequest | None = None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                headers = [(k.decode().lower(), v.decode()) for k, v in event.headers]
                request = RecordedRequest(
                    event.method.decode(), event.target.decode(), headers, b""
                )
            elif isinstance(event, h11.Data) and request is not None:
                request.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                response = await self._handler(request)
                if response.drop_connection:
                    return
                headers = [*response.headers.items(), ("content-length", str(len(response.body)))]
                writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
                writer.write(conn.send(h11.Data(data=response.body)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                request = None
            else:
                return


class Http2Server(_LoopbackServer):
    """Minimal HTTP/2 server (h2, cleartext with prior knowledge); one task per stream."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        pending: dict[int, RecordedRequest] = {}
        streams: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(65536):
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        headers = [(str(k), str(v)) for k, v in event.headers or []]
                        pseudo = dict(headers)
                        pending[event.stream_id or 0] = RecordedRequest(
                            pseudo.get(":method", ""), pseudo.get(":path", ""), headers, b""
                        )
                    elif isinstance(event, h2.events.DataReceived):
                        stream_id = event.stream_id or 0
                        pending[stream_id].body += event.data or b""
                        conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = pending.pop(event.stream_id or 0)
                        task = asyncio.create_task(
                            self._respond(conn, writer, event.stream_id or 0, request)
                        )
                        streams.add(task)
                        task.add_done_callback(streams.discard)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                writer.write(conn.data_to_send())
        finally:
            for task in list(streams):
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)

    async def _respond(
        self,
        conn: h2.connection.H2Connection,
        writer: asyncio.StreamWriter,
        stream_id: int,
        request: RecordedRequest,
    ) -> None:
        response = await self._handler(request)
        if response.drop_connection:
            writer.close()
            return
        headers = [(":status", str(response.status)), *response.headers.items()]
        headers.append(("content-length", str(len(response.body))))
        try:
            conn.send_headers(stream_id, headers, end_stream=not response.body)
            if response.body:
                conn.send_data(stream_id, response.body, end_stream=True)
        except h2.exceptions.StreamClosedError:
            return  # the client gave up on this stream (timeout)
        writer.write(conn.data_to_send())


# -- JWT checks written from RFC 7515, independent of lwork's signer ---------------------------


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _split_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(_b64url_decode(header_b64))
    claims = json.loads(_b64url_decode(claims_b64))
    return header, claims, f"{header_b64}.{claims_b64}".encode(), _b64url_decode(signature_b64)


# -- Baidu Cloud Push -------------------------------------------------------------------------

_PHP_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def _php_urlencode_by_bytes(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _PHP_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


class FakeBaiduServer(_Script):
    """Baidu push REST v3 ``push/single_device``: checks the form fields and the MD5 sign."""

    def __init__(self, api_key: str, secret_key: str, *, clock: Clock = time.time) -> None:
        super().__init__()
        self.api_key = api_key
        self.secret_key = secret_key
        self._clock = clock
        self._http = Http1Server(self._handle)
        self.forms: list[dict[str, str]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}/rest/3.0"

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        self.release()
        await self._http.close()

    async def _handle(self, request: RecordedRequest) -> FakeResponse:
        await self._record(request)
        form, problems = self._check(request)
        self.forms.append(form)
        if problems:
            self.problems += problems
            return baidu_error(30603, "Authentication Failed", status=401)
        success = FakeResponse.json(
            200,
            {
                "request_id": len(self.requests),
                "response_params": {"msg_id": str(10**12 + len(self.requests)), "send_time": 1},
            },
        )
        return await self._answer(success)

    def _check(self, request: RecordedRequest) -> tuple[dict[str, str], list[str]]:
        problems: list[str] = []
        if request.method != "POST" or request.path != "/rest/3.0/push/single_device":
            problems.append(f"unexpected {request.method} {request.path}")
        if not (request.header("content-type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            problems.append("content-type is not a form")
        if not (request.header("user-agent") or "").startswith("BCCS_SDK/3.0"):
            problems.append("user-agent is not BCCS_SDK/3.0 ...")
        try:
            pairs = urllib.parse.parse_qsl(
                request.body.decode(), keep_blank_values=True, strict_parsing=True
            )
        except (UnicodeDecodeError, ValueError):
            pairs = []
            problems.append("body is not a form")
        form = dict(pairs)
        if len(form) != len(pairs):
            problems.append("repeated form field")
        for name in ("apikey", "timestamp", "sign", "channel_id", "msg_type", "msg"):
            if name not in form:
                problems.append(f"missing {name}")
        if form.get("apikey") != self.api_key:
            problems.append("wrong apikey")
        if (
            not form.get("timestamp", "").isdigit()
            or abs(int(form["timestamp"]) - self._clock()) > 600
        ):
            problems.append("timestamp missing or outside the 10 minute window")
        if form.get("msg_type") not in ("0", "1"):
            problems.append("msg_type not 0/1")
        expires = form.get("msg_expires", "18000")
        if not expires.isdigit() or int(expires) > 604800:
            problems.append("msg_expires out of range")
        try:
            json.loads(form.get("msg", ""))
        except ValueError:
            problems.append("msg is not JSON")
        url = f"http://127.0.0.1:{self._http.port}{request.path}"
        unsigned = "".join(f"{k}={form[k]}" for k in sorted(form) if k != "sign")
        gathered = f"{request.method}{url}{unsigned}{self.secret_key}"
        expected = hashlib.md5(_php_urlencode_by_bytes(gathered).encode()).hexdigest()
        if form.get("sign") != expected:
            problems.append("bad sign")
        return form, problems


# -- Google OAuth2 token endpoint + FCM HTTP v1 -------------------------------------------------

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_TTL = re.compile(r"^\d+(\.\d{1,9})?s$")


class FakeGoogleServer(_Script):
    """Google token endpoint (``/token``) and FCM v1 ``messages:send`` on one server.

    The token endpoint verifies the RS256 assertion with the service account's public key and
    issues opaque tokens; messages:send accepts only an issued, unexpired, unrevoked token.
    Queued answers (`enqueue`) apply to messages:send; `enqueue_token` to the token endpoint.
    """

    def __init__(
        self,
        *,
        project_id: str,
        client_email: str,
        private_key_id: str,
        public_key: rsa.RSAPublicKey,
        clock: Clock = time.time,
        token_lifetime_s: int = 3599,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = client_email
        self.private_key_id = private_key_id
        self._public_key = public_key
        self._clock = clock
        self.token_lifetime_s = token_lifetime_s
        self._http = Http1Server(self._handle)
        self.issued: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.token_requests: list[RecordedRequest] = []
        self._token_queue: deque[FakeResponse] = deque()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        self.release()
        await self._http.close()

    def enqueue_token(self, *responses: FakeResponse) -> None:
        self._token_queue.extend(responses)

    async def _handle(self, request: RecordedRequest) -> FakeResponse:
        if request.path == "/token":
            self.token_requests.append(request)
            return self._issue(request)
        await self._record(request)
        if request.path != f"/v1/projects/{self.project_id}/messages:send":
            self._problem(f"unexpected path {request.path}")
            return fcm_error(404, "NOT_FOUND", "Requested entity was not found.")
        auth = request.header("authorization") or ""
        token = auth.removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked or self.issued[token] <= self._clock():
            return fcm_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )
        violation = self._check_message(request)
        if violation is not None:
            self._problem(violation)
            return fcm_error(400, "INVALID_ARGUMENT", violation, field_name="message")
        success = FakeResponse.json(
            200, {"name": f"projects/{self.project_id}/messages/0:{len(self.requests)}"}
        )
        return await self._answer(success)

    def _issue(self, request: RecordedRequest) -> FakeResponse:
        if self._token_queue:
            return self._token_queue.popleft()
        form = dict(urllib.parse.parse_qsl(request.body.decode(errors="replace")))
        problem = self._check_assertion(form)
        if problem is not None:
            self._problem(problem)
            return FakeResponse.json(400, {"error": "invalid_grant", "error_description": problem})
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued[token] = self._clock() + self.token_lifetime_s
        return FakeResponse.json(
            200,
            {"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"},
        )

    def _check_assertion(self, form: dict[str, str]) -> str | None:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return "unsupported grant_type"
        try:
            header, claims, signed, signature = _split_jwt(form.get("assertion", ""))
            self._public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return "assertion signature does not verify"
        if header != {"alg": "RS256", "typ": "JWT", "kid": self.private_key_id}:
            return f"unexpected JWT header {header}"
        now = self._clock()
        if claims.get("iss") != self.client_email or claims.get("scope") != FCM_SCOPE:
            return "wrong iss or scope"
        if claims.get("aud") != self.token_uri:
            return "aud is not the token URI"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat/exp missing"
        if abs(iat - now) > 300 or not 0 < exp - iat <= 3600:
            return "iat/exp out of range"
        return None

    def _check_message(self, request: RecordedRequest) -> str | None:
        if not (request.header("content-type") or "").startswith("application/json"):
            return "content-type is not JSON"
        try:
            message = json.loads(request.body)["message"]
        except (ValueError, KeyError, TypeError):
            return "body has no message"
        if not isinstance(message.get("token"), str) or not message["token"]:
            return "message.token missing"
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            return "message.data values must be strings"
        android = message.get("android", {})
        if android.get("priority") not in ("HIGH", "NORMAL"):
            return "android.priority invalid"
        if "ttl" in android and not _TTL.match(str(android["ttl"])):
            return "android.ttl is not a duration"
        return None


# -- APNs --------------------------------------------------------------------------------------

_DEVICE_PATH = re.compile(r"^/3/device/[0-9a-fA-F]+$")


class FakeApnsServer(_Script):
    """APNs provider API over h2c: verifies the ES256 provider token and the apns-* headers."""

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        public_key: ec.EllipticCurvePublicKey,
        bundle_id: str,
        clock: Clock = time.time,
    ) -> None:
        super().__init__()
        self.team_id = team_id
        self.key_id = key_id
        self.bundle_id = bundle_id
        self._public_key = public_key
        self._clock = clock
        self._http = Http2Server(self._handle)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        self.release()
        await self._http.close()

    async def _handle(self, request: RecordedRequest) -> FakeResponse:
        await self._record(request)
        auth_problem = self._check_token(request.header("authorization") or "")
        if auth_problem is not None:
            self._problem(auth_problem)
            return apns_error(403, "InvalidProviderToken")
        problem = self._check_request(request)
        if problem is not None:
            self._problem(problem[1])
            return apns_error(400, problem[0])
        return await self._answer(FakeResponse(200, b"", {"apns-id": str(uuid.uuid4())}))

    def _check_token(self, authorization: str) -> str | None:
        if not authorization.startswith("bearer "):
            return "authorization is not 'bearer <jwt>'"
        try:
            header, claims, signed, signature = _split_jwt(authorization.removeprefix("bearer "))
            if len(signature) != 64:
                return "ES256 signature is not 64 raw bytes"
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            self._public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            return "provider token does not verify"
        if header != {"alg": "ES256", "kid": self.key_id}:
            return f"unexpected JWT header {header}"
        iat = claims.get("iat")
        if claims.get("iss") != self.team_id or not isinstance(iat, int):
            return "wrong iss or missing iat"
        if not -60 <= self._clock() - iat <= 3600:
            return "provider token too old"
        return None

    def _check_request(self, request: RecordedRequest) -> tuple[str, str] | None:
        names = [k for k, _ in request.headers]
        if len(names) != len(set(names)):
            return "DuplicateHeaders", "a header is repeated"
        if request.method != "POST":
            return "MethodNotAllowed", f"method {request.method}"
        if not _DEVICE_PATH.match(request.path):
            return "BadPath", f"path {request.path}"
        push_type = request.header("apns-push-type")
        topic = request.header("apns-topic")
        if topic is None:
            return "MissingTopic", "apns-topic missing"
        if push_type not in ("alert", "voip"):
            return "InvalidPushType", f"apns-push-type {push_type}"
        expected_topic = self.bundle_id + (".voip" if push_type == "voip" else "")
        if topic != expected_topic:
            return "BadTopic", f"topic {topic} for {push_type}"
        if request.header("apns-priority") not in ("10", "5", "1"):
            return "BadPriority", "apns-priority"
        if not (request.header("apns-expiration") or "").isdigit():
            return "BadExpirationDate", "apns-expiration"
        try:
            body = json.loads(request.body)
        except ValueError:
            return "PayloadEmpty", "body is not JSON"
        if not isinstance(body, dict) or not isinstance(body.get("aps"), dict):
            return "PayloadEmpty", "no aps dictionary"
        return None
