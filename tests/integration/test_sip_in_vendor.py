"""A phone calls an app that sleeps: the app holds no long poll, and only its phone maker's push
channel reaches it. sipp plays the carrier; the invitation rings the app through the Huawei Push
Kit HTTPS fake, and the app, woken, answers the call with the ``opdata`` the push carried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from test_p2p_calls import BOB, make_app
from test_sip_trunk import free_udp_port
from test_trunk_calls import finished, sipp, trunk_settings

from fakes.push_huawei import HuaweiPushFake
from fakes.rtp_peer import eventually
from fakes.tls import lwork_ca

DEVICE = "bob-phone"


async def test_a_phone_call_rings_an_app_asleep_behind_its_vendor_channel(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    async with HuaweiPushFake().running() as huawei:
        settings = trunk_settings(free_udp_port())
        settings["push"] = {**settings["push"], "huawei": huawei.settings()}  # type: ignore[attr-defined]
        async with server_factory(**settings, outbound_ca_file=lwork_ca().ca_file) as server:
            bob = await make_app(server, BOB, DEVICE)
            async with server.polling(BOB, DEVICE):  # registered while polling, as apps do
                body = {"caller": BOB, "account": BOB, "user_id": "u",
                        "channel_id": "device-token-1", "provider": "huawei"}  # fmt: skip
                r = await server.post("/lwork/mobile/baidu_push_register", body)
                assert r.json() == {"status": "ok"}
            assert server.services.polls.held == 0  # asleep: no poll to carry the call
            assert server.services.sip_address is not None
            target = "{}:{}".format(*server.services.sip_address)
            carrier = await sipp(tmp_path, "uac_call_app.xml", "-s", BOB, target)
            try:
                async with asyncio.timeout(10):
                    while not huawei.delivered:
                        await asyncio.sleep(0.02)
                [woke] = huawei.delivered
                assert woke.call_priority  # urgency HIGH, category VOIP
                invite = woke.event["payload"]
                assert invite["event"] == "p2p_inform_called"
                opdata = invite["opdata"]
                assert opdata["event"] == "sip_call_in" and opdata["callee"].endswith(BOB)
                # The woken app acts on what the push carried: it rings (180 to the carrier)
                # and answers (200 with the relay's SDP); sipp ACKs and later hangs up.
                assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
                answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
                assert await bob.post("p2p_answer", answer) == {**opdata, "status": "ok"}
                await finished(carrier)
                assert await eventually(lambda: server.services.calls.active == 0, 10)
                assert (await bob.status(opdata["session_id"]))["peer_status"] == "release"
            finally:
                bob.rtp.close()
                if carrier.returncode is None:
                    carrier.kill()
