"""Validation of parsed observations before anything is stored (pure).

A payload is accepted or rejected as a whole: one bad row means the source is not to be trusted this time, and
the fallback source is tried. Checks: known series and unit, finite value in the plausible range, no duplicate
intervals, intervals in order, no jump larger than the series' limit from the last good value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from hashpivot.feeds.base import Observation
from hashpivot.models.errors import DataError, HashpivotError
from hashpivot.models.series import spec


class Rejected(HashpivotError):
    """Parsed rows failed a check: the payload is quarantined and the next source tried."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def validate(rows: list[Observation], last_good: Mapping[str, float] | None = None,
             jump_overrides: Mapping[str, float | None] | None = None, now: datetime | None = None) -> list[Observation]:
    """Return `rows` if every check passes; raise Rejected with the first reason otherwise.

    `last_good` maps series -> latest stored value; `jump_overrides` maps a series family to its jump limit
    (relative) in place of the default (None disables the filter); `now` (live data only) enables the checks
    that timestamps are neither in the future nor stale beyond the series' limits.
    """
    if not rows:
        raise Rejected("no rows in the payload")
    last_good = last_good or {}
    jump_overrides = jump_overrides or {}
    seen: set[tuple[str, object]] = set()
    previous_start: dict[str, object] = {}
    for row in rows:
        try:
            s = spec(row.series)
        except DataError as exc:
            raise Rejected(str(exc)) from None
        where = f"{row.series} at {row.interval_start_utc:%Y-%m-%dT%H:%MZ}"
        if row.unit != s.unit:
            raise Rejected(f"{where}: unit {row.unit!r}, expected {s.unit!r}")
        if not math.isfinite(row.value):
            raise Rejected(f"{where}: value is {row.value} (not a finite number)")
        if not s.min_value <= row.value <= s.max_value:
            raise Rejected(f"{where}: value {row.value:g} {s.unit} outside the plausible range {s.min_value:g}..{s.max_value:g}")
        if now is not None and row.interval_start_utc > now + s.max_future:
            raise Rejected(f"{where}: timestamp is in the future (now {now:%Y-%m-%dT%H:%MZ}, allowed up to {s.max_future} ahead)")
        if now is not None and row.interval_start_utc < now - s.max_age:
            raise Rejected(f"{where}: timestamp is {(now - row.interval_start_utc).days} days old (live data older than {s.max_age} is refused)")
        key = (row.series, row.interval_start_utc)
        if key in seen:
            raise Rejected(f"{where}: duplicate interval")
        seen.add(key)
        if row.series in previous_start and row.interval_start_utc < previous_start[row.series]:
            raise Rejected(f"{where}: intervals out of order")
        previous_start[row.series] = row.interval_start_utc
        limit = jump_overrides.get(s.family, s.max_jump_fraction) if s.family in jump_overrides else s.max_jump_fraction
        last = last_good.get(row.series)
        if limit is not None and last is not None and last != 0:
            change = abs(row.value - last) / abs(last)
            if change > limit:
                raise Rejected(
                    f"{where}: value {row.value:g} jumps {change:.0%} from the last good {last:g} (limit {limit:.0%})"
                )
    return rows
