"""``/openapi.json``, generated from the route table's msgspec structs.

Besides the schemas, the document says how answers feed later requests (OpenAPI links): a
registration's credentials log in, a login's token and device act for the account, a started
call's ``session_id`` reads, hangs up and answers that call. Tools that chain requests
(schemathesis' stateful mode) follow them; a reader learns the flow of CONTRACT §3 and §6.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lwork import __version__
from lwork.http.routing import Route, RouteTable

M = "/lwork/mobile/"

FAILED: dict[str, Any] = {
    "type": "object",
    "required": ["status", "reason"],
    "properties": {"status": {"const": "failed"}, "reason": {"type": "string"}},
}
"""Every refusal (CONTRACT §1): ``{"status":"failed","reason":...}``, perhaps with more fields
(``field`` of ``invalid_params``, ``other``...)."""

QUERY: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", M + "voip/calls"): ("session_id",),
    ("DELETE", M + "voip/calls"): ("session_id",),
    ("GET", M + "callback"): ("session_id",),
    ("DELETE", M + "callback"): ("session_id",),
}
"""Query parameters (the rest of the API takes JSON bodies)."""

_LOGIN_AS = {"device_id": "$request.body#/device_id", "token": "$response.body#/token"}
_CALL = "$response.body#/session_id"

LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, Any]]]] = {
    ("POST", M + "register"): {
        "Login": ("POST", M + "login", {"requestBody": {
            "acc": "$request.body#/uuid", "pwd": "$request.body#/pwd",
            "device_id": "$request.body#/device_id"}}),
    },
    ("POST", M + "login"): {
        "GetCoin": ("POST", M + "get_coin", {"requestBody": {
            "uuid": "$response.body#/uuid", **_LOGIN_AS}}),
        "Poll": ("POST", "/channel/push_service", {"requestBody": {
            "acc": "$response.body#/uuid", **_LOGIN_AS}}),
        "StartCall": ("POST", M + "voip/calls", {"requestBody": {
            "user_id": "$response.body#/uuid", "dev_id": "$request.body#/device_id",
            "token": "$response.body#/token"}}),
        "Callback": ("POST", M + "callback", {"requestBody": {
            "uuid": "$response.body#/uuid", "token": "$response.body#/token"}}),
        "AddInfo": ("POST", M + "add_info", {"requestBody": {
            "uuid": "$response.body#/uuid", **_LOGIN_AS}}),
        "PushRegister": ("POST", M + "baidu_push_register", {"requestBody": {
            "account": "$response.body#/uuid", **_LOGIN_AS}}),
        "ModifyPwd": ("POST", M + "modify_pwd", {"requestBody": {
            "uuid": "$response.body#/uuid", "old_pwd": "$request.body#/pwd", **_LOGIN_AS}}),
        "Logout": ("POST", M + "logout", {"requestBody": {
            "uuid": "$response.body#/uuid", "device_id": "$request.body#/device_id"}}),
    },
    ("POST", M + "voip/calls"): {
        "Status": ("GET", M + "voip/calls", {"parameters": {"query.session_id": _CALL}}),
        "HangUp": ("DELETE", M + "voip/calls", {"parameters": {"query.session_id": _CALL}}),
        "Dtmf": ("POST", M + "voip/dtmf", {"requestBody": {"session_id": _CALL}}),
        "Ringing": ("POST", M + "p2p_ringing", {"requestBody": {"opdata": {"session_id": _CALL}}}),
        "Answer": ("POST", M + "p2p_answer", {"requestBody": {"opdata": {"session_id": _CALL}}}),
        "Reject": ("POST", M + "p2p_reject", {"requestBody": {"opdata": {"session_id": _CALL}}}),
        "PeerPoll": ("POST", M + "p2p_poll", {"requestBody": {"opdata": {"session_id": _CALL}}}),
    },
    ("POST", M + "p2p_answer"): {
        # the answering app's own session id (CONTRACT §6.2)
        "Status": ("GET", M + "voip/calls", {"parameters": {"query.session_id": _CALL}}),
        "HangUp": ("DELETE", M + "voip/calls", {"parameters": {"query.session_id": _CALL}}),
    },
    ("POST", M + "callback"): {
        "Status": ("GET", M + "callback", {"parameters": {"query.session_id": _CALL}}),
        "HangUp": ("DELETE", M + "callback", {"parameters": {"query.session_id": _CALL}}),
    },
}  # fmt: skip
"""Per source operation: link name → (method, path, what the link fills in)."""


def operation_id(method: str, path: str) -> str:
    """``POST /lwork/mobile/voip/calls`` → ``post_lwork_mobile_voip_calls``."""
    words = [method.lower(), *(part for part in path.replace(".", "_").split("/") if part)]
    return "_".join(words)


def openapi_document(table: RouteTable) -> dict[str, Any]:
    structs: list[Any] = []
    for route in table.routes:
        for struct in (route.body, route.response):
            if struct is not None and struct not in structs:
                structs.append(struct)
    schemas, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    components["Failed"] = FAILED
    failed = {"$ref": "#/components/schemas/Failed"}
    refs = dict(zip(structs, schemas, strict=True))
    served = {(route.method, route.path) for route in table.routes}
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        operation: dict[str, Any] = {
            "operationId": operation_id(route.method, route.path),
            "summary": route.summary or route.path,
        }
        query = QUERY.get((route.method, route.path), ())
        if query:
            operation["parameters"] = [
                {"name": name, "in": "query", "required": True,
                 "schema": {"type": "string", "maxLength": 256}}
                for name in query
            ]  # fmt: skip
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
        operation["responses"] = {
            "200": _ok(route, refs, failed, served),
            "400": _refusal("invalid_params (with field)", failed),
            "429": _refusal("too_many_requests (Retry-After)", failed),
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "lwork mobile API", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }


def _ok(
    route: Route, refs: dict[Any, Any], failed: dict[str, Any], served: set[tuple[str, str]]
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "ok, or {status: failed, reason}"}
    if route.response is not None:
        schema = {"anyOf": [refs[route.response], failed]}
        ok["content"] = {"application/json": {"schema": schema}}
    links = {
        name: {"operationId": operation_id(method, path), **fills}
        for name, (method, path, fills) in LINKS.get((route.method, route.path), {}).items()
        if (method, path) in served  # a node without callbacks has no callback routes
    }
    if links:
        ok["links"] = links
    return ok


def _refusal(description: str, failed: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": failed}}}
