"""Callbacks in the call engine, against a real (in-process) relay and a recording SIP trunk
boundary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import pytest

from lwork.calls import callback
from lwork.calls.boundary import PhoneLeg, PhoneLegReports, TrunkUnavailable
from lwork.calls.bridge import LegState as LegStatus
from lwork.calls.bridge import Timing
from lwork.calls.charging import CallCharging
from lwork.calls.engine import CallEngine, CallPolicy
from lwork.errors import Failed
from lwork.media.ng.client import NgClient
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp, parse_sdp
from lwork.push.service import PushService

from fakes.rtp_peer import eventually

OWNER, LOCAL, REMOTE = "13800000001", "02079460001", "02079460002"
RELEASED = (LegStatus.RELEASE, LegStatus.RELEASE)


@dataclass
class DialledLeg:
    """What the trunk was asked to call, and the listener it reports to."""

    number: str
    caller_id: str
    sdp: str
    listener: PhoneLegReports
    hung_up: int = 0

    @property
    def remote_sdp(self) -> str | None:
        return None

    def hangup(self) -> None:
        self.hung_up += 1

    def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        raise AssertionError("no DTMF in callbacks")

    def persisted_dialog(self) -> str | None:
        return None


@dataclass
class RecordingTrunk:
    """The SIP trunk boundary: records every dial; the test plays the carrier's answers."""

    legs: list[DialledLeg] = field(default_factory=list)
    refuse: bool = False

    async def dial(
        self, number: str, caller_id: str, sdp: str, listener: PhoneLegReports
    ) -> PhoneLeg:
        if self.refuse:
            raise TrunkUnavailable("no SIP trunk is configured")
        leg = DialledLeg(number, caller_id, sdp, listener)
        self.legs.append(leg)
        return leg


@pytest.fixture
async def relay() -> AsyncIterator[NgClient]:
    config = RelayConfig(ng_port=0, port_min=46000, port_max=46200, use_uvloop=False)
    async with RelayServer(config) as server, NgClient(*server.ng_address[:2]) as ng:
        yield ng


class Callbacks:
    """The callback operations of an engine whose ticker runs (it ends a callback at max_s)."""

    def __init__(self, media: NgClient, trunk: RecordingTrunk, max_s: float) -> None:
        policy = CallPolicy(Timing(), Timing(), Timing(max_s=max_s), payload_mode="0")
        charging = CallCharging(None, None, node="n1", owner="n1/test", wall=time.time)
        self.engine = CallEngine(
            node="n1",
            media=media,
            push=cast(PushService, None),
            trunk=trunk,
            reachable=None,
            owner=None,
            policy=policy,
            monotonic=time.monotonic,
            wall=time.time,
            charging=charging,
        )  # fmt: skip  (callbacks invite no app and warn nobody: no push, no lookups)

    @property
    def active(self) -> int:
        return self.engine.active

    async def start(self, owner: str, local: str, remote: str, caller_id: str) -> str:
        if self.engine._ticker is None:
            await self.engine.start_ticker()
        return await callback.start(self.engine, owner, local, remote, caller_id)

    def status(self, sid: str) -> tuple[LegStatus, LegStatus]:
        return callback.status(self.engine, sid)

    async def hangup(self, sid: str) -> None:
        await callback.hangup(self.engine, sid)

    async def close(self) -> None:
        await self.engine.close()


Make = Callable[..., Callbacks]


@pytest.fixture
def make(relay: NgClient) -> Make:
    def build(trunk: RecordingTrunk, max_s: float = 3600.0) -> Callbacks:
        return Callbacks(relay, trunk, max_s)

    return build


async def test_both_legs_answer_and_the_relay_is_told_each_address(
    make: Make, relay: NgClient
) -> None:
    trunk = RecordingTrunk()
    service = make(trunk)
    sid = await service.start(OWNER, LOCAL, REMOTE, "caller-did")
    assert await eventually(lambda: len(trunk.legs) == 1)
    (local,) = trunk.legs
    assert (local.number, local.caller_id) == (LOCAL, "caller-did")
    local.listener.ringing(None)
    assert await eventually(lambda: service.status(sid) == (LegStatus.RING, LegStatus.IDLE))

    local.listener.answered(build_sdp("127.0.0.1", 20000, payload_type=8, encoding="PCMA/8000"))
    assert await eventually(lambda: len(trunk.legs) == 2)
    remote = trunk.legs[1]
    assert (remote.number, remote.caller_id) == (REMOTE, "caller-did")
    local_relay = await relay.relay_address(sid, "local")
    assert parse_sdp(local.sdp).port == local_relay[1]  # local was invited to its own port
    offered = parse_sdp(remote.sdp)  # local's choice of codec, at the relay's port for remote
    remote_relay = await relay.relay_address(sid, "remote")
    assert (offered.port, offered.payload_types[0]) == (remote_relay[1], 8)
    assert service.status(sid) == (LegStatus.HOOKOFF, LegStatus.IDLE)

    remote.listener.answered(build_sdp("127.0.0.1", 20100, payload_type=8, encoding="PCMA/8000"))
    assert await eventually(lambda: service.status(sid) == (LegStatus.HOOKOFF,) * 2)
    stats = await relay.query(sid)
    assert set(stats.legs) == {"local", "remote"}

    remote.listener.ended("bye")  # the destination hangs up: the user's phone gets a BYE
    assert await eventually(lambda: local.hung_up == 1)
    assert service.status(sid) == RELEASED and service.active == 0
    assert sid not in await relay.list()
    await service.close()


