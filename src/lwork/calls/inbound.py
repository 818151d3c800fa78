"""Calls from phones to apps, through the SIP trunk (CONTRACT §6.2 item 4).

The trunk hands over an INVITE; the app that owns the dialled number (its uuid or a bound DID)
is sent ``p2p_inform_called`` with ``opdata.event = "sip_call_in"``, and its ringing, answer and
reject become 180, 200 and 486. An app that cannot be reached gets the call refused with 480,
an unknown number with 404.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from lwork.accounts.phone import normalise_phone
from lwork.calls.active import Active
from lwork.calls.carrier_sdp import answer_for_carrier
from lwork.calls.model import Call, CalleeAnswered
from lwork.calls.sip_leg import CallLegListener
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError
from lwork.sip.trunk.inbound import InboundCall

if TYPE_CHECKING:
    from lwork.calls.service import CallService

log = logging.getLogger("lwork.calls")


async def accept_invite(service: CallService, inbound: InboundCall) -> None:
    """A phone calls a number of ours: ring the app that owns it (CONTRACT §6.2 item 4)."""
    candidates = local_forms(inbound.callee, service.policy.country_code)
    uuid = owner = None
    for number in candidates:
        owner = owner or await service.owner(number)
        uuid = await service.reachable(number)
        if uuid is not None:
            break
    if uuid is None:
        log.info("inbound call to %s (%s): %s", inbound.callee, "/".join(candidates),
                 "app not reachable" if owner else "no such number")  # fmt: skip
        inbound.reject(480 if owner else 404)
        return
    sid = new_call_session_id(service.node)
    try:
        offer = await service.media.offer(sid, "sip", inbound.remote_sdp)
    except NgError as exc:
        log.warning("relay refused inbound call %s: %s", sid, exc)
        inbound.reject(503)
        return
    call = Call(
        sid=sid, caller=inbound.caller, callee_phone=candidates[0], callee_uuid=uuid,
        p2p=True, created_at=service.now(), timing=service.policy.inbound_timing, inbound=True,
    )  # fmt: skip
    active = Active(call, relay_ip=offer.media.ip, callee_port=offer.media.port)
    active.inbound = inbound
    active.opdata = {
        "event": "sip_call_in", "caller": inbound.caller, "callee": candidates[0],
        "session_id": sid, "ip": offer.media.ip, "port": offer.media.port,
        "codec_name": service.policy.codec_name, "payload_mode": service.policy.payload_mode,
        "rssrc": active.rssrc,
    }  # fmt: skip
    service.calls[sid] = active
    inbound.attach(CallLegListener(service, active))
    invite = {"event": "p2p_inform_called", "caller": inbound.caller, "opdata": active.opdata}
    if await service.push.notify(uuid, invite, call_id=sid) is None:
        await service.end(active, "callee_unreachable")
        return
    log.info("inbound call %s from %s to %s", sid, inbound.caller, uuid)


async def answer_inbound(
    service: CallService, active: Active, inbound: InboundCall, sdp: str
) -> dict[str, Any]:
    """The app answers a phone's call: the relay's SDP goes to the carrier in a 200."""
    try:
        answer = await service.media.answer(active.call.sid, "sip", "callee", sdp)
        carrier_sdp = answer_for_carrier(
            inbound.remote_sdp, answer.media.ip, answer.media.port, secrets.randbits(31)
        )
    except NgError as exc:
        raise Failed("no_media_port") from exc
    except ValueError:
        carrier_sdp = answer.sdp  # no AMR offered: the relay's own rewrite is the best left
    inbound.answer(carrier_sdp)
    service.apply(active, CalleeAnswered())
    await service.charging.answered(active, service.now())  # opens the record, with the dialog
    service.spawn(service.push.cancel_call(active.call.sid))
    return {"status": "ok", **active.opdata}  # status first, as every answer


def local_forms(number: str, country_code: str) -> list[str]:
    """The ways an app's number may be written, for a number as the trunk gives it (E.164)."""
    digits = normalise_phone(number)
    forms = [digits, normalise_phone("00" + digits)]  # +86 138… is 138… (CONTRACT §3)
    if country_code and digits.startswith(country_code) and len(digits) > len(country_code):
        national = digits[len(country_code) :]
        forms += [national, "0" + national]
    return list(dict.fromkeys(form for form in forms if form))
