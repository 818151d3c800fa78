"""Callback calls (CONTRACT §6.3): the server rings the user's own phone, then the destination,
and bridges both in one relay session. A callback is the bridge's ``callback`` shape: ``local``
dialled at once, ``remote`` once local answered (``bridge.py``).

Media. A callback is one relay session with two tags: ``remote`` (the ng "caller") and
``local`` (the ng "callee"). rtpengine semantics: the SDP an ``offer`` returns is for the
*other* party, and so is an ``answer``'s. So

1. ``offer(sid, "remote", placeholder)`` returns the SDP we INVITE ``local`` with;
2. local's 200 SDP goes in ``answer(sid, "remote", "local", sdp)``, which returns the SDP we
   INVITE ``remote`` with (local's chosen codec, the relay's address);
3. remote's 200 SDP goes in a repeated ``offer(sid, "remote", sdp)``: a new offer from a known
   from-tag replaces that party's address (a re-INVITE for lwork's relay and rtpengine alike),
   so the relay sends local's voice to remote at once, and takes remote's media from that
   address only (strict source: until then, remote's leg accepts no media at all).

Nobody needs to keep a callback alive: the user may not even have the app open. It lasts
``calls.callback_max_s`` at most, less when the user's balance pays both legs for less; both
legs are charged, each from its own answer, as two records.
"""

from __future__ import annotations

import contextlib
import logging

from lwork.calls.bridge import LOCAL, REMOTE, LegState, Shape
from lwork.calls.engine import CallEngine
from lwork.calls.live import LiveCall
from lwork.calls.media_handover import signal
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError
from lwork.sip.offer_answer import PayloadFormat, build_offer
from lwork.sip.sdp import Origin

log = logging.getLogger("lwork.calls.callback")

# Both parties are phones and the relay forwards packets as they are: local may pick any codec
# a carrier speaks, and remote is then offered exactly local's choice.
PLACEHOLDER_FORMATS = (
    PayloadFormat(8, "PCMA"),
    PayloadFormat(0, "PCMU"),
    PayloadFormat(102, "AMR", 8000, "octet-align=0"),
    PayloadFormat(101, "telephone-event", 8000, "0-15"),
)


def placeholder_offer() -> str:
    """Remote's stand-in SDP before it is called: discard port, no address yet."""
    offer = build_offer(
        PLACEHOLDER_FORMATS, address="0.0.0.0", port=9, origin=Origin("lwork", "1", "1", "0.0.0.0")
    )
    return bytes(offer).decode()


async def start(engine: CallEngine, owner: str, local: str, remote: str, caller_id: str) -> str:
    """Ring ``local`` now, ``remote`` once local answers; the callback's session id."""
    if owner in engine.callbacks:
        raise Failed("session_already_exist")
    if engine.fraud is not None:  # both legs' destinations, the daily cap, velocity
        await engine.fraud.check_callback(owner, local, remote)
    sid = new_call_session_id(engine.node)
    numbers = {LOCAL: local, REMOTE: remote}
    live = LiveCall(sid, engine.new_bridge(Shape.CALLBACK), owner, numbers, caller_id=caller_id)
    await engine.charging.hold(live)  # one reservation for both legs: one paid call
    if owner in engine.callbacks:  # started meanwhile
        await engine.charging.release(sid)
        raise Failed("session_already_exist")
    engine.callbacks[owner] = sid  # claimed before the next await: concurrent starts lose
    try:
        offer = await signal(engine.media, live, REMOTE, placeholder_offer())
    except NgError as exc:
        log.warning("relay refused callback %s: %s", sid, exc)
        del engine.callbacks[owner]
        with contextlib.suppress(NgError):
            await engine.media.delete(sid)
        await engine.charging.release(sid)
        raise Failed("no_media_port") from exc
    live.sdp_for[LOCAL] = offer.sdp
    log.info("callback %s for %s: %s then %s", sid, owner, local, remote)
    await engine.launch(live)
    return sid


def found(engine: CallEngine, sid: str) -> LiveCall | None:
    live = engine.calls.get(sid)
    return live if live is not None and live.shape is Shape.CALLBACK else None


def status(engine: CallEngine, sid: str) -> tuple[LegState, LegState]:
    """(local, remote); an unknown or finished callback is released on both sides."""
    live = found(engine, sid)
    if live is None:
        return LegState.RELEASE, LegState.RELEASE
    return live.bridge.leg_state(LOCAL), live.bridge.leg_state(REMOTE)


async def hangup(engine: CallEngine, sid: str) -> None:
    live = found(engine, sid)
    if live is not None:
        await engine.end(live, "hangup")
