"""Test helpers for child processes that a test kills on purpose."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], *, within: float, what: str = "build") -> None:
    """Wait (polling) until ``ready()`` is true, then SIGKILL ``proc`` (no handler, no cleanup)
    and reap it. Fails if ``proc`` ends by itself first ("the ``what`` ended before it could be
    killed") or if ``ready()`` is still false after ``within`` seconds ("no image arrived");
    ``proc`` is killed and reaped in every case."""
    deadline = time.monotonic() + within
    try:
        while not ready():
            assert proc.poll() is None, f"the {what} ended before it could be killed"
            assert time.monotonic() < deadline, f"no image arrived in {within:g} s"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(timeout=30)
