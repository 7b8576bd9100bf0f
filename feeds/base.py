"""The collector contract: every source fetches a raw payload, then parses it into observations.

Fetching (I/O, through `feeds.http`) and parsing (pure: payload in, rows out) are separate so parsing is tested
on recorded payloads and fetching against a loopback HTTP server. Every row is a tz-aware UTC interval start,
a value with its unit, the source that supplied it and when it was fetched.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from hashpivot.models.errors import HashpivotError


class FeedError(HashpivotError):
    """A source could not be read (network, HTTP status, timeout) or its payload was unusable."""

    def __init__(self, source: str, reason: str, payload: bytes | None = None):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.payload = payload


@dataclass(frozen=True)
class Payload:
    """A raw response as received: kept byte-exact so a rejected one can be quarantined."""

    source: str
    url: str
    status: int
    content_type: str
    body: bytes
    fetched_at_utc: datetime

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse JSON, rejecting HTML error pages and non-JSON bodies with a clear reason."""
        head = self.body.lstrip()[:1]
        if "html" in self.content_type.lower() or head == b"<":
            raise FeedError(self.source, f"got HTML instead of JSON from {self.url}", self.body)
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FeedError(self.source, f"body is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})", self.body) from None


@dataclass(frozen=True)
class Observation:
    series: str
    interval_start_utc: datetime
    value: float
    unit: str
    source: str
    fetched_at_utc: datetime

    def __post_init__(self) -> None:
        for name in ("interval_start_utc", "fetched_at_utc"):
            ts = getattr(self, name)
            if ts.tzinfo is None or ts.utcoffset() != timezone.utc.utcoffset(None):
                raise FeedError(self.source, f"{self.series}: {name} must be tz-aware UTC, got {ts!r}")


@dataclass
class Collector:
    """Base class: one source. Subclasses set `name`, `group`, `series`, `default_base_url` and implement
    `fetch` (one or more HTTP requests, returns the payloads) and `parse` (payloads -> observations).
    """

    base_url: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    name: ClassVar[str] = ""
    group: ClassVar[str] = ""  # the series family this source can supply (sources of one group are fallbacks)
    default_base_url: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.base_url = (self.base_url or self.default_base_url).rstrip("/")

    def fetch(self, client) -> list[Payload]:
        """One or more requests through `client` (a feeds.http.HttpClient); returns the raw payloads."""
        raise NotImplementedError

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        raise NotImplementedError


    # helpers for subclasses
    def obs(self, series: str, start: datetime, value: float, unit: str, fetched_at: datetime) -> Observation:
        return Observation(series, start, float(value), unit, self.name, fetched_at)

    def number(self, value: Any, what: str, payload: Payload) -> float:
        """A finite float from a JSON number or numeric string, else FeedError naming the field."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise FeedError(self.name, f"{what}: not a number ({value!r})", payload.body) from None
        if not math.isfinite(x):
            raise FeedError(self.name, f"{what}: not a finite number ({value!r})", payload.body)
        return x


def whole_csv(source: str, body: bytes, what: str = "CSV") -> str:
    """The text of a CSV payload proven whole, else FeedError: UTF-8 text, ending with a line end (a body cut
    in the middle of a number still parses, so the last line must be complete), every row with the header's
    number of fields."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedError(source, f"{what} is not UTF-8 text", body) from None
    if not text.strip():
        raise FeedError(source, f"{what} is empty", body)
    if not text.endswith(("\n", "\r")):
        tail = text.rstrip().splitlines()[-1][-40:]
        raise FeedError(source, f"{what} is cut off: its last line has no line end (ends {tail!r})", body)
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if row and len(row) != width:
            raise FeedError(source, f"{what} line {number} has {len(row)} fields, the header {width}: incomplete file", body)
    return text


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


