"""Advisory locks on files under the home (``fcntl.flock``): two processes never work on the same thing at once.

The lock goes with the open file, so it is released when the holder closes it or dies; the file itself only
says who holds it (pid, host, what, since when) for the message the next one gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator


class LockBusyError(RuntimeError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def hold(path: Path, what: str, wait_s: float, poll_s: float = 0.2) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, waiting up to ``wait_s`` for its holder to finish."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "another process"
                    raise LockBusyError(f"cannot {what}: {path} is held by {holder}; waited {wait_s:g} s, "
                                        "try again when it has finished") from None
                time.sleep(poll_s)
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} ({what}) since {since}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
