"""Publishing a decision: an atomically written JSON file per decision plus `latest.json`, and an optional
webhook POST (retries, timeout, a delivery id). `optimizer.service.outbox` decides what to publish when."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import requests

from hashpivot.feeds.http import HttpSettings, retrying_session
from hashpivot.models.decision import Decision

log = logging.getLogger(__name__)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write temp file in the same directory, fsync, rename over `path`: a reader never sees half a file.
    The file gets `mode` (before the rename, so it is never readable more widely than that)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
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


def publish_files(doc: Decision, seq: int, directory: Path, keep: int = 2000, mode: int = 0o640) -> Path:
    """`decision-<seq>.json` and `latest.json` in `directory` (mode 0640 by default: the service's group reads
    them), keeping the newest `keep` decision files."""
    text = doc.to_json()
    path = directory / f"decision-{seq:08d}.json"
    write_atomic(path, text, mode)
    write_atomic(directory / "latest.json", text, mode)
    old = sorted(directory.glob("decision-*.json"))[:-keep]
    for stale in old:
        stale.unlink(missing_ok=True)
    return path


def send_webhook(url: str, doc: Decision, seq: int, timeout_s: float, retries: int) -> str | None:
    """POST the document through the feeds' retrying session (urllib3 Retry: connection errors, 429 and 5xx
    retried `retries` times with backoff), with `X-Hashpivot-Delivery: <seq>` so a receiver can drop the
    repeats an at-least-once delivery may bring. Redirects are not followed (a 3xx is a failed delivery).
    Returns None when delivered, else the reason."""
    headers = {"Content-Type": "application/json", "X-Hashpivot-Delivery": str(seq)}
    with retrying_session(HttpSettings(retries=retries, backoff_s=0.5)) as session:
        try:
            resp = session.post(url, data=doc.to_json(), headers=headers, timeout=timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            return type(exc).__name__
    return None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"
