"""push_bench's client processes (bench/_push_procs.py, bench/_push_clients.py) against real
loopback sockets: a phase whose server never answers fails in its time instead of hanging the
run, and a poll whose connection the server closed is opened again and counted."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from bench._push_procs import ClientProcess, ClientTimeout


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_phase_the_server_never_answers_fails_in_its_time(silent_server: int) -> None:
    client = ClientProcess(silent_server)
    started = time.monotonic()
    try:
        with pytest.raises(ClientTimeout, match="'latency' within 3 s"):
            # the client waits on /metrics (its own answer timeout is 30 s)
            command = {"cmd": "latency", "batches": [["x"]], "expect_held": 1, "limit_s": 1}
            client.call(command, timeout=3.0)
        assert time.monotonic() - started < 10
    finally:
        client.close(wait_s=1.0)
    assert client.proc.returncode is not None  # killed: it never read the end of its input


class ClosingPollServer:
    """Answers ``/metrics`` with how many poll requests it holds; the first poll connection
    is closed by the server after its request arrived, the others are held."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.polls_seen = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()
                return
            data += chunk
            while b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if len(rest) < length:
                    break
                data = rest[length:]
                if head.startswith(b"GET /metrics"):
                    body = b'{"status":"ok","held_polls":%d}' % len(self.held)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    continue
                self.polls_seen += 1
                if self.polls_seen == 1:
                    conn.close()  # as a reset by an overflowing accept queue looks to a client
                    return
                self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def test_a_poll_closed_by_the_server_is_opened_again_and_counted() -> None:
    server = ClosingPollServer()
    client = ClientProcess(server.port)
    try:
        client.call({"cmd": "open", "devices": [["u1", "d1"], ["u2", "d2"]]}, timeout=30)
        deadline = time.monotonic() + 10
        while client.call({"cmd": "check"}, timeout=30)["closed"] < 1:
            assert time.monotonic() < deadline, "the server's close never reached the client"
            time.sleep(0.05)
        # the other poll's request reaches the server on its own connection and thread: it may
        # arrive after the first one's close reached the client
        while len(server.held) < 1:
            assert time.monotonic() < deadline, "the second poll never reached the server"
            time.sleep(0.05)
        assert len(server.held) == 1
        # no batches: only the re-opening before the (empty) phase's end and the held count
        result = client.call(
            {"cmd": "latency", "batches": [], "expect_held": 2, "limit_s": 5}, timeout=30
        )
        assert result["batches_not_measured"] == 0
        assert len(server.held) == 2  # both devices held again
        check = client.call({"cmd": "check"}, timeout=30)
        assert check["closed"] == 1  # and the lost poll is an error of the run
    finally:
        client.close()
        server.close()
