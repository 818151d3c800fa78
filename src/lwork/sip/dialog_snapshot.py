"""A confirmed dialog written down (JSON), so that another process can end it with BYE.

A node that dies mid-call leaves the carrier billing an open SIP leg. At answer the call
service stores what RFC 3261 12.2.1.1 needs to build an in-dialog request (Call-ID, both tags,
both URIs, our CSeq, the remote target, the route set) and where the leg's requests went; a
node that later closes the call's record re-creates the dialog from it and sends BYE.
Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lwork.sip.dialog import Dialog, DialogState, SentBy
from lwork.sip.headers import NameAddr
from lwork.sip.transaction import Address
from lwork.sip.uri import SipUri

CSEQ_MARGIN = 1000
"""Our CSeq after a restore is this much above the persisted one: requests sent after the
snapshot (INFO digits, refreshes) used numbers we no longer know, and a BYE must exceed them
(RFC 3261 12.2.1.1; the carrier answers 500 to a lower one)."""


@dataclass(frozen=True, slots=True)
class DialogSnapshot:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    local_seq: int
    remote_target: str
    route_set: tuple[str, ...]
    peer_host: str
    peer_port: int

    @classmethod
    def of(cls, dialog: Dialog, peer: Address) -> DialogSnapshot:
        return cls(
            call_id=dialog.call_id,
            local_tag=dialog.local_tag,
            remote_tag=dialog.remote_tag,
            local_uri=str(dialog.local_uri),
            remote_uri=str(dialog.remote_uri),
            local_seq=dialog.local_seq,
            remote_target=str(dialog.remote_target),
            route_set=tuple(str(route) for route in dialog.route_set),
            peer_host=peer[0],
            peer_port=peer[1],
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "call_id": self.call_id,
                "local_tag": self.local_tag,
                "remote_tag": self.remote_tag,
                "local_uri": self.local_uri,
                "remote_uri": self.remote_uri,
                "local_seq": self.local_seq,
                "remote_target": self.remote_target,
                "route_set": list(self.route_set),
                "peer": [self.peer_host, self.peer_port],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> DialogSnapshot:
        """ValueError (or KeyError/TypeError, as ValueError) for anything but a snapshot."""
        try:
            data = json.loads(text)
            host, port = data["peer"]
            return cls(
                call_id=str(data["call_id"]),
                local_tag=str(data["local_tag"]),
                remote_tag=str(data["remote_tag"]),
                local_uri=str(data["local_uri"]),
                remote_uri=str(data["remote_uri"]),
                local_seq=int(data["local_seq"]),
                remote_target=str(data["remote_target"]),
                route_set=tuple(str(route) for route in data["route_set"]),
                peer_host=str(host),
                peer_port=int(port),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a dialog snapshot: {exc}") from exc

    @property
    def peer(self) -> Address:
        return (self.peer_host, self.peer_port)

    def restore(self, *, local_contact: NameAddr, sent_by: SentBy) -> Dialog:
        """The confirmed dialog, sending from this process's transport (``sent_by``)."""
        return Dialog(
            call_id=self.call_id,
            local_tag=self.local_tag,
            remote_tag=self.remote_tag,
            local_uri=NameAddr.parse(self.local_uri),
            remote_uri=NameAddr.parse(self.remote_uri),
            local_seq=self.local_seq + CSEQ_MARGIN,
            remote_seq=None,
            remote_target=SipUri.parse(self.remote_target),
            route_set=[NameAddr.parse(route) for route in self.route_set],
            local_contact=local_contact,
            sent_by=sent_by,
            state=DialogState.CONFIRMED,
        )
