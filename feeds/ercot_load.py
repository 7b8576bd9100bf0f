"""ERCOT system load from the public MIS (no key), through the same document list → zip download as the
price collectors: hourly actual load (NP6-345-CD "Actual System Load by Weather Zone", report type 13101),
15-minute system-wide demand (NP6-235-CD, 12340) and the hourly 7-day load forecast (NP3-560-CD "Seven-Day
Load Forecast by Forecast Zone", 12311). Report ids, columns and time conventions as gridstatus `ercot.py`
reads them: hour-ending Central time with DSTFlag=Y on the repeated fall-back hour; NP6-235-CD labels each
15-minute interval by its end (`TimeEnding`).

ERCOT's 5-minute system demand appears only on its public dashboard JSON, not on the MIS; the 15-minute
report is the finest MIS resolution, so it is the real-time load here.
"""

from __future__ import annotations

import pandas as pd

from hashpivot.feeds.base import FeedError, Observation, Payload
from hashpivot.feeds.ercot import MARKET_TZ, _ErcotMis

ACTUAL_COLUMNS = ["OperDay", "HourEnding", "TOTAL", "DSTFlag"]
DEMAND_COLUMNS = ["DeliveryDate", "TimeEnding", "Demand", "DSTFlag"]
FORECAST_COLUMNS = ["DeliveryDate", "HourEnding", "SystemTotal"]


def _localize(local_naive: pd.Series, dst_flag: pd.Series, source: str, document: Payload,
              nonexistent: str = "raise") -> pd.Series:
    """Central local times -> UTC; DSTFlag=Y marks the second (standard-time) pass of the repeated hour. A
    time that cannot be placed is a FeedError, not a pandas error."""
    is_dst = (dst_flag.astype(str).str.strip().str.upper() != "Y").to_numpy()
    try:
        index = pd.DatetimeIndex(local_naive).tz_localize(MARKET_TZ, ambiguous=is_dst, nonexistent=nonexistent)
    except (ValueError, TypeError) as exc:  # pytz/pandas NonExistentTimeError and AmbiguousTimeError are ValueErrors
        raise FeedError(source, f"a Central time cannot be converted to UTC ({exc})", document.body) from None
    return pd.Series(index.tz_convert("UTC"), index=local_naive.index)


def _hour_starts(day: pd.Series, hour_ending: pd.Series, dst_flag: pd.Series, source: str,
                 document: Payload) -> pd.Series:
    """UTC starts of hour-ending rows. From the start (its wall clock is ambiguous only in the repeated
    fall-back hour, which DSTFlag resolves); on the spring-forward day ERCOT labels the hour after 01:00 CST
    "03:00", whose start does not exist on the wall clock, so that one is its end (03:00 CDT) minus an hour."""
    starts = _localize(day + pd.to_timedelta(hour_ending - 1, unit="h"), dst_flag, source, document, "NaT")
    gap = starts.isna()
    if gap.any():
        ends = _localize((day + pd.to_timedelta(hour_ending, unit="h"))[gap], dst_flag[gap], source, document)
        starts[gap] = ends - pd.Timedelta(hours=1)
    return starts


def _hour_ending(df: pd.DataFrame, day_col: str, source: str, document: Payload) -> tuple[pd.Series, pd.Series]:
    """(operating day, hour ending 1..24) from `MM/DD/YYYY` and `HH:MM` cells; FeedError naming the columns."""
    try:
        day = pd.to_datetime(df[day_col].str.strip(), format="%m/%d/%Y")
        hour = df["HourEnding"].str.strip().str.split(":").str[0].astype(int)
    except (ValueError, TypeError, AttributeError) as exc:
        raise FeedError(source, f"bad {day_col}/HourEnding ({exc})", document.body) from None
    if not hour.between(1, 24).all():  # ERCOT marks the repeated hour with DSTFlag, never as hour 25
        raise FeedError(source, f"HourEnding {int(hour[~hour.between(1, 24)].iloc[0])} outside 1..24", document.body)
    return day, hour


def _complete_days(day: pd.Series, source: str, document: Payload) -> None:
    """Every operating day in the file has all its hours: 24, or 23/25 on the days Central time changes (a file
    cut at a line end still parses)."""
    for delivery, hours in day.groupby(day):
        midnight = pd.Timestamp(delivery).tz_localize(MARKET_TZ)
        expected = int((pd.Timestamp(delivery + pd.Timedelta(days=1)).tz_localize(MARKET_TZ) - midnight) / pd.Timedelta(hours=1))
        if len(hours) != expected:
            raise FeedError(source, f"{len(hours)} hours on {delivery:%Y-%m-%d} ({expected} expected): the file is "
                                    "incomplete", document.body)


