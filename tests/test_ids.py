"""Ids from pooled randomness: the right size, never repeated, not shared with a fork."""

from __future__ import annotations

import os
import sys
import threading

from relay.ids import POOL_BYTES, random_hex
from relay.storage.records import new_id


def test_hex_of_the_asked_size_and_no_repeats_across_pool_refills() -> None:
    drawn = [random_hex(16) for _ in range(3 * POOL_BYTES // 16)]
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in drawn)
    assert len(set(drawn)) == len(drawn)
    assert len(random_hex(POOL_BYTES + 1)) == 2 * (POOL_BYTES + 1)


def test_record_ids_keep_their_shape() -> None:
    first, second = new_id("msg"), new_id("msg")
    assert first != second
    assert first.startswith("msg_") and len(first) == len("msg_") + 14 + 10


def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    random_hex(1)  # the pool holds bytes the child would inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, random_hex(16).encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != random_hex(16)


def test_threads_drawing_at_once_never_get_the_same_bytes() -> None:
    drawn: list[list[str]] = [[] for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [
            threading.Thread(
                target=lambda out=out: out.extend(random_hex(8) for _ in range(20_000))
            )
            for out in drawn
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    every = [value for values in drawn for value in values]
    assert len(every) == 80_000
    assert len(set(every)) == len(every)
