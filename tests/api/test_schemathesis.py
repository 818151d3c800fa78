"""schemathesis over ``/openapi.json`` against a live server: every route, generated bodies
(valid and invalid), then request chains that follow the document's links (register → login →
the account's requests with its token and device → a started call's status, hang-up, answer...).
The answer is never a server error: no 5xx and no ``service_not_available`` (lwork's catch-all
for a bug); in the chains it also conforms to the document (status code, content type, schema).

Bounded to stay around a minute in CI; raise ``LWORK_SCHEMATHESIS_EXAMPLES`` and
``LWORK_SCHEMATHESIS_CHAINS`` locally to dig.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import initialize
from schemathesis import BaseSchema, GenerationMode
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lwork.app import build_app

from conftest import make_settings
from fakes.servers import serve_in_thread
from fakes.sms_gateway import SmsGateway

EXAMPLES = int(os.environ.get("LWORK_SCHEMATHESIS_EXAMPLES", "25"))
CHAINS = int(os.environ.get("LWORK_SCHEMATHESIS_CHAINS", "40"))
ACCOUNT, PWD = "13800138000", "e10adc3949ba59abbe56e057f20f883e"
"""An account the chains log in as: generated credentials never match one."""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    gateway = SmsGateway()
    with serve_in_thread(gateway.app()) as sms_url:
        config = make_settings(
            tmp, f"sqlite+aiosqlite:///{tmp / 's.db'}", sms_url + "/send",
            http={"ip_rate_per_minute": 1_000_000}, auth={"login_per_minute_per_ip": 1_000_000},
            push={"hold_s": 0.05},
        )  # fmt: skip
        app, _ = build_app(config)
        with serve_in_thread(app) as url:
            register(url, gateway)
            yield url


def register(url: str, gateway: SmsGateway) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/lwork/sms/auth_code", json={"uuid": ACCOUNT, "type": "register"})
        body = {"uuid": ACCOUNT, "device_id": "phone", "pwd": PWD, "group_id": "common",
                "auth_code": gateway.last_code(ACCOUNT)}  # fmt: skip
        assert client.post("/lwork/mobile/register", json=body).json() == {"status": "ok"}


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


def test_request_chains_along_the_links_answer_as_documented(api_schema: BaseSchema) -> None:
    """Stateful: every scenario logs in as the known account (generated credentials never
    match one), then schemathesis follows the links with the values the answers gave: the
    token and device act for the account, a started call's session id reads and ends it..."""
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    reached: set[str] = set()
    machine = api_schema.as_state_machine()
    login = api_schema["/lwork/mobile/login"]["POST"]

    class Chains(machine):  # type: ignore[misc,valid-type]
        @initialize(target=machine.bundles["POST /lwork/mobile/login -> 200"])
        def log_in(self) -> StepOutput:
            device = f"phone-{secrets.token_hex(4)}"
            case = login.Case(body={"acc": ACCOUNT, "pwd": PWD, "device_id": device})
            step = StepInput.initial(case)
            # recorded as schemathesis' own root steps are, so the links find their parent
            self.recorder.record_case(case=case)
            self.control.record_step(step, self.recorder)
            return self._step(step)  # type: ignore[no-any-return]

        def before_call(self, case: schemathesis.Case) -> None:
            # a changed password would leave the next scenarios' logins out (and hypothesis
            # sees scenarios that behave differently on replay): the change keeps it
            if case.operation.label == "POST /lwork/mobile/modify_pwd" and isinstance(
                case.body, dict
            ):
                case.body = {**case.body, "pwd": PWD}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            no_server_error(response)
            body = response.json() if response.content else None
            if isinstance(body, dict) and body.get("status") == "ok":
                reached.add(case.operation.label)
            case.validate_response(response, checks=checks)

    Chains.run(
        settings=settings(
            max_examples=CHAINS,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )  # fmt: skip
    )
    # the chains went past the login: its token and device acted for the account
    assert "POST /lwork/mobile/login" in reached, reached
    assert len(reached & {"POST /lwork/mobile/get_coin", "POST /lwork/mobile/voip/calls",
                          "POST /lwork/mobile/add_info", "POST /channel/push_service",
                          "POST /lwork/mobile/baidu_push_register"}) >= 2, reached  # fmt: skip


def test_the_links_resolve(api_schema: BaseSchema, base_url: str) -> None:
    """Every declared link names an existing operation, and schemathesis accepts them all (it
    refuses to build its state machine over a link to a missing operation or parameter)."""
    api_schema.as_state_machine()
    document = httpx.get(base_url + "/openapi.json").json()
    ops = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    links = [link for item in document["paths"].values() for op in item.values()
             for link in op["responses"]["200"].get("links", {}).values()]  # fmt: skip
    assert len(links) >= 15 and all(link["operationId"] in ops for link in links)
    calls = document["paths"]["/lwork/mobile/voip/calls"]
    assert set(calls["post"]["responses"]["200"]["links"]) >= {"Status", "HangUp", "PeerPoll"}
    [param] = calls["get"]["parameters"]
    assert (param["name"], param["in"], param["required"]) == ("session_id", "query", True)
