"""Times: the one UTC normalisation (naive = UTC), ISO text for documents, and market calendars (pure).

ERCOT publishes day-ahead market results for an operating day at 13:30 America/Chicago the day before; a
forecast, an import or a backtest may only use a day-ahead price from then on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from hashpivot.models.errors import InputError

MARKET_TZ = ZoneInfo("America/Chicago")
DAM_PUBLISH_LOCAL = timedelta(hours=13, minutes=30)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def to_utc(ts: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A tz-aware UTC Timestamp: naive times are taken as UTC, aware ones converted. ValueError if not a time."""
    ts = pd.Timestamp(ts)
    if ts is pd.NaT:
        raise InputError("not a time: NaT")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso_utc(ts: str | datetime | pd.Timestamp) -> str:
    """`2024-08-05T14:00:00Z`: the text form every document and table uses (sorts chronologically)."""
    return to_utc(ts).strftime(ISO_FORMAT)


def duration_text(td: timedelta | pd.Timedelta) -> str:
    """A duration as an operator reads it: `3 h`, `35 days`, `90 min`."""
    seconds = pd.Timedelta(td).total_seconds()
    if seconds >= 2 * 86_400 and seconds % 86_400 == 0:
        return f"{seconds / 86_400:g} days"
    if seconds >= 3_600 and seconds % 3_600 == 0:
        return f"{seconds / 3_600:g} h"
    return f"{seconds / 60:g} min"


def dam_published_at_utc(interval_start_utc: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """When ERCOT's day-ahead prices for the operating days holding these intervals were published (UTC)."""
    local_day = interval_start_utc.tz_convert(MARKET_TZ).normalize().tz_localize(None)
    publish_local = local_day - pd.Timedelta(days=1) + DAM_PUBLISH_LOCAL
    return publish_local.tz_localize(MARKET_TZ).tz_convert("UTC")
