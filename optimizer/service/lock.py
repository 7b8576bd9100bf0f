"""One daemon (or tick) per store: an exclusive lock on `<store>.lock` naming the PID that holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from hashpivot.models.errors import HashpivotError


class InstanceLock:
    """An exclusive lock on `<store>.lock` next to the store's real file (symlinks and relative paths
    resolved), so one store has one daemon whatever path names it; a second holder is refused with the first
    one's PID. The lock file is created 0600."""

    def __init__(self, store_path: Path):
        self.path = Path(os.path.realpath(store_path) + ".lock")
        self.fh = None

    def __enter__(self) -> "InstanceLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "a+", encoding="utf-8")
        except OSError as exc:
            raise HashpivotError(f"cannot create the lock file {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise HashpivotError(f"another hashpivot run (PID {pid}) holds {self.path}; stop it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self.fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
