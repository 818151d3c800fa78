"""SMS send caps, pure: given what the database counted, may one more text go out, and if not,
how long until it may? Time is passed in.

Scopes: one number (a minimum interval and a daily cap), one client (an IPv4 address or an
IPv6 /64, per hour), one number range (``prefix_length`` leading digits, per hour: premium and
international ranges that SMS-pumping fraud targets fill their cap without touching the others)
and the whole service (per hour: what a leak can cost at worst).
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400.0
HOUR = 3_600.0


@dataclass(frozen=True)
class SendCaps:
    resend_interval_s: float
    per_number_per_day: int
    per_ip_per_hour: int
    per_prefix_per_hour: int
    global_per_hour: int
    prefix_length: int


@dataclass(frozen=True)
class Window:
    """Sends counted in one scope's window, and when the oldest of them was made."""

    count: int
    oldest: float | None


@dataclass(frozen=True)
class Usage:
    last_to_number: float | None
    number_day: Window
    ip_hour: Window
    prefix_hour: Window
    global_hour: Window


def number_prefix(phone: str, length: int) -> str:
    """The range a normalised number belongs to: its first ``length`` digits once an
    international ``00`` is dropped, so ``0088216…`` and ``+88216…`` are one range."""
    digits = phone[2:] if phone.startswith("00") else phone
    return digits[:length]


def wait_before_send(caps: SendCaps, usage: Usage, now: float) -> float:
    """0 when one more send is within every cap, else the seconds until it would be."""
    waits: list[float] = []
    last = usage.last_to_number
    if last is not None and now - last < caps.resend_interval_s:
        waits.append(caps.resend_interval_s - (now - last))
    for window, cap, period in (
        (usage.number_day, caps.per_number_per_day, DAY),
        (usage.ip_hour, caps.per_ip_per_hour, HOUR),
        (usage.prefix_hour, caps.per_prefix_per_hour, HOUR),
        (usage.global_hour, caps.global_per_hour, HOUR),
    ):
        if window.count >= cap:
            # A slot frees when the oldest send in the window ages out of it. A send a parallel
            # request recorded may be stamped a moment after this request's `now`: the wait is
            # still at most the window (Retry-After 3601 for an hour's cap, seen in CI).
            oldest = window.oldest if window.oldest is not None else now
            waits.append(min(float(period), max(1.0, oldest + period - now)))
    return max(waits, default=0.0)
