"""What the relay and its transcoding workers tell each other over their control socket.

Each message is one SOCK_SEQPACKET datagram of JSON; `add` carries the call's four sockets
(SCM_RIGHTS). Relay -> worker: `add` (a call and its legs), `update` (a leg re-signalled: its
address, strict source, its latch let go), `delete`. Worker -> relay: `stats`, the state of its
legs (counters, latches, RFC 3550 reception state, RTT, the remote view, the transcoder's
counters), which the relay copies onto its own `Leg`s, so `query`, the call's status and the
media timeout read a transcoded leg like a forwarded one.
"""

from __future__ import annotations

import json
from typing import Any, Final

from lwork.media.relay.session import Address, Counters, Leg
from lwork.media.relay.stats import RemoteView, StreamReceiver
from lwork.media.relay.transcode_plan import LegCodec, Plan

MAX_MESSAGE: Final = 1 << 16
"""Bytes of one control message at most; `stats` is split into messages below this."""
_RECEIVER_SLOTS: Final = (
    "ssrc", "clock_rate", "packets", "bytes", "base_seq", "max_seq", "cycles", "bad_seq",
    "received", "expected_prior", "received_prior", "jitter", "jitter_sum", "jitter_samples",
    "last_arrival", "last_timestamp", "last_interval_loss", "first_arrival",
)  # fmt: skip
"""StreamReceiver's state (its __slots__, which the compiled build does not expose)."""
_COUNTERS: Final = ("packets", "bytes", "errors", "last_packet")
_LEG_SCALARS: Final = (
    "relatches", "foreign_drops", "duplicates", "packed_datagrams", "flood_drops",
)  # fmt: skip


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("control message is not an object")
    return value


def _address(value: Any) -> Address | None:
    if value is None:
        return None
    host, port = value
    return (str(host), int(port))


def leg_signal(leg: Leg) -> dict[str, Any]:
    """What the signalling decided about a leg: the worker's copy starts from it."""
    return {
        "tag": leg.tag,
        "port": leg.rtp_port,
        "clock_rate": leg.clock_rate,
        "advertised": leg.advertised,
        "strict": leg.strict_source,
        "expected_host": leg.expected_host,
        "rtp_peer": leg.rtp_peer,
        "rtcp_peer": leg.rtcp_peer,
        "events": sorted(leg.telephone_event_pts),
    }


def apply_signal(leg: Leg, signal: dict[str, Any]) -> None:
    leg.advertised = _address(signal["advertised"])
    leg.strict_source = bool(signal["strict"])
    leg.expected_host = signal["expected_host"]
    leg.rtp_peer = _address(signal["rtp_peer"])
    leg.rtcp_peer = _address(signal["rtcp_peer"])
    leg.clock_rate = int(signal["clock_rate"])
    leg.telephone_event_pts = frozenset(int(pt) for pt in signal["events"])


def plan_to_json(plan: Plan) -> dict[str, Any]:
    def codec(value: LegCodec) -> list[Any]:
        return [value.encoding, value.payload_type, value.octet_aligned, value.event_pt]

    return {
        "app_port": plan.app_port,
        "carrier_port": plan.carrier_port,
        "app": codec(plan.app),
        "carrier": codec(plan.carrier),
    }


def plan_from_json(value: dict[str, Any]) -> Plan:
    def codec(item: list[Any]) -> LegCodec:
        encoding, pt, octet, event = item
        return LegCodec(str(encoding), int(pt), bool(octet), None if event is None else int(event))

    return Plan(
        int(value["app_port"]), int(value["carrier_port"]),
        codec(value["app"]), codec(value["carrier"]),
    )  # fmt: skip


def leg_state(leg: Leg) -> dict[str, Any]:
    """A leg's measured state, for the relay's copy of it."""
    remote = leg.remote_view
    return {
        "rtp": [getattr(leg.rtp, name) for name in _COUNTERS],
        "rtcp": [getattr(leg.rtcp, name) for name in _COUNTERS],
        "rtp_peer": leg.rtp_peer,
        "rtcp_peer": leg.rtcp_peer,
        "scalars": [getattr(leg, name) for name in _LEG_SCALARS],
        "receivers": [
            [getattr(receiver, name) for name in _RECEIVER_SLOTS]
            for receiver in leg.receivers.values()
        ],
        "rtt": [leg.rtt.last_ms, leg.rtt.sum_ms, leg.rtt.samples],
        "remote": None
        if remote is None
        else [remote.fraction_lost, remote.cumulative_lost, remote.jitter_ms],
    }


def apply_state(leg: Leg, state: dict[str, Any]) -> None:
    """Make the relay's `leg` read as the worker measured it."""
    leg.rtp = Counters(*state["rtp"])
    leg.rtcp = Counters(*state["rtcp"])
    leg.rtp_peer = _address(state["rtp_peer"])
    leg.rtcp_peer = _address(state["rtcp_peer"])
    for name, value in zip(_LEG_SCALARS, state["scalars"], strict=True):
        setattr(leg, name, int(value))
    receivers: dict[int, StreamReceiver] = {}
    for values in state["receivers"]:
        fields = dict(zip(_RECEIVER_SLOTS, values, strict=True))
        receiver = StreamReceiver(int(fields["ssrc"]), int(fields["clock_rate"]), 0, 0.0)
        for name, value in fields.items():
            setattr(receiver, name, value)
        receivers[receiver.ssrc] = receiver
    leg.receivers = receivers
    leg.rtt.last_ms, leg.rtt.sum_ms, leg.rtt.samples = state["rtt"]
    remote = state["remote"]
    leg.remote_view = None if remote is None else RemoteView(*remote)
