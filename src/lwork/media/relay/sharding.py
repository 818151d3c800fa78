"""Sharding calls over several relay worker processes. Pure.

A front process owns the ng socket and routes each request by a stable hash of its call-id to
one worker; each worker is a complete relay with its own slice of the port range, so a call's
packets never cross processes. `list` and `statistics` are answered by merging all workers.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

from lwork.media.ng.bencode import BValue, Encodable


def worker_for(call_id: bytes, workers: int) -> int:
    """Stable across processes and restarts (unlike `hash()`)."""
    return zlib.crc32(call_id) % workers


def split_ports(port_min: int, port_max: int, workers: int) -> list[tuple[int, int]]:
    """Disjoint sub-ranges, each starting even and holding at least one RTP/RTCP pair."""
    first = port_min + (port_min % 2)
    pairs = (port_max - first + 1) // 2
    if workers < 1 or pairs < workers:
        raise ValueError("port range too small for the number of workers")
    per_worker, extra = divmod(pairs, workers)
    ranges = []
    start = first
    for index in range(workers):
        count = per_worker + (1 if index < extra else 0)
        ranges.append((start, start + 2 * count - 1))
        start += 2 * count
    return ranges


def merge_lists(replies: Sequence[Mapping[bytes, BValue]], limit: int) -> list[Encodable]:
    calls: list[Encodable] = []
    for reply in replies:
        listed = reply.get(b"calls")
        if isinstance(listed, list):
            calls.extend(c for c in listed if isinstance(c, bytes))
    return calls[:limit]


def merge_statistics(replies: list[BValue]) -> BValue:
    """Sum integers, merge dictionaries key by key, keep the first value of anything else."""
    dicts = [r for r in replies if isinstance(r, dict)]
    if dicts and len(dicts) == len(replies):
        keys: list[bytes] = []
        for reply in dicts:
            keys.extend(k for k in reply if k not in keys)
        return {k: merge_statistics([d[k] for d in dicts if k in d]) for k in keys}
    if replies and all(isinstance(r, int) for r in replies):
        return sum(r for r in replies if isinstance(r, int))
    return replies[0] if replies else b""
