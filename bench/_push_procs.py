"""Process plumbing of ``bench.push_bench``: the server and client processes, and what is read
from them (HTTP metrics, RSS and CPU time from /proc, server logs, py-spy samples)."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from bench._load import stop_process

ROOT = Path(__file__).resolve().parent.parent


def pinned(core: int) -> list[str]:
    return (
        ["taskset", "-c", str(core)]
        if (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        else []
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def held(port: int, workers: int = 1) -> int:
    """Polls the server holds; with ``workers`` > 1 the sum of each worker's count, read over
    fresh connections (each lands on any worker) until every worker has answered."""
    if workers == 1:
        count: int = get_json(port, "/metrics")["held_polls"]
        return count
    by_worker: dict[int, int] = {}
    for _ in range(50 * workers):
        try:
            metrics = get_json(port, "/metrics")
        except OSError:  # a worker too busy to answer in time: ask again (another, perhaps)
            continue
        by_worker[metrics["worker"]] = metrics["held_polls"]
        if len(by_worker) == workers:
            return sum(by_worker.values())
    # Not a count of zero: a server whose workers do not all listen yet (refused at once, so
    # the attempts above pass in a moment) is not ready.
    raise OSError(f"{workers - len(by_worker)} of {workers} workers did not answer /metrics")


def wait_held(port: int, expect: int, timeout: float, workers: int = 1) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with suppress(OSError):  # a worker too busy to answer: ask again
            if (count := held(port, workers)) >= expect:
                break
        time.sleep(0.05)
    return count


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a supervisor, its workers and their relay children)."""
    pids, at = [pid], 0
    while at < len(pids):
        path = Path(f"/proc/{pids[at]}/task/{pids[at]}/children")
        with suppress(OSError):
            pids += [int(child) for child in path.read_text().split()]
        at += 1
    return pids


def tree_rss_kib(pid: int) -> int:
    total = 0
    for member in tree(pid):
        with suppress(OSError, RuntimeError):
            total += rss_kib(member)
    return total


def tree_cpu_s(pid: int) -> float:
    total = 0.0
    for member in tree(pid):
        with suppress(OSError):
            total += cpu_s(member)
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    mode: str, settings_file: Path, port: int, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """The server of ``mode``; with ``workers`` > 1 (``http.workers``) unpinned: its workers
    share both cores."""
    cmd = [*(pinned(0) if workers == 1 else []), sys.executable, "-m", "bench._push_server",
           mode, str(settings_file)]  # fmt: skip
    # Its log goes to a file: the forced end of 19,000 held requests is long and expected.
    log = settings_file.with_name(f"server-{mode}.log")
    with log.open("wb") as sink:
        proc = subprocess.Popen([*cmd, str(port)], cwd=ROOT, stderr=sink, stdout=sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                held(port, workers)
                break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {mode} server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc)


class ClientTimeout(RuntimeError):
    """A client process gave no answer to a command in the time its phase may take."""


class ClientProcess:
    """One ``bench._push_clients`` process, driven one command at a time.

    Its answers are read by a thread of their own, so waiting for one can end: a phase that
    does not finish fails (``ClientTimeout``) instead of hanging the run."""

    def __init__(self, port: int, source: str | None = None, workers: int = 1) -> None:
        cmd = [*(pinned(1) if workers == 1 else []), sys.executable, "-m", "bench._push_clients",
               str(port), source or "-", str(workers)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put("")  # the process ended

    def send(self, command: dict[str, Any]) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()

    def reply(self, timeout: float | None = None, what: str = "its command") -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise ClientTimeout(
                f"a client process gave no answer to {what} within {timeout:.0f} s"
            ) from None
        if not line:
            raise RuntimeError("a client process died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, command: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.send(command)
        return self.reply(timeout, repr(command["cmd"]))

    def close(self, wait_s: float = 30.0) -> None:
        """End of input: the process closes its connections and exits (killed after
        ``wait_s``: a process stuck in a command never reads that end)."""
        if self.proc.stdin is not None:
            with suppress(OSError):  # it may have died
                self.proc.stdin.close()
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def all_call(
    clients: list[ClientProcess],
    commands: list[dict[str, Any]],
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Each client's command, all at once; ``timeout``: for all the answers together."""
    for client, command in zip(clients, commands, strict=True):
        client.send(command)
    deadline = time.monotonic() + timeout if timeout is not None else None
    return [
        client.reply(
            max(0.0, deadline - time.monotonic()) if deadline is not None else None,
            repr(command["cmd"]),
        )
        for client, command in zip(clients, commands, strict=True)
    ]


@contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy samples of the server while the block runs (collapsed stacks, for flame graphs)."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    # --gil: only samples holding the GIL, i.e. CPU spent in Python, not waits for a thread.
    cmd = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--gil"]
    proc = subprocess.Popen([*cmd, "-o", str(output)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached before the measured load starts
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def log_errors(settings_file: Path, mode: str) -> dict[str, Any]:
    """Errors the server logged while measured (before it is stopped), with the last one."""
    text = settings_file.with_name(f"server-{mode}.log").read_text(errors="replace")
    lines = text.splitlines()
    reasons = sorted({line[:200] for line in lines if "Error:" in line and not line[:1].isspace()})
    return {"count": text.count("Traceback"), "reasons": reasons[:5]}


def merge_checks(checks: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for check in checks:
        for key, value in check.items():
            merged[key] = merged.get(key, 0 if isinstance(value, int) else []) + value
    return merged
