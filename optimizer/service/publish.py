"""Publishing a decision: an atomically written JSON file per decision plus `latest.json`, and an optional
webhook POST in the background (retries, timeout) that never blocks the next solve."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import requests

log = logging.getLogger(__name__)


def write_atomic(path: Path, text: str) -> None:
    """Write temp file in the same directory, fsync, rename over `path`: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def publish_files(doc: dict, seq: int, directory: Path, keep: int = 2000) -> Path:
    text = json.dumps(doc, indent=2)
    path = directory / f"decision-{seq:08d}.json"
    write_atomic(path, text)
    write_atomic(directory / "latest.json", text)
    old = sorted(directory.glob("decision-*.json"))[:-keep]
    for stale in old:
        stale.unlink(missing_ok=True)
    return path


def post_webhook(url: str, doc: dict, timeout_s: float, retries: int) -> threading.Thread:
    """POST the document in a daemon thread, retrying `retries` times one second apart; failures are logged,
    never raised."""

    def send() -> None:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(1.0)
            try:
                resp = requests.post(url, json=doc, timeout=timeout_s)
                if resp.status_code < 300:
                    log.info("webhook ok status=%s attempt=%d", resp.status_code, attempt + 1)
                    return
                reason = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            log.warning("webhook failed attempt=%d reason=%s", attempt + 1, reason)

    thread = threading.Thread(target=send, name="webhook", daemon=True)
    thread.start()
    return thread
