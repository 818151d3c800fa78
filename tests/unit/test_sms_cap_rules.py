from __future__ import annotations

from lwork.accounts.sms_caps import SendCaps, Usage, Window, number_prefix, wait_before_send

CAPS = SendCaps(
    resend_interval_s=60, per_number_per_day=10, per_ip_per_hour=3, per_prefix_per_hour=5,
    global_per_hour=100, prefix_length=6,
)  # fmt: skip
EMPTY = Window(0, None)


def usage(**windows: Window) -> Usage:
    base = dict(number_day=EMPTY, ip_hour=EMPTY, prefix_hour=EMPTY, global_hour=EMPTY)
    return Usage(last_to_number=None, **{**base, **windows})


def test_international_and_plus_forms_are_one_range() -> None:
    assert number_prefix("0088216000123", 6) == number_prefix("88216000999", 6) == "882160"
    assert number_prefix("13800138000", 6) == "138001"


def test_a_full_window_waits_until_its_oldest_send_ages_out() -> None:
    now = 10_000.0
    assert wait_before_send(CAPS, usage(ip_hour=Window(2, now - 100)), now) == 0.0
    assert wait_before_send(CAPS, usage(ip_hour=Window(3, now - 100)), now) == 3500.0
    assert wait_before_send(CAPS, usage(global_hour=Window(100, now - 3599.5)), now) == 1.0


def test_the_longest_wait_wins() -> None:
    now = 10_000.0
    both = Usage(
        last_to_number=now - 10, number_day=EMPTY, ip_hour=EMPTY,
        prefix_hour=Window(5, now - 600), global_hour=EMPTY,
    )  # fmt: skip
    assert wait_before_send(CAPS, both, now) == 3000.0


def test_a_send_stamped_after_this_request_began_never_makes_the_wait_longer_than_the_window() -> (
    None
):
    """Parallel requests: the oldest send of the window was written by a request whose clock
    read a moment later than this one's. Retry-After stays within the hour."""
    now = 10_000.0
    wait = wait_before_send(CAPS, usage(prefix_hour=Window(5, now + 0.004)), now)
    assert wait == 3600.0
