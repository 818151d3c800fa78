"""Real-time scheduling for the relay's packet processes, as media servers offer it
(rtpengine's ``scheduling=fifo`` with ``priority``, Asterisk's ``-p``, FreeSWITCH's ``-rp``).

Under ordinary scheduling a kernel thread or another process that wakes on the relay's core
may run for its whole slice (milliseconds) while packets wait; measured here, such episodes
are what pushes the relay's p99 past a few milliseconds at 100,000 packets/s. ``SCHED_FIFO``
lets the relay run whenever a packet is waiting. The kernel's real-time throttling (by default
5 % of each second left to other tasks) keeps a flooded relay from locking up its core.

Only the processes that move packets are raised: never the API's own event loop (``inline``
mode) nor the ng front of a multi-process relay.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("lwork.media.relay")


def apply_realtime_priority(priority: int) -> bool:
    """Run this process ``SCHED_FIFO`` at ``priority`` (1-99); 0 leaves scheduling alone.

    Without the right (root, ``CAP_SYS_NICE`` or ``RLIMIT_RTPRIO``), the relay runs on with
    normal scheduling and says so: a refused priority must not stop calls."""
    if priority == 0:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        log.warning(
            "media relay: real-time priority %d refused (needs root, CAP_SYS_NICE or "
            "`ulimit -r %d`); running with normal scheduling",
            priority,
            priority,
        )
        return False
    log.info("media relay: SCHED_FIFO, priority %d", priority)
    return True
