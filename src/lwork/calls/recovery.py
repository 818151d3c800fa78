"""Keeping call records alive, and closing those a dead node left open (CONTRACT §9).

Every ``calls.cdr_heartbeat_s`` this node refreshes the heartbeat of all its open records and
reservations in one write, then sweeps: open records nobody heart-beats (another node's beyond
``calls.cdr_lease_s``, or this node's from before a crash) are closed at their last heartbeat,
charged, and their persisted SIP dialogs ended with BYE through this node's trunk. The sweep
also runs once at start-up, before the first heartbeat. Closing is an atomic claim
(``records_store.py``): with several nodes sweeping, each orphan is closed, charged and sent
its BYE by exactly one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from lwork.calls.charging import CallCharging
from lwork.calls.records_store import RecordStore
from lwork.sip.dialog_snapshot import DialogSnapshot

log = logging.getLogger("lwork.calls.records")

EndDialog = Callable[[DialogSnapshot], None]


class RecordKeeper:
    def __init__(
        self,
        store: RecordStore,
        charging: CallCharging,
        *,
        heartbeat_s: float,
        lease_s: float,
        wall: Callable[[], float],
    ) -> None:
        self._store = store
        self._charging = charging
        self._heartbeat_s = heartbeat_s
        self._lease_s = lease_s
        self._wall = wall
        self.end_dialog: EndDialog | None = None
        """Sends BYE for a persisted dialog (the trunk, once started); None: no trunk."""
        self.recovered = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Close what an earlier life of this node (or a dead node) left open, then keep ours
        alive."""
        try:
            await self.sweep()
        except Exception:  # the database is down: the periodic sweep tries again
            log.exception("call records: the start-up sweep failed")
        self._task = asyncio.create_task(self._run(), name="call-records")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sweep(self) -> int:
        """Close the orphaned records; how many this node closed."""
        charging = self._charging
        orphans = await self._store.orphans(
            charging.owner, charging.node, self._lease_s, self._wall()
        )
        closed = 0
        for record in orphans:
            if not await charging.close_record(record, release=None):
                continue  # another node closed it first: it sends the BYE
            closed += 1
            log.warning("record %s of %s (node %s) closed after its node was lost, at %s",
                        record.id, record.account, record.node, record.ended_at)  # fmt: skip
            if record.dialog is not None:
                self._bye(record.id, record.dialog)
        self.recovered += closed
        return closed

    def _bye(self, record_id: str, dialog: str) -> None:
        if self.end_dialog is None:
            log.warning("record %s: no SIP trunk to end its dialog", record_id)
            return
        try:
            self.end_dialog(DialogSnapshot.from_json(dialog))
        except Exception:  # a bad snapshot or a closed trunk must not stop the sweep
            log.exception("record %s: BYE for its dialog not sent", record_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._store.heartbeat(self._charging.owner, self._wall())
                await self.sweep()
            except Exception:  # the database is down: try again at the next beat
                log.exception("call records heartbeat failed")
