"""The daemon's notion of "now" (UTC).

Tests and drills can inject a clock without touching the system time: when HASHPIVOT_FAKE_NOW_FILE names a file,
it is read on every call; its content is either an ISO 8601 time ("now" is that instant) or a number of seconds
added to the real clock ("-3600" runs an hour behind, "7200" two hours ahead), so a test can move the clock
backwards or skip hours while the daemon runs.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from hashpivot.models.calendar import to_utc

FAKE_NOW_ENV = "HASHPIVOT_FAKE_NOW_FILE"


def now_utc() -> datetime:
    path = os.environ.get(FAKE_NOW_ENV)
    if path:
        try:
            text = open(path, encoding="utf-8").read().strip()
            try:
                return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + float(text), tz=timezone.utc)
            except ValueError:
                pass
            return to_utc(text).to_pydatetime()
        except (OSError, ValueError):
            pass  # a half-written file: fall back to the real clock for this call
    return datetime.now(timezone.utc)
