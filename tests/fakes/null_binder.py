"""A relay `CallTable`'s port binder without sockets: the boundary, not our logic."""

from __future__ import annotations

from lwork.media.relay.calls import Call
from lwork.media.relay.session import Leg
from lwork.media.relay.transcode_plan import Plan


class NullBinder:
    def open_pair(self, port: int) -> None:
        pass

    def attach(self, leg: Leg) -> None:
        pass

    def close_pair(self, port: int) -> None:
        pass

    def transcode(self, call: Call, plan: Plan) -> bool:
        return False

    def untranscode(self, call: Call) -> None:
        pass
