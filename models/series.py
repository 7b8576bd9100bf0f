"""The series hashpivot stores and decides with: units, plausible values and the one staleness table (pure data).

A series name is a family, optionally followed by `.<key>` (settlement point, GPU model):
`power_rt_usd_per_mwh.HB_WEST`, `gpu_rate_usd_per_gpu_hour.H100`. `staleness` is how old the latest value may
be for a decision to use it; `feeds status`, `feeds fetch`, the metrics and the forecast all read it here.
Feed groups and source names live here too, so config validation can check them below the feeds layer
(`hashpivot.feeds.registry` maps each source name to its collector; a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hashpivot.models.errors import DataError


@dataclass(frozen=True)
class SeriesSpec:
    family: str
    unit: str
    min_value: float
    max_value: float
    max_jump_fraction: float | None  # reject a value this far (relative) from the last good one; None = no filter
    staleness: timedelta  # older than this, the latest value is not fit to decide with (forecast, status, metrics)
    required: bool = True  # `feeds fetch` exits non-zero if a required series has no fresh value
    max_future: timedelta = timedelta(minutes=10)  # a live row further ahead than this is a bad clock or bad data
    max_age: timedelta = timedelta(days=3)  # a live row older than this is not news (history goes through import)


# ERCOT's system-wide offer cap is 5,000 USD/MWh (since 2023); real-time prices can exceed it slightly with adders,
# and go down to the -250 USD/MWh floor of offers. Other ISOs have similar ranges (CAISO 2,000 bid cap, soft 1,000).
SPECS: dict[str, SeriesSpec] = {
    s.family: s
    for s in [
        # BTC moves a few % a day: a decision on a price older than 2 h is refused (the daemon goes safe)
        SeriesSpec("btc_usd", "USD/BTC", 1_000.0, 10_000_000.0, 0.25, timedelta(hours=2)),
        SeriesSpec("difficulty", "1", 1e12, 1e17, 0.35, timedelta(days=4)),
        SeriesSpec("hashrate_th_s", "TH/s", 1e6, 1e12, None, timedelta(days=4), required=False),
        SeriesSpec("block_height", "blocks", 600_000, 5_000_000, 0.01, timedelta(hours=6)),
        SeriesSpec("subsidy_btc", "BTC", 0.0, 50.0, None, timedelta(days=4)),
        SeriesSpec("fees_btc_per_block", "BTC", 0.0, 20.0, None, timedelta(days=4)),
        SeriesSpec("hashprice_usd_per_th_day", "USD/TH/day", 1e-4, 10.0, 0.5, timedelta(hours=6)),
        # 3 h: long enough to bridge the two hours ERCOT's hourly files drop around DST, short enough that a
        # dead price feed sends the daemon to its safe allocation within the hour after
        SeriesSpec("power_rt_usd_per_mwh", "USD/MWh", -300.0, 5_500.0, None, timedelta(hours=3)),
        SeriesSpec("power_da_usd_per_mwh", "USD/MWh", -300.0, 5_500.0, None, timedelta(days=2), required=False,
                   max_future=timedelta(days=2, hours=1)),
        SeriesSpec("ambient_temp_c", "degC", -60.0, 60.0, None, timedelta(days=2), required=False,
                   max_future=timedelta(days=16)),
        # monthly rate cards (the embedded history) are valid until the next month's: 35 days
        SeriesSpec("gpu_rate_usd_per_gpu_hour", "USD/GPU-h", 0.01, 50.0, 2.0, timedelta(days=35),
                   max_age=timedelta(days=40)),
        SeriesSpec("gpu_rate_p25_usd_per_gpu_hour", "USD/GPU-h", 0.01, 50.0, None, timedelta(days=7), required=False),
        SeriesSpec("gpu_offers", "offers", 0.0, 1e6, None, timedelta(days=7), required=False),
        SeriesSpec("ancillary_usd_per_mw_hour", "USD/MW-h", -50.0, 10_000.0, None, timedelta(days=2), required=False),
        # ERCOT system load (4CP): 27,800..85,500 MW in 2021-2025 native load; no jump filter (a day's load swings
        # 40 % from night to afternoon, and every row is compared with the last stored one)
        # hourly actual (NP6-345-CD) is published once a day, ~05:50 Central, for the day before: its last hour
        # (23:00 Central) is ~31 h old just before the next file comes
        SeriesSpec("ercot_system_load_mw", "MW", 10_000.0, 150_000.0, None, timedelta(hours=36), required=False),
        # 15-minute system-wide demand (NP6-235-CD), published five minutes after each hour for that hour
        SeriesSpec("ercot_system_load_15min_mw", "MW", 10_000.0, 150_000.0, None, timedelta(hours=3), required=False),
        # the hourly 7-day forecast (NP3-560-CD) reaches the end of the eighth operating day ahead; reissued every
        # hour, an issue older than 6 h is not used (feeds.market_store: its rows' timestamps are days ahead)
        SeriesSpec("ercot_load_forecast_mw", "MW", 10_000.0, 150_000.0, None, timedelta(hours=6), required=False,
                   max_future=timedelta(days=8, hours=8)),
        # official 4CP intervals (one row per month, at the 15-minute interval's start): imported history read
        # whole (feeds.market_store), never decided on by freshness; `feeds status` shows it stale out of summer
        SeriesSpec("ercot_4cp_peak_mw", "MW", 10_000.0, 150_000.0, None, timedelta(days=62), required=False),
    ]
}


def family(series: str) -> str:
    return series.split(".", 1)[0]


def spec(series: str) -> SeriesSpec:
    try:
        return SPECS[family(series)]
    except KeyError:
        raise DataError(f"unknown series {series!r}; families: {', '.join(SPECS)}") from None


def staleness(series: str) -> timedelta:
    """How old the latest value of `series` (or its family) may be for a decision to use it."""
    return spec(series).staleness


# Collection groups (sources of one group are fallbacks for each other) and every source's name, in the order
# `hashpivot.feeds.registry` tries them.
FEED_GROUPS = ("btc", "network", "power_rt", "power_da", "power_rt_nyiso", "weather", "gpu", "load", "load_rt",
               "load_forecast")
FEED_SOURCES = ("mempool", "coinbase", "kraken", "coingecko", "ercot_mis", "nyiso_mis", "open_meteo", "vast", "akash")
