"""The daemon's notion of "now" (UTC).

Tests and drills can inject a clock without touching the system time: when HASHPIVOT_FAKE_NOW_FILE names a file,
it is read on every call; its content is either an ISO 8601 time ("now" is that instant) or a number of seconds
added to the real clock ("-3600" runs an hour behind, "7200" two hours ahead), so a test can move the clock
backwards or skip hours while the daemon runs.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from hashpivot.models.calendar import to_utc
from hashpivot.models.errors import HashpivotError

FAKE_NOW_ENV = "HASHPIVOT_FAKE_NOW_FILE"
log = logging.getLogger(__name__)


def _fake_now(text: str) -> datetime:
    """The fake clock file's time: an offset in seconds from the real clock, or an ISO time. ValueError else."""
    try:
        return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + float(text), tz=timezone.utc)
    except ValueError:
        return to_utc(text).to_pydatetime()


def check_clock() -> None:
    """At start-up of the daemon and tick: a fake clock file that cannot be read is an error, not a silent
    fall-back to the real clock (a drill would then disagree with itself)."""
    path = os.environ.get(FAKE_NOW_ENV)
    if not path:
        return
    try:
        _fake_now(open(path, encoding="utf-8").read().strip())
    except (OSError, ValueError) as exc:
        raise HashpivotError(f"{FAKE_NOW_ENV}={path}: not an ISO 8601 time or a number of seconds ({exc}); "
                             f"fix the file or unset {FAKE_NOW_ENV}") from None


def now_utc() -> datetime:
    """The one "now" (UTC) of every layer: the real clock, or the fake clock file when HASHPIVOT_FAKE_NOW_FILE
    names one (read at every call, so a drill can move it while the daemon runs)."""
    path = os.environ.get(FAKE_NOW_ENV)
    if path:
        try:
            return _fake_now(open(path, encoding="utf-8").read().strip())
        except (OSError, ValueError) as exc:  # a half-written file: the real clock for this call, said once per call
            log.warning("clock: %s=%s unreadable (%s); using the real clock for this reading", FAKE_NOW_ENV, path, exc)
    return datetime.now(timezone.utc)
