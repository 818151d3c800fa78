"""Deactivating a BOSS number from the console's account page ends its live call at once with
``not_actived``, as the BOSS's own deactivation does: a real p2p call between two simulated
apps (real HTTP, AMR over real UDP through the built-in relay)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from test_admin_live_calls import ALICE, LIVE, live_call

from lwork.sim.phone import SimError
from lwork.storage.tables import cdrs

from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]


async def test_deactivating_a_number_ends_its_live_call(server_factory: Factory) -> None:
    async with server_factory(**LIVE) as server, browser(server.url) as admin:
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        assert (await sign_in(admin, "root")).status_code == 303
        async with live_call(server) as call:
            await server.services.provisioning.open(ALICE, "boss-pw-123", "dth", time.time())
            assert (await call.caller.status(call.sid))["peer_status"] == "p2p_hookoff"
            page = await admin.get("/admin/accounts", params={"account": ALICE})
            r = await admin.post(
                "/admin/accounts/deactivate", data={"csrf": csrf_of(page), "account": ALICE}
            )
            assert r.status_code == 303 and r.headers["location"].endswith("done=deactivate")
            assert call.sid not in server.services.calls.calls  # at once, not by the sweep
            assert (await call.caller.status(call.sid))["peer_status"] == "release"
            assert (await call.callee.status(call.callee_sid))["peer_status"] == "release"
            with pytest.raises(SimError, match="not_actived"):
                await call.caller.call("13900000002")  # and it cannot call again
        async with server.services.engine.connect() as conn:
            records = (await conn.execute(select(cdrs).where(cdrs.c.id.startswith(call.sid)))).all()
        assert records and {r.end_reason for r in records} == {"not_actived"}