async def test_a_busy_local_phone_never_calls_remote(make: Make, relay: NgClient) -> None:
    trunk = RecordingTrunk()
    service = make(trunk)
    sid = await service.start(OWNER, LOCAL, REMOTE, OWNER)
    assert await eventually(lambda: len(trunk.legs) == 1)
    trunk.legs[0].listener.failed(486, "Busy Here")
    assert await eventually(lambda: service.status(sid) == RELEASED)
    assert [leg.number for leg in trunk.legs] == [LOCAL]
    assert sid not in await relay.list()
    # a late 200 (a race with the carrier) is ignored
    trunk.legs[0].listener.answered(build_sdp("127.0.0.1", 20000))
    await service.close()
    assert [leg.number for leg in trunk.legs] == [LOCAL]


async def test_hangup_before_local_answers_cancels_it(make: Make) -> None:
    trunk = RecordingTrunk()
    service = make(trunk)
    sid = await service.start(OWNER, LOCAL, REMOTE, OWNER)
    assert await eventually(lambda: len(trunk.legs) == 1)
    with pytest.raises(Failed) as refused:
        await service.start(OWNER, LOCAL, "02079460003", OWNER)
    assert refused.value.reason == "session_already_exist"
    await service.hangup(sid)
    await service.hangup(sid)  # idempotent
    assert trunk.legs[0].hung_up == 1 and service.status(sid) == RELEASED
    trunk.legs[0].listener.answered(build_sdp("127.0.0.1", 20000))
    again = await service.start(OWNER, LOCAL, REMOTE, OWNER)
    assert await eventually(lambda: len(trunk.legs) == 2)
    assert again != sid and [leg.number for leg in trunk.legs] == [LOCAL, LOCAL]
    await service.close()
    assert trunk.legs[1].hung_up == 1  # shutdown hangs up what still runs


async def test_a_callback_ends_after_its_longest_life(make: Make) -> None:
    trunk = RecordingTrunk()
    service = make(trunk, max_s=0.6)
    sid = await service.start(OWNER, LOCAL, REMOTE, OWNER)
    assert await eventually(lambda: len(trunk.legs) == 1)
    trunk.legs[0].listener.answered(build_sdp("127.0.0.1", 20000))
    assert await eventually(lambda: len(trunk.legs) == 2)
    assert await eventually(lambda: service.status(sid) == RELEASED)
    assert [leg.hung_up for leg in trunk.legs] == [1, 1]
    await service.close()


async def test_no_trunk_releases_at_once(make: Make, relay: NgClient) -> None:
    service = make(RecordingTrunk(refuse=True))
    sid = await service.start(OWNER, LOCAL, REMOTE, OWNER)
    assert await eventually(lambda: service.status(sid) == RELEASED)
    assert sid not in await relay.list()
    await service.start(OWNER, LOCAL, REMOTE, OWNER)  # the user's slot was freed
    await service.close()


async def test_no_relay_is_no_media_port() -> None:
    async with NgClient("127.0.0.1", 9, timeout_s=0.05, retries=1) as dead:
        trunk = RecordingTrunk()
        service = Callbacks(dead, trunk, max_s=60)
        for _ in range(2):  # the failed start does not hold the user's slot
            with pytest.raises(Failed) as refused:
                await service.start(OWNER, LOCAL, REMOTE, OWNER)
            assert refused.value.reason == "no_media_port"
        assert trunk.legs == [] and service.active == 0
        await asyncio.sleep(0)


def test_the_placeholder_offer_names_no_address_and_the_discard_port() -> None:
    media = parse_sdp(callback.placeholder_offer())
    assert (media.ip, media.port) == ("0.0.0.0", 9)
    assert media.payload_types[:2] == (8, 0)  # G.711 first: both parties are phones
