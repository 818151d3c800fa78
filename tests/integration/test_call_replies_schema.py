"""The call endpoints' real replies, through HTTP, against the OpenAPI document the server
publishes: the reply structs and the document must say the same thing."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from test_callback import LOCAL, REMOTE, allow_local, start
from test_p2p_calls import ALICE, BOB, FAST, make_app, two_apps

from conftest import LiveServer

MOBILE = "/lwork/mobile/"
CALLBACK = MOBILE + "callback"


def conforms(document: dict[str, Any], method: str, path: str, reply: Any) -> None:
    operation = document["paths"][path][method]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    # The document is the root, so that the schema's "#/components/..." references resolve.
    validator = jsonschema_rs.Draft202012Validator({**document, **schema})
    errors = [error.message for error in validator.iter_errors(reply)]
    assert not errors, f"{method.upper()} {path}: {errors} in {reply}"


async def test_an_app_calls_replies_match_the_document(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**FAST) as server, two_apps(server) as (alice, bob):
        document = (await server.get("/openapi.json")).json()
        started = await alice.call(BOB)
        conforms(document, "post", MOBILE + "voip/calls", started)
        sid = started["session_id"]
        opdata = (await bob.poll())["data"][0]["opdata"]
        conforms(
            document, "post", MOBILE + "p2p_poll", await bob.post("p2p_poll", {"opdata": opdata})
        )
        answer = await bob.post("p2p_answer", {"opdata": opdata, "sdp": {"port": bob.rtp.port}})
        conforms(document, "post", MOBILE + "p2p_answer", answer)
        for app, own_sid in ((alice, sid), (bob, answer["session_id"])):
            conforms(document, "get", MOBILE + "voip/calls", await app.status(own_sid))
        await alice.hangup(sid)
        released = await bob.post("p2p_poll", {"opdata": opdata})
        assert released["peer_status"] == "release"
        conforms(document, "post", MOBILE + "p2p_poll", released)


async def test_a_callbacks_replies_match_the_document(server: LiveServer) -> None:
    document = (await server.get("/openapi.json")).json()
    app = await make_app(server, ALICE, "alice-phone")
    app.rtp.close()
    await allow_local(server, ALICE)
    started = await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE})
    conforms(document, "post", CALLBACK, started)
    status = (await server.get(CALLBACK, params={"session_id": started["session_id"]})).json()
    conforms(document, "get", CALLBACK, status)
