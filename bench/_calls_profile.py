"""Where a process spends its time: a py-spy recording, summarised as the top functions.

py-spy is not a project dependency; install it outside the venv
(``pip install --prefix /tmp/pyspy py-spy``) and pass its path, or put it on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

PYSPY_CANDIDATES = ("/tmp/pyspy/bin/py-spy",)


def find_pyspy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    return next((c for c in PYSPY_CANDIDATES if Path(c).exists()), None)


def record(pyspy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` without pausing it (``--nonblocking``), collapsed stacks (the first frame
    names the thread) into ``out``."""
    cmd = [pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
           "--nonblocking", "--threads", "--format", "raw", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    # "handle (lwork/http/server.py:120)" -> "handle (lwork/http/server.py)": lines split a
    # function into many rows otherwise.
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the samples by thread, then for the event loop's thread (``MainThread``):
    self time by function, inclusive time of lwork's functions (the framework's frames are on
    every stack and say nothing), self time by package. Idle samples are not recorded."""
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = main = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        thread, *rest = stack.split(";")
        name = thread.rsplit(":", 1)[-1].strip()
        threads[name] += count
        frames = [_frame_name(f) for f in rest]
        if name != "MainThread" or not frames:
            continue
        main += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        leaf_path = frames[-1].rsplit("(", 1)[-1].rstrip(")")
        packages[leaf_path.split("/", 1)[0]] += count

    def share(counter: Counter[str], of: int) -> list[tuple[str, float]]:
        return [(name, round(100 * n / of, 1)) for name, n in counter.most_common(top)]

    ours = Counter({name: n for name, n in inclusive.items() if "(lwork/" in name})
    return {
        "samples": total,
        "thread_pct": share(threads, total),
        "main_thread_samples": main,
        "main_self_pct": share(self_time, main),
        "main_inclusive_pct_lwork": share(ours, main),
        "main_self_pct_by_top_package": share(packages, main),
    }
