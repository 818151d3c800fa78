"""schemathesis over ``/openapi.json`` against a live server: every route, generated bodies
(valid and invalid). The answer
is never a server error: no 5xx and no ``service_not_available`` (lwork's catch-all for a bug).

The document declares no links, so schemathesis has no call sequences to build (its stateful
phase refuses to start without links); every operation is exercised on its own. Bounded to
stay around a minute in CI; raise ``LWORK_SCHEMATHESIS_EXAMPLES`` locally to dig.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import BaseSchema, GenerationMode

from lwork.app import build_app

from conftest import make_settings
from fakes.servers import serve_in_thread

EXAMPLES = int(os.environ.get("LWORK_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    config = make_settings(
        tmp, f"sqlite+aiosqlite:///{tmp / 's.db'}", "http://127.0.0.1:9/send",
        http={"ip_rate_per_minute": 1_000_000}, auth={"login_per_minute_per_ip": 1_000_000},
        push={"hold_s": 0.05},
    )  # fmt: skip
    app, _ = build_app(config)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> BaseSchema:
    return schemathesis.openapi.from_url(base_url + "/openapi.json")


def no_server_error(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.headers.get("content-type", [""])[0].startswith("application/json"):
        body = response.json()
        if isinstance(body, dict):
            assert body.get("reason") != "service_not_available", body


def operations(api_schema: BaseSchema) -> list[Any]:
    found = [result.ok() for result in api_schema.get_all_operations()]
    assert len(found) >= 20, [op.label for op in found]
    return found


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_route_answers_without_a_server_error(
    api_schema: BaseSchema, mode: GenerationMode
) -> None:
    """Schema-valid bodies, then bodies that break the schema (wrong types, missing fields)."""
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
            database=None,
        )  # fmt: skip
        def answers(case: schemathesis.Case) -> None:
            no_server_error(case.call(timeout=30))

        try:
            answers()
        except Unsatisfiable:
            # Negative mode on an operation without parameters or body: nothing to break.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            exc.add_note(f"operation: {operation.label}")
            raise
