"""Market data a solve or backtest reads: tz-aware UTC time series, one DataFrame per source family."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class MarketData:
    """Historical/live observations, all indexed by UTC interval start.

    power: columns `rt_price_usd_per_mwh`, `da_price_usd_per_mwh` (hourly) for one settlement point.
    btc: column `btc_usd` (hourly close).
    network: columns `difficulty`, `fees_btc_per_block`, `subsidy_btc` (daily, index = UTC day start).
    gpu_rates: column per GPU model (e.g. `H100`), USD per GPU-hour, index = period start.
    ancillary: columns `<product>_usd_per_mw_hour` (hourly, day-ahead cleared).
    load: column `system_load_mw` (ERCOT native load, hourly average, index = hour start; empty if not known).
    load_forecast_mw: ERCOT's latest published system load forecast per hour (live feed only), if stored.
    four_cp_intervals: official 4CP intervals, columns `year`, `month`, `interval_start_utc` (tz-aware UTC,
        the 15-minute interval's start), `cp_mw`; empty if not known.
    """

    settlement_point: str
    power: pd.DataFrame
    btc: pd.DataFrame
    network: pd.DataFrame
    gpu_rates: pd.DataFrame
    ancillary: pd.DataFrame
    source: str = "embedded"
    # How long after its interval start a row becomes known. Historical files hold interval averages/closes
    # (known when the interval ends); the store filters rows by their fetch time instead, so its values are
    # known at their timestamps (0).
    power_interval: pd.Timedelta = pd.Timedelta(hours=1)
    btc_interval: pd.Timedelta = pd.Timedelta(hours=1)
    network_interval: pd.Timedelta = pd.Timedelta(days=1)
    ambient_temp_c: pd.Series | None = None  # hourly forecast for the site (weather feed), if stored
    load: pd.DataFrame = field(default_factory=lambda: _empty(["system_load_mw"]))
    load_interval: pd.Timedelta = pd.Timedelta(hours=1)
    load_forecast_mw: pd.Series | None = None
    four_cp_intervals: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["year", "month", "interval_start_utc", "cp_mw"]))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="interval_start_utc"), dtype=float)
