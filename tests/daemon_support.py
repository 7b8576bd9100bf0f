"""Waiting on a daemon subprocess by what it has done, not by wall time: start-up takes ~3.5 s on an idle
machine and several times that beside another test worker, so drills that kill "n seconds after start"
must count from the daemon's own "daemon started" line."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    """True as soon as `predicate()` holds, False once `timeout_s` has passed without it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def starts_logged(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count("daemon started") if log_path.exists() else 0


def wait_started(log_path: Path, n: int, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """Wait until the shared log holds the n-th "daemon started" line; if it never comes, kill `proc` (no daemon
    outlives its test) and fail with the log's tail."""
    if not wait_for(lambda: starts_logged(log_path) >= n, timeout_s):
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"no start no. {n} logged within {timeout_s:.0f} s:\n{log_path.read_text()[-3000:]}")
