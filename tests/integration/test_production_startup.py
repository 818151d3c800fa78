"""``env = "production"`` refuses unsafe settings at start-up (issue #13 item 8): ``lwork serve``
exits 2 naming the setting, before it listens; safe settings start a serving node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fakes.servers import free_port

KEY = "k3y-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SAFE = {
    "LWORK_ENV": "production",
    "LWORK_SECRET_KEY": KEY,
    "LWORK_SMS__PROVIDER": "http",
    "LWORK_SMS__GATEWAY_URL": "http://127.0.0.1:9/send",
    "LWORK_METRICS__TOKEN": "scrape-token-0123456789abcdef",
    "LWORK_MEDIA__RELAY_MODE": "inline",
}


def environment(tmp_path: Path, changes: dict[str, str | None]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    env.update(SAFE, LWORK_DATA_DIR=str(tmp_path))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"LWORK_SECRET_KEY": None}, "secret_key is empty"),
        ({"LWORK_SECRET_KEY": "short-key"}, "secret_key is 9 characters"),
        ({"LWORK_SMS__PROVIDER": "log"}, "sms.provider = 'log'"),
        ({"LWORK_METRICS__TOKEN": None}, "set metrics.token or metrics.allow_from"),
    ],
    ids=["empty-key", "short-key", "log-sms", "open-metrics"],
)
def test_serve_refuses_unsafe_production_settings(
    tmp_path: Path, changes: dict[str, str | None], named: str
) -> None:
    port = free_port()
    run = subprocess.run(
        [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
        env=environment(tmp_path, changes), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "invalid settings" in run.stderr and named in run.stderr, run.stderr
    assert KEY not in run.stderr and "scrape-token" not in run.stderr
    assert not (tmp_path / "secret.key").exists()  # refused before anything was made


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"LWORK_METRICS__TOKEN": None, "LWORK_METRICS__ALLOW_FROM": '["10.0.0.0/8"]'},
        {"LWORK_METRICS__TOKEN": None, "LWORK_METRICS__PUBLIC": "true"},
        {"LWORK_METRICS__TOKEN": None, "LWORK_METRICS__ENABLED": "false"},
    ],
    ids=["token", "allow-list", "public", "metrics-off"],
)
def test_serve_starts_with_safe_production_settings(
    tmp_path: Path, changes: dict[str, str | None]
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lwork", "serve", "--port", str(port)],
            env=environment(tmp_path, changes), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.TransportError:
                ready = None
            if ready is not None and ready.status_code == 200:
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics")
        if "LWORK_METRICS__ENABLED" in changes:  # nothing kept, nothing to guard
            assert (metrics.status_code, metrics.json()["reason"]) == (404, "metrics_disabled")
        else:
            assert metrics.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(30)
    assert KEY not in log.read_text()
