"""The daemon's notion of "now" (UTC).

Tests and drills can inject a clock without touching the system time: when HASHPIVOT_FAKE_NOW_FILE names a file,
its content (an ISO 8601 UTC time) is "now", read fresh on every call, so a test can move it backwards or skip
an hour while the daemon runs.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pandas as pd

FAKE_NOW_ENV = "HASHPIVOT_FAKE_NOW_FILE"


def now_utc() -> datetime:
    path = os.environ.get(FAKE_NOW_ENV)
    if path:
        try:
            text = open(path, encoding="utf-8").read().strip()
            ts = pd.Timestamp(text)
            return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
        except (OSError, ValueError):
            pass  # a half-written file: fall back to the real clock for this call
    return datetime.now(timezone.utc)
