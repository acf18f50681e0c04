"""Files a test makes unwritable for a while, and writable again, even as root."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest


def _refuses_writes(path: Path) -> bool:
    try:
        with path.open("r+b"):
            return False
    except OSError:
        return True


@contextmanager
def _read_only_mode(path: Path) -> Iterator[None]:
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        path.chmod(stat.S_IMODE(mode))


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """chattr +i: even root cannot open the file for writing (ext4, xfs, btrfs...)."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=True)


@contextmanager
def unwritable(*paths: Path) -> Iterator[None]:
    """Every existing path in `paths` refuses to be opened for writing until the block ends.

    An ordinary user loses the write bits; root ignores them, so for root the file
    gets the immutable attribute instead (chattr). Where neither holds, the test is
    skipped: it could not show what it means to.
    """
    as_root = os.geteuid() == 0
    with ExitStack() as stack:
        for path in (p for p in paths if p.exists()):
            stack.enter_context(_immutable(path) if as_root else _read_only_mode(path))
            if not _refuses_writes(path):
                pytest.skip(f"{path.name} stays writable here; cannot test a read-only database")
        yield
