"""Call requests routed to the node holding the call, over a real (in-process) bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lwork.calls.router import CallRouter
from lwork.errors import Failed
from lwork.push.bus import CallReply, CallRequest, InProcessBus

SID_N2 = "n2@@" + "ab" * 16


def nodes(timeout_s: float = 0.2) -> tuple[InProcessBus, CallRouter, CallRouter]:
    bus = InProcessBus()
    one, two = CallRouter("n1", bus, timeout_s), CallRouter("n2", bus, timeout_s)

    async def refuse(sid: str, args: dict[str, Any]) -> dict[str, Any]:
        raise Failed("session_not_exist", detail="x")

    async def crash(sid: str, args: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug")

    for name, router in (("n1", one), ("n2", two)):

        async def here(sid: str, args: dict[str, Any], name: str = name) -> dict[str, Any]:
            return {"served_by": name}

        router.register("here", here)
        router.register("refuse", refuse)
        router.register("crash", crash)
    return bus, one, two


async def test_a_request_runs_on_the_node_named_by_the_session_id() -> None:
    _, one, two = nodes()
    assert await one.run(SID_N2, "here") == {"served_by": "n2"}
    assert await two.run(SID_N2, "here") == {"served_by": "n2"}
    assert await two.run("n1@@" + "0" * 32, "here") == {"served_by": "n1"}
    assert (one.forwarded, two.forwarded) == (1, 1)


async def test_refusals_travel_back_and_crashes_become_service_not_available() -> None:
    _, one, _ = nodes()
    with pytest.raises(Failed) as refused:
        await one.run(SID_N2, "refuse")
    assert (refused.value.reason, refused.value.extra) == ("session_not_exist", {"detail": "x"})
    with pytest.raises(Failed) as crashed:
        await one.run(SID_N2, "crash")
    assert crashed.value.reason == "service_not_available"


async def test_a_node_that_does_not_answer_leaves_the_request_to_this_node() -> None:
    _, one, _ = nodes()
    sid = "n9@@" + "0" * 32
    assert await one.run(sid, "here") == {"served_by": "n1"}
    assert one.unanswered == 1


async def test_without_a_bus_every_call_is_local() -> None:
    alone = CallRouter("n1", None)

    async def here(sid: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"sid": sid}

    alone.register("here", here)
    assert await alone.run(SID_N2, "here") == {"sid": SID_N2}


async def test_stray_requests_and_replies_on_the_bus_are_ignored() -> None:
    bus, one, two = nodes()
    await bus.publish(CallRequest("n2", "r", "n1", "nope", SID_N2, {}))  # no such operation
    await bus.publish(CallReply("n1", "unknown", reply={}))  # nobody asked
    assert await one.run(SID_N2, "here") == {"served_by": "n2"}  # still serving
    await one.close()
    await two.close()


async def test_only_the_node_a_request_names_serves_it() -> None:
    bus, one, two = nodes()
    replies: list[CallReply] = []
    bus.subscribe(lambda m: replies.append(m) if isinstance(m, CallReply) else None)
    await bus.publish(CallRequest("n3", "r3", "n1", "here", "n3@@" + "cd" * 16, {}))
    await bus.publish(CallRequest("n2", "r2", "n1", "here", SID_N2, {}))
    for _ in range(5):  # let the served request's task run
        await asyncio.sleep(0)
    assert replies == [CallReply("n1", "r2", reply={"served_by": "n2"})]
    await one.close()
    await two.close()
