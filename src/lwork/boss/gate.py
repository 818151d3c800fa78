"""Who may call the BOSS interface (CONTRACT §9): an allowed source address, a known key, a
timestamp within the window, the right signature, and that signature never seen before."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from ipaddress import ip_address, ip_network

from lwork.boss.operations import Refusal
from lwork.boss.signing import verifies
from lwork.boss.store import BossStore


class BossGate:
    def __init__(
        self,
        keys: Mapping[str, Sequence[str]],
        allowed_sources: Sequence[str],
        window_s: float,
        store: BossStore,
        wall: Callable[[], float],
    ) -> None:
        self._keys = {key_id: tuple(secrets) for key_id, secrets in keys.items()}
        self._sources = tuple(ip_network(entry.strip(), strict=False) for entry in allowed_sources)
        self._window_s = window_s
        self._store = store
        self._wall = wall

    def check_source(self, client_ip: str) -> None:
        try:
            address = ip_address(client_ip)
        except ValueError:
            raise Refusal("untrusted_source", 403) from None
        if not any(address in network for network in self._sources):
            raise Refusal("untrusted_source", 403)

    async def admit(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> str:
        """The key id the request is signed with; Refusal (401) otherwise."""
        key_id = headers.get("x-lwork-key", "")
        timestamp = headers.get("x-lwork-timestamp", "")
        signature = headers.get("x-lwork-signature", "")
        if not key_id or not timestamp or not signature:
            raise Refusal("missing_signature", 401)
        secrets = self._keys.get(key_id)
        if secrets is None:
            raise Refusal("unknown_key", 401)
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise Refusal("bad_timestamp", 401)
        now = self._wall()
        if abs(now - int(timestamp)) > self._window_s:
            raise Refusal("stale_timestamp", 401)
        if len(signature) != 64 or not verifies(secrets, signature, timestamp, method, path, body):
            raise Refusal("bad_signature", 401)
        # Only a right signature is remembered: a forger cannot fill the table.
        if not await self._store.first_use(signature.lower(), now, now - 2 * self._window_s):
            raise Refusal("replayed_signature", 401)
        return key_id
