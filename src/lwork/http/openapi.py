"""``/openapi.json``, generated from the route table's msgspec structs."""

from __future__ import annotations

from typing import Any

import msgspec

from lwork import __version__
from lwork.http.routing import RouteTable


def openapi_document(table: RouteTable) -> dict[str, Any]:
    structs: list[Any] = []
    for route in table.routes:
        for struct in (route.body, route.response):
            if struct is not None and struct not in structs:
                structs.append(struct)
    schemas, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(structs, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        operation: dict[str, Any] = {"summary": route.summary or route.path}
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
        ok: dict[str, Any] = {"description": "ok, or {status: failed, reason}"}
        if route.response is not None:
            ok["content"] = {"application/json": {"schema": refs[route.response]}}
        operation["responses"] = {
            "200": ok,
            "400": {"description": "invalid_params (with field)"},
            "429": {"description": "too_many_requests (Retry-After)"},
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "lwork mobile API", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
