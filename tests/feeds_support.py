"""Helpers for feed tests: fixture files, payloads for pure parsing, and a config pointing at a loopback server."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from feeds.base import Payload
from models.config import load_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
FETCHED = datetime(2024, 8, 5, 14, 7, 31, tzinfo=timezone.utc)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def payload(body: bytes | str, source: str = "test", content_type: str = "application/json", fetched=FETCHED) -> Payload:
    if isinstance(body, str):
        body = body.encode()
    return Payload(source, "http://test", 200, content_type, body, fetched)


def zipped(name: str) -> bytes:
    """The fixture CSV zipped as ERCOT's MIS download serves it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name.replace(".documented-format", ""), fixture_bytes(name))
    return buffer.getvalue()


def loopback_config(base_url: str, *extra: str, retries: int = 1, read_timeout_s: float = 2.0):
    """The example site with every source pointed at the loopback server and fast retries."""
    base = base_url.rstrip("/")
    sets = [f"feeds.sources.{s}.base_url='{base}'" for s in
            ("mempool", "coinbase", "kraken", "coingecko", "ercot_mis", "nyiso_mis", "open_meteo", "vast", "akash")]
    sets += [f"feeds.retries={retries}", "feeds.backoff_s=0", f"feeds.read_timeout_s={read_timeout_s}",
             "feeds.connect_timeout_s=2", "feeds.max_retry_after_s=2"]
    return load_config(EXAMPLE, sets + list(extra)), sets + list(extra)
