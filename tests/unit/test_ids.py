"""Random ids: drawn from a buffer of the kernel's bytes, each byte handed out once."""

import os
import threading

from lwork.ids import new_call_session_id, random_hex


def test_ids_have_their_length_and_do_not_repeat() -> None:
    drawn = [random_hex(16) for _ in range(5000)]  # several refills of the buffer
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in drawn)
    assert len(set(drawn)) == len(drawn)
    assert len(random_hex(5000)) == 10_000  # more than a buffer at once
    node, _, rest = new_call_session_id("n1").partition("@@")
    assert node == "n1" and len(rest) == 32


def test_threads_drawing_at_once_never_get_the_same_id() -> None:
    drawn: list[list[str]] = [[] for _ in range(8)]

    def draw(into: list[str]) -> None:
        for _ in range(3000):
            into.append(random_hex(8))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for into in drawn for value in into]
    assert len(set(every)) == len(every) == 24_000


def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    random_hex(16)  # the buffer is filled: a child copying it would draw what the parent will
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave at once
        os.write(write, "".join(random_hex(16) for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1000).decode()
    os.close(read)
    parent = "".join(random_hex(16) for _ in range(4))
    assert len(child) == len(parent) == 128
    assert child != parent
