"""``POST /lwork/boss/v1/<operation>``: the BOSS's door (CONTRACT §9).

It sits beside the mobile API's edge rather than in it: the signature covers the exact bytes of
the body, and ``cdrs`` answers with a stream, neither of which the edge's JSON routes offer.
Order of checks: source, size, signature (and replay), operation, fields; then a change is
done once per ``request_id`` and every admitted request is written to the audit trail.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from lwork.boss.audit import AuditTrail
from lwork.boss.cdrs import CdrReader, csv_header, csv_rows, json_lines
from lwork.boss.gate import BossGate
from lwork.boss.operations import OPERATIONS, Body, BossOperations, CdrsBody, Refusal, parse
from lwork.boss.store import BossStore
from lwork.http.client_address import ClientAddress

log = logging.getLogger("lwork.boss")

PATH = "/lwork/boss/v1/{operation}"
_encoder = msgspec.json.Encoder()


def _json(status_code: int, answer: dict[str, Any]) -> Response:
    return Response(_encoder.encode(answer), status_code, media_type="application/json")


class BossEndpoint:
    def __init__(
        self,
        gate: BossGate,
        store: BossStore,
        operations: BossOperations,
        cdrs: CdrReader,
        known_account: Callable[[str], Awaitable[str]],
        audit: AuditTrail,
        addresses: ClientAddress,
        body_limit: int,
        wall: Callable[[], float],
    ) -> None:
        """``known_account(account)``: its uuid, or LookupError."""
        self._gate = gate
        self._store = store
        self._operations = operations
        self._cdrs = cdrs
        self._known_account = known_account
        self._audit = audit
        self._addresses = addresses
        self._body_limit = body_limit
        self._wall = wall

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except Exception:  # a database that fails: an answer the BOSS can read, not a 500
            log.exception("BOSS request failed")
            return _json(503, {"status": "failed", "reason": "service_not_available"})

    async def _handle(self, request: Request) -> Response:
        operation = request.path_params["operation"]
        peer = request.client.host if request.client else ""
        client_ip = self._addresses.client(peer, request.headers.getlist("x-forwarded-for"))
        try:
            self._gate.check_source(client_ip)
            raw = await self._read(request)
            key_id = await self._gate.admit(request.headers, "POST", request.scope["path"], raw)
            if operation not in OPERATIONS:
                raise Refusal("unknown_operation", 404)
            body = parse(operation, raw)
        except Refusal as exc:
            log.info("BOSS request from %s refused: %s", client_ip, exc.reason)
            return _json(exc.status_code, exc.answer())
        except ClientDisconnect:
            return Response(status_code=499)
        if isinstance(body, CdrsBody):
            return await self._stream_cdrs(key_id, body)
        return await self._run(key_id, operation, body)

    async def _run(self, key_id: str, operation: str, body: Body) -> Response:
        fields = msgspec.to_builtins(body)
        request_id = fields.get("request_id")
        claimed = False
        if OPERATIONS[operation].changes and request_id is not None:
            # The body as decoded, not its bytes: a retry may space its JSON differently.
            digest = hashlib.sha256(_encoder.encode(body)).hexdigest()
            earlier = await self._store.claim(request_id, key_id, operation, digest, self._wall())
            if earlier is not None:
                if earlier.operation != operation or earlier.body_hash != digest:
                    return await self._answer(key_id, operation, fields, 409,
                                              Refusal("request_id_conflict").answer())  # fmt: skip
                if earlier.answer is None or earlier.status_code is None:
                    return _json(409, Refusal("request_in_progress").answer())
                await self._audit.record(key_id, operation, fields, "repeat", self._wall())
                return _json(earlier.status_code, earlier.answer)
            claimed = True
        try:
            answer, status_code = await self._operations.run(operation, body), 200
        except Refusal as exc:
            answer, status_code = exc.answer(), exc.status_code
        except Exception:
            log.exception("BOSS %s failed", operation)
            if claimed:
                await self._store.release(request_id)
            failure = {"status": "failed", "reason": "service_not_available"}
            return await self._answer(key_id, operation, fields, 503, failure)
        if claimed:
            await self._store.answered(request_id, status_code, answer)
        return await self._answer(key_id, operation, fields, status_code, answer)

    async def _answer(
        self, key_id: str, operation: str, fields: dict[str, Any], status_code: int,
        answer: dict[str, Any],
    ) -> Response:  # fmt: skip
        result = answer.get("reason", "ok") if answer.get("status") != "ok" else "ok"
        await self._audit.record(key_id, operation, fields, str(result), self._wall())
        return _json(status_code, answer)

    async def _stream_cdrs(self, key_id: str, body: CdrsBody) -> Response:
        fields = msgspec.to_builtins(body)
        try:
            if body.end < body.start:
                raise Refusal("invalid_params", detail="end is before start")
            account = await self._known_account(body.account) if body.account else None
        except LookupError:
            return await self._answer(key_id, "cdrs", fields, 400,
                                      Refusal("account_not_exist").answer())  # fmt: skip
        except Refusal as exc:
            return await self._answer(key_id, "cdrs", fields, exc.status_code, exc.answer())
        await self._audit.record(key_id, "cdrs", fields, "ok", self._wall())
        csv = body.format == "csv"

        async def chunks() -> AsyncIterator[bytes]:
            if csv:
                yield csv_header()
            async for batch in self._cdrs.records(account, body.start, body.end):
                yield csv_rows(batch) if csv else json_lines(batch)

        media_type = "text/csv" if csv else "application/x-ndjson"
        return StreamingResponse(chunks(), media_type=media_type)

    async def _read(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._body_limit:
            raise Refusal("body_too_large", 413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._body_limit:
                raise Refusal("body_too_large", 413)
            chunks.append(chunk)
        return b"".join(chunks)
