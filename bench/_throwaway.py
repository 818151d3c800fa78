"""Database servers of a run's own, to be killed and restarted under a running lwork: a
PostgreSQL cluster (initdb as the ``postgres`` user, in a temporary directory) and a
redis-server on free ports, never the machine's shared ones. Shared by ``bench.chaos_bench``
and the outage tests (``tests/integration/test_outages.py``, ``test_chaos_*.py``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    for version in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        if (version / "bin" / "initdb").exists():
            return version / "bin"
    return None


def why_no_throwaway_postgres() -> str | None:
    """None when a throwaway cluster can be started here, else the reason it cannot."""
    if postgres_bin() is None:
        return "PostgreSQL's server binaries are not installed (apt-get install postgresql)"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "a throwaway PostgreSQL cluster is started as root through runuser"
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster of the caller's own, in a temporary directory owned by ``postgres``
    (initdb refuses to run as root)."""

    def __init__(self, binaries: Path) -> None:
        self._bin = binaries
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lwork-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def init(self) -> None:
        self._as_postgres(str(self._bin / "initdb"), "-D", str(self.dir / "data"), "-A",
                          "trust", "-U", "postgres", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=300"
        )
        self._as_postgres(str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o",
                          options, "-l", str(self.dir / "log"), "-w", "start")  # fmt: skip

    def create_database(self, name: str) -> str:
        self._as_postgres(str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "postgres", name)  # fmt: skip
        return self.url_of(name)

    def kill(self) -> None:
        """The server stops at once, as in a crash (no shutdown checkpoint)."""
        self._as_postgres(str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m",
                          "immediate", "-w", "stop")  # fmt: skip

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRedis:
    def __init__(self, binary: str, directory: Path) -> None:
        self._binary = binary
        self._dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
