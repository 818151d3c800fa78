"""Rate limits that hold for the whole machine under ``http.workers`` (issue 17).

Each worker process counts in its own ``SharedRateLimiter``s, as one process does: the hot path
pays a dictionary look-up, no message. Every ``EXCHANGE_S`` the worker sends what its limiters
admitted since the last time to the parent's hub, which passes it on to the other workers; each
adds the others' counts to its own. A key refused on one worker is then refused on all within
about one period, and within a period each worker admits at most its share of what remained
(``SharedRateLimiter``), so an attacker spreading connections over the workers gets the limit
give or take a little (figures in ``SharedRateLimiter``), not ``workers`` times the limit.

One worker (the default) builds plain ``RateLimiter``s: no exchange, nothing changes.

``limiter_factory`` reaches the console's sign-in limiters, which its own modules build (they
ask ``machine_limiter`` while ``build_app`` composes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

from lwork.push.bus import BusUnavailable
from lwork.push.local_bus import MAX_FRAME, Counts, LocalBus
from lwork.ratelimit import RateLimiter, SharedRateLimiter

log = logging.getLogger("lwork.limits")

EXCHANGE_S = 0.1
"""How often a worker reports its counts: the period over which the others' newest counts are
unknown (see ``SharedRateLimiter`` for what that allows)."""
KEYS_PER_FRAME = 2_000
"""Keys in one ``Counts`` frame: far under ``MAX_FRAME`` even with long keys."""
assert KEYS_PER_FRAME * 300 < MAX_FRAME


class LimitExchange:
    """This worker's shared limiters and their reports over the hub link."""

    def __init__(self, link: LocalBus, peers: int, monotonic: Callable[[], float]) -> None:
        self._link = link
        self._peers = peers
        self._monotonic = monotonic
        self._limiters: dict[str, SharedRateLimiter] = {}
        self._task: asyncio.Task[None] | None = None
        self.unknown_limiters = 0
        link.on_counts = self.received

    def limiter(self, name: str, limit: int, period: float) -> SharedRateLimiter:
        """The limiter ``name``: the same name, limit and period on every worker."""
        if name in self._limiters:
            raise ValueError(f"two shared limiters named {name}")
        shared = self._limiters[name] = SharedRateLimiter(limit, period, self._peers)
        return shared

    def received(self, counts: Counts) -> None:
        limiter = self._limiters.get(counts.limiter)
        if limiter is None:  # a worker of another version, mid-upgrade: nothing to add to
            self.unknown_limiters += 1
            return
        now = self._monotonic()
        for key, count in counts.counts.items():
            limiter.absorb(counts.window, key, count, now)

    def send(self) -> None:
        """Report what every limiter admitted since the last report."""
        for name, limiter in self._limiters.items():
            by_window: dict[int, dict[str, int]] = {}
            for window, key, count in limiter.report():
                by_window.setdefault(window, {})[key] = count
            for window, counts in by_window.items():
                items = list(counts.items())
                for at in range(0, len(items), KEYS_PER_FRAME):
                    chunk = dict(items[at : at + KEYS_PER_FRAME])
                    self._link.send_counts(Counts(name, window, chunk))

    async def start(self) -> None:
        await self._link.start()
        self._task = asyncio.create_task(self._exchange_forever(), name="shared-limits")

    async def close(self) -> None:
        """Stop reporting and close the link (when it is the bus too, closing again is a
        no-op)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._link.close()

    async def _exchange_forever(self) -> None:
        while True:
            await asyncio.sleep(EXCHANGE_S)
            try:
                self.send()
            except BusUnavailable:
                return  # the hub is gone: the link's on_lost stops this worker
            except Exception:  # a bug here must not silently end the sharing
                log.exception("shared limits: reporting the counts failed")


LimiterFactory = Callable[[str, int, float], RateLimiter]
"""(name, limit, period) to a limiter: shared among the workers, or this process's own."""


def own_limiter(name: str, limit: int, period: float) -> RateLimiter:
    return RateLimiter(limit, period)


_factory: contextvars.ContextVar[LimiterFactory] = contextvars.ContextVar(
    "limiter_factory", default=own_limiter
)


def machine_limiter(name: str, limit: int, period: float) -> RateLimiter:
    """A limiter for the whole machine when built inside ``limiter_factory(exchange)``, else
    this process's own."""
    return _factory.get()(name, limit, period)


@contextlib.contextmanager
def limiter_factory(exchange: LimitExchange | None) -> Iterator[None]:
    """While composing the app: ``machine_limiter`` builds ``exchange``'s limiters."""
    token = _factory.set(exchange.limiter if exchange is not None else own_limiter)
    try:
        yield
    finally:
        _factory.reset(token)