def _values(df: pd.DataFrame, column: str, source: str, document: Payload) -> pd.Series:
    values = pd.to_numeric(df[column].str.strip(), errors="coerce")
    if values.isna().any():
        line = int(values.isna().to_numpy().argmax()) + 2
        raise FeedError(source, f"{column} on line {line} is not a number ({df[column].iloc[line - 2]!r})", document.body)
    return values


class _ErcotLoad(_ErcotMis):
    name = "ercot_mis"
    series = ""

    def _obs(self, starts_utc: pd.Series, values: pd.Series, document: Payload) -> list[Observation]:
        return [self.obs(self.series, start.to_pydatetime(), value, "MW", document.fetched_at_utc)
                for start, value in sorted(zip(starts_utc, values))]


class ErcotActualLoad(_ErcotLoad):
    """Hourly actual system load (NP6-345-CD, `TOTAL` MW), one operating day per file, published the next
    morning: `ercot_system_load_mw` by UTC hour start."""

    group = "load"
    report_type_id = 13101
    series = "ercot_system_load_mw"

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        document = payloads[-1]
        df = self._csv(document, ACTUAL_COLUMNS)
        day, hour = _hour_ending(df, "OperDay", self.name, document)
        _complete_days(day, self.name, document)
        starts = _hour_starts(day, hour, df["DSTFlag"], self.name, document)
        return self._obs(starts, _values(df, "TOTAL", self.name, document), document)


class ErcotSystemDemand(_ErcotLoad):
    """15-minute system-wide demand (NP6-235-CD, `Demand` MW), one hour per file, posted five minutes after
    it: `ercot_system_load_15min_mw` by UTC interval start (the file labels each interval by its end)."""

    group = "load_rt"
    report_type_id = 12340
    series = "ercot_system_load_15min_mw"

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        document = payloads[-1]
        df = self._csv(document, DEMAND_COLUMNS)
        try:
            day = pd.to_datetime(df["DeliveryDate"].str.strip(), format="%m/%d/%Y")
            hh_mm = df["TimeEnding"].str.strip().str.split(":", expand=True).astype(int)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise FeedError(self.name, f"bad DeliveryDate/TimeEnding ({exc})", document.body) from None
        if hh_mm.shape[1] != 2 or not (hh_mm[0].between(0, 24).all() and hh_mm[1].isin([0, 15, 30, 45]).all()):
            raise FeedError(self.name, "TimeEnding must be HH:MM on a 15-minute boundary", document.body)
        # the interval ending at midnight may be labelled 24:00 of its own day
        ends = _localize(day + pd.to_timedelta(hh_mm[0], unit="h") + pd.to_timedelta(hh_mm[1], unit="min"),
                         df["DSTFlag"], self.name, document)
        return self._obs(ends - pd.Timedelta(minutes=15), _values(df, "Demand", self.name, document), document)


class ErcotLoadForecast(_ErcotLoad):
    """ERCOT's hourly 7-day load forecast (NP3-560-CD, `SystemTotal` MW, the current operating day and the
    next seven), reissued every hour: `ercot_load_forecast_mw` by UTC hour start. Each fetch stores the newest
    issue; the store keeps the values a later issue replaced, so a read as of a past time sees the issue
    known then (feeds.market_store)."""

    group = "load_forecast"
    report_type_id = 12311
    series = "ercot_load_forecast_mw"

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        document = payloads[-1]
        df = self._csv(document, FORECAST_COLUMNS)
        if "InUseFlag" in df.columns:  # a file listing several models: only the one ERCOT uses
            df = df[df["InUseFlag"].str.strip().str.upper() == "Y"].reset_index(drop=True)
        day, hour = _hour_ending(df, "DeliveryDate", self.name, document)
        _complete_days(day, self.name, document)
        flags = df["DSTFlag"] if "DSTFlag" in df.columns else pd.Series("N", index=df.index)
        starts = _hour_starts(day, hour, flags, self.name, document)
        return self._obs(starts, _values(df, "SystemTotal", self.name, document), document)
