"""``lwork serve`` with several workers on PostgreSQL says at start, in its log, when their pools
can outgrow the server's ``max_connections``, and says nothing when they fit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fakes.nodes import start_node, wait_ready


@pytest.mark.parametrize(("pool_size", "told"), [(60, True), (2, False)])
async def test_serve_tells_at_start_when_its_workers_can_outgrow_postgresql(
    postgres_url: str, tmp_path: Path, pool_size: int, told: bool
) -> None:
    env = {
        "LWORK_DATABASE__URL": postgres_url,
        "LWORK_DATABASE__POOL_SIZE": str(pool_size),
        "LWORK_HTTP__WORKERS": "2",
    }
    node = start_node("n1", tmp_path, env)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_ready(client, node, tmp_path, "n1")
    finally:
        node.process.terminate()
        node.process.wait(15)
    log = (tmp_path / "n1.log").read_text()
    # Two processes of (2 × 60 + 10) = 260: past any default server (max_connections 100).
    assert ("database: this node may open 260 PostgreSQL connections" in log) is told, log
