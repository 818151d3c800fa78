"""sipp as a process for ``bench.sip_bench``: start it pinned, read its statistics file."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

from bench.http_bench import pinned

BENCH = Path(__file__).resolve().parent
UAS = BENCH / "sipp_uas.xml"
UAC = BENCH / "sipp_uac.xml"


def have_sipp() -> bool:
    return shutil.which("sipp") is not None


def start(
    scenario: Path, args: list[str], workdir: Path, name: str, timeout_s: float
) -> subprocess.Popen[bytes]:
    """sipp on 127.0.0.1 with statistics every second into ``workdir/name.csv``; it gives up
    (non-zero exit) after ``timeout_s``."""
    stats = workdir / f"{name}.csv"
    stats.unlink(missing_ok=True)
    cmd = [*pinned(1), "sipp", "-sf", str(scenario), *args, "-i", "127.0.0.1",
           "-mi", "127.0.0.1", "-nostdin", "-timeout", f"{timeout_s:g}s", "-timeout_error",
           "-trace_stat", "-stf", str(stats), "-fd", "1"]  # fmt: skip
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def rows(workdir: Path, name: str) -> list[dict[str, str]]:
    """Every periodic row of sipp's statistics file (cumulative columns end in ``(C)``)."""
    path = workdir / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f, delimiter=";") if row.get("CurrentCall")]


def summary(workdir: Path, name: str) -> dict[str, int]:
    found = rows(workdir, name)
    if not found:
        return {"successful": 0, "failed": 0, "created": 0, "peak_current": 0}
    last = found[-1]
    return {
        "successful": int(last["SuccessfulCall(C)"]),
        "failed": int(last["FailedCall(C)"]),
        "created": int(last["TotalCallCreated"]),
        "peak_current": max(int(r["CurrentCall"]) for r in found),
    }


def median_rate(workdir: Path, name: str, column: str) -> float | None:
    """Median per-second count of ``column`` (a periodic ``(P)`` column) over the seconds in
    which calls were being created, the first and last (partial) seconds left out; None when
    that leaves no second."""
    import statistics

    busy = [int(r[column]) for r in rows(workdir, name) if int(r[column]) > 0][1:-1]
    return float(statistics.median(busy)) if busy else None
