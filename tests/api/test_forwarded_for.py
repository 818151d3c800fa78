"""The client address behind trusted proxies: X-Forwarded-For is read from the right."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from lwork.settings import HttpSettings


async def test_rotating_the_client_written_entry_does_not_evade_per_ip_limits(
    server_factory: Callable[..., Any],
) -> None:
    async with server_factory(
        http={"trusted_proxies": ["127.0.0.1", "10.9.0.0/16"]}, sms={"per_ip_per_hour": 3}
    ) as server:
        statuses = []
        for i in range(8):
            # the client wrote a fresh entry each time; our proxies appended the real hops
            forwarded = f"203.0.113.{i}, 198.51.100.7, 10.9.3.4"
            r = await server.post(
                "/lwork/sms/auth_code",
                {"uuid": f"0088{i}1600000{i}", "type": "register"},
                headers={"X-Forwarded-For": forwarded},
            )
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429, 429, 429, 429, 429]
        assert len(server.gateway.received) == 3


async def test_malformed_forwarded_entries_neither_fail_nor_evade_limits(
    server_factory: Callable[..., Any],
) -> None:
    async with server_factory(
        http={"trusted_proxies": ["127.0.0.1"]}, sms={"per_ip_per_hour": 3}
    ) as server:
        statuses = []
        for i, forwarded in enumerate(
            [
                "junk0",
                "1.2.3.4, ::::1,",
                "1.2.3.4:80,x2",
                "[2001:db8::1",
                "300.1.1.4, 1.1.1.1/8",
            ]
        ):
            r = await server.post(
                "/lwork/sms/auth_code",
                {"uuid": f"13{i}00000000", "type": "register"},
                headers={"X-Forwarded-For": forwarded},
            )
            assert r.json()["status"] in ("ok", "failed"), forwarded
            statuses.append(r.status_code)
        # an unreadable entry ends the walk at the proxy: all of these are one client
        assert statuses == [200, 200, 200, 429, 429]


def test_a_bad_trusted_proxy_setting_fails_at_start_up() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        HttpSettings(trusted_proxies=["10.0.0.0/33"])
