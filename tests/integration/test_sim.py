"""The simulator: two phones calling each other through a real lwork, real HTTP and real RTP."""

from __future__ import annotations

import subprocess
import sys

from lwork.sim.demo import demo


async def test_demo_call_has_media_both_ways_and_live_stats() -> None:
    lines: list[str] = []
    report = await demo(2.5, lines.append)
    assert report.caller_statuses[0] == "p2p_ring"
    assert set(report.caller_statuses[1:]) == {"p2p_hookoff"}
    assert report.final_status == "release"
    # 20 ms AMR packets for ~2.5 s each way, every one relayed
    assert report.callee_received >= 100 and report.caller_received >= 100
    stats = report.last_stats
    assert stats["pr"] >= 50 and stats["pl"] == 0 and stats["mos"] > 4
    assert stats["rttms"] > 0  # the phone answers the relay's sender reports
    assert any("incoming call from 13800000001" in line for line in lines)


def test_sim_demo_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lwork", "sim", "demo", "--seconds", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "p2p_hookoff" in result.stdout and "call is release" in result.stdout
