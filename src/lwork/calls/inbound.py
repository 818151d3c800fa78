"""Calls from phones to apps, through the SIP trunk (CONTRACT §6.2 item 4).

The trunk hands over an INVITE; the app that owns the dialled number (its uuid or a bound DID)
is sent ``p2p_inform_called`` with ``opdata.event = "sip_call_in"``, and its ringing, answer and
reject become 180, 200 and 486 (``callee.py``). An app that cannot be reached gets the call
refused with 480, an unknown number with 404.
"""

from __future__ import annotations

import logging

from lwork.accounts.phone import normalise_phone
from lwork.calls.bridge import CALLEE, PHONE, Shape
from lwork.calls.engine import CallEngine
from lwork.calls.live import LiveCall
from lwork.calls.media_handover import signal
from lwork.calls.sip_legs import LegEvents
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError
from lwork.sip.trunk.inbound import InboundCall

log = logging.getLogger("lwork.calls")


async def accept_invite(engine: CallEngine, inbound: InboundCall) -> None:
    """A phone calls a number of ours: ring the app that owns it (the trunk's ``on_invite``)."""
    candidates = local_forms(inbound.callee, engine.policy.country_code)
    uuid = owner = None
    for number in candidates:
        owner = owner or await engine.owner(number)
        uuid = await engine.reachable(number)
        if uuid is not None:
            break
    if uuid is None:
        log.info("inbound call to %s (%s): %s", inbound.callee, "/".join(candidates),
                 "app not reachable" if owner else "no such number")  # fmt: skip
        inbound.reject(480 if owner else 404)
        return
    sid = new_call_session_id(engine.node)
    live = LiveCall(
        sid, engine.new_bridge(Shape.IN), uuid, {PHONE: inbound.caller, CALLEE: candidates[0]},
        callee_uuid=uuid, inbound=inbound,
    )  # fmt: skip
    try:
        offer = await signal(engine.media, live, PHONE, inbound.remote_sdp)
    except NgError as exc:
        log.warning("relay refused inbound call %s: %s", sid, exc)
        inbound.reject(503)
        return
    live.relay_ip, live.callee_port = offer.media.ip, offer.media.port
    opdata = {
        "event": "sip_call_in", "caller": inbound.caller, "callee": candidates[0],
        "session_id": sid, "ip": offer.media.ip, "port": offer.media.port,
        "codec_name": engine.policy.codec_name, "payload_mode": engine.policy.payload_mode,
        "rssrc": live.rssrc,
    }  # fmt: skip
    live.invitation = {"event": "p2p_inform_called", "caller": inbound.caller, "opdata": opdata}
    inbound.attach(LegEvents(engine, live, PHONE))
    await engine.launch(live)
    log.info("inbound call %s from %s to %s", sid, inbound.caller, uuid)


def local_forms(number: str, country_code: str) -> list[str]:
    """The ways an app's number may be written, for a number as the trunk gives it (E.164)."""
    digits = normalise_phone(number)
    forms = [digits, normalise_phone("00" + digits)]  # +86 138… is 138… (CONTRACT §3)
    if country_code and digits.startswith(country_code) and len(digits) > len(country_code):
        national = digits[len(country_code) :]
        forms += [national, "0" + national]
    return list(dict.fromkeys(form for form in forms if form))
