"""Forecast for the horizon, built from market data as of a time with no look-ahead (pure).

What is known at `at`:
- real-time prices and BTC closes of intervals that have ended (start + 1 h <= at);
- ERCOT day-ahead prices (energy and ancillary) of an operating day once its DAM results are out,
  13:30 America/Chicago the day before;
- network data of UTC days that have ended; GPU rate cards from the start of their month.

Power price for step k: the day-ahead price where published plus the latest real-time deviation from it,
decaying by `price_decay_per_step` each step; where no day-ahead price is published, the latest real-time
price blended toward the trailing mean with the same decay. Hashprice and GPU rates: persistence.

4CP (with `[power.four_cp]` enabled and load data): per step, the probability that it holds its month's 4CP
interval, from `optimizer.peak_forecast.peak_probabilities` on the load of hours that have ended, the published
day-ahead prices and ERCOT's load forecast where stored; 0 otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hashpivot.models.calendar import dam_published_at_utc, duration_text, to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import DataError
from hashpivot.models.hashprice import (
    BLOCKS_PER_HOUR,
    block_subsidy_btc,
    hashprice_usd_per_th_day,
)
from hashpivot.models.market import MarketData
from hashpivot.models.series import staleness
from hashpivot.optimizer.peak_forecast import climatology_probabilities, peak_probabilities

log = logging.getLogger(__name__)


@dataclass
class Forecast:
    """Inputs of one solve: one value per step (numpy arrays of length `steps`)."""

    interval_start_utc: list[pd.Timestamp]
    step_minutes: int
    power_price_usd_per_mwh: np.ndarray
    hashprice_usd_per_th_day: np.ndarray
    btc_usd: np.ndarray
    gpu_rate_usd_per_gpu_hour: dict[str, np.ndarray]
    ambient_temp_c: np.ndarray
    reserve_price_usd_per_mw_hour: np.ndarray
    notes: dict[str, object] = field(default_factory=dict)
    # per step: probability it holds its month's 4CP interval (None: 4CP not priced; see four_cp_step_probability)
    four_cp_probability: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return len(self.interval_start_utc)

    @property
    def step_hours(self) -> float:
        return self.step_minutes / 60.0


def published_day_ahead(series: pd.Series, at: pd.Timestamp) -> pd.Series:
    """The day-ahead values of `series` that were published by `at` (only the recent window is scanned)."""
    recent = series[series.index >= at - pd.Timedelta(days=3)]
    if recent.empty:
        return recent
    return recent[dam_published_at_utc(recent.index) <= at]


def default_at(market: MarketData) -> pd.Timestamp:
    """The latest time at which every real-time price in the data is known: the end of its last interval."""
    if market.power.empty:
        raise DataError("power prices: no rows at all")
    return market.power.index[-1] + market.power_interval


def _known(df: pd.DataFrame, at: pd.Timestamp, interval: pd.Timedelta, series: str) -> pd.DataFrame:
    """Rows whose interval has ended by `at`; DataError if none is younger than the series' staleness limit."""
    known = df[df.index + interval <= at].dropna(how="all")
    limit = pd.Timedelta(staleness(series))
    if known.empty or at - (known.index[-1] + interval) > limit:
        span = f"{df.index[0]:%Y-%m-%dT%H:%MZ} .. {df.index[-1]:%Y-%m-%dT%H:%MZ}" if len(df) else "no rows"
        last = f"last value ends {known.index[-1] + interval:%Y-%m-%dT%H:%MZ}" if len(known) else "no value before it"
        raise DataError(
            f"{series}: no value within {duration_text(limit)} before {at:%Y-%m-%dT%H:%MZ} ({last}); available: {span}"
        )
    return known


def _power_forecast(market: MarketData, grid: pd.DatetimeIndex, at: pd.Timestamp, decay: float, trailing_hours: int):
    rt_known = _known(market.power[["rt_price_usd_per_mwh"]], at, market.power_interval, "power_rt_usd_per_mwh")["rt_price_usd_per_mwh"]
    last_time, last_rt = rt_known.index[-1], float(rt_known.iloc[-1])
    window = rt_known[rt_known.index > last_time - pd.Timedelta(hours=trailing_hours)]
    trailing = float(window.mean())
    hours = pd.date_range(last_time.floor("h") - pd.Timedelta(hours=trailing_hours - 1), last_time.floor("h"), freq="h")
    missing = hours.difference(window.index.floor("h"))
    if len(missing):
        log.warning("power_rt: %d of the %d hours before %s have no real-time price (%s .. %s); the trailing mean "
                    "uses the %d that do", len(missing), trailing_hours, f"{at:%Y-%m-%dT%H:%MZ}",
                    f"{missing[0]:%Y-%m-%dT%H:%MZ}", f"{missing[-1]:%Y-%m-%dT%H:%MZ}", trailing_hours - len(missing),
                    extra={"trailing_hole_end": f"{missing[-1]:%Y-%m-%dT%H:%MZ}"})
    da = market.power["da_price_usd_per_mwh"]
    published = published_day_ahead(da, at)
    last_da = published.get(last_time.floor("h"))
    bias = last_rt - float(last_da) if last_da is not None and np.isfinite(last_da) else None
    hourly = grid.floor("h")
    prices = np.empty(len(grid))
    n_da = 0
    for k, t in enumerate(hourly):
        w = decay**k
        da_t = published.get(t)
        if da_t is not None and np.isfinite(da_t):
            prices[k] = float(da_t) + (bias * w if bias is not None else 0.0)
            n_da += 1
        else:
            prices[k] = w * last_rt + (1 - w) * trailing
    notes = {
        "last_rt_price_usd_per_mwh": last_rt,
        "last_rt_interval_start_utc": last_time.isoformat(),
        "trailing_mean_rt_usd_per_mwh": round(trailing, 2),
        "steps_with_day_ahead": n_da,
        "rt_hours_missing_in_trailing_window": int(len(missing)),
    }
    return prices, notes


def _ambient(market: MarketData, grid: pd.DatetimeIndex, at: pd.Timestamp, default_c: float, notes: dict) -> np.ndarray:
    """Hourly temperature forecast from the weather feed where it covers the step, else the configured value."""
    out = np.full(len(grid), default_c)
    series = market.ambient_temp_c
    if series is None or series.empty:
        return out
    recent = series[series.index >= at - pd.Timedelta(hours=6)]
    covered = 0
    for k, t in enumerate(grid.floor("h")):
        value = recent.get(t)
        if value is not None and np.isfinite(value):
            out[k] = float(value)
            covered += 1
    notes["steps_with_weather_forecast"] = covered
    return out


def subsidy_at(day: pd.Series, day_start: pd.Timestamp, at: pd.Timestamp) -> float:
    """The block subsidy at `at`, from the height: the last known day's start height plus its blocks, plus
    6 blocks an hour since it ended (so the hours after a halving get the new subsidy). Without heights in
    the data (the store keeps the subsidy itself), the day's subsidy."""
    if "height_at_day_start" not in day.index or not np.isfinite(day["height_at_day_start"]):
        return float(day["subsidy_btc"])
    hours_since = max((at - (day_start + pd.Timedelta(days=1))) / pd.Timedelta(hours=1), 0.0)
    return block_subsidy_btc(int(day["height_at_day_start"] + day["blocks"] + BLOCKS_PER_HOUR * hours_since))


def four_cp_step_probability(hourly: pd.Series, grid: pd.DatetimeIndex, step_minutes: int,
                             min_probability: float = 0.0) -> np.ndarray:
    """Per-step 4CP probability from per-hour ones (index = hour start, UTC): a step of `step_minutes` <= 60
    carries step_minutes/60 of its hour's probability. A 15-minute step is then the probability that it is the
    peak interval itself (the peak falls evenly in the hour's four intervals), and a 5-minute step a third of its
    interval's, since the interval's demand is the average of its three steps; either way the expected charge
    stays p_step x rate/4 x kW. Hours below `min_probability` count as 0."""
    p = hourly.where(hourly >= min_probability, 0.0) if min_probability > 0 else hourly
    values = p.reindex(pd.DatetimeIndex(grid).floor("h")).fillna(0.0).to_numpy(dtype=float)
    return np.clip(values, 0.0, 1.0) * min(step_minutes, 60) / 60.0


def four_cp_hourly(market: MarketData, at: pd.Timestamp, hours: pd.DatetimeIndex,
                   months: tuple[int, ...] = (6, 7, 8, 9)) -> tuple[pd.Series, str | None]:
    """Per UTC hour start, P(it holds its month's 4CP interval) from ERCOT load known at `at`, and None; or, with
    no load or its last hour older than the series' staleness limit, the hour-of-day climatology and the note
    that says so: blind to the load, every afternoon of a 4CP month carries its share of the risk - never p = 0.
    The one choice the decision (`build_forecast`) and `hashpivot fourcp` (`pipeline.four_cp`) both make."""
    load = market.load
    has_load = load is not None and not load.empty and "system_load_mw" in load.columns
    known = load[load.index + market.load_interval <= at].dropna(subset=["system_load_mw"]) if has_load else None
    limit = pd.Timedelta(staleness("ercot_system_load_mw"))
    ends = known.index[-1] + pd.Timedelta(hours=1) if known is not None and len(known) else None
    if ends is None or at - ends > limit:
        if not has_load:
            last = ("none at all (`hashpivot feeds fetch` collects it, `feeds import` loads ercot_native_load_hourly.csv "
                    "into the store; --data DIR reads that file, plain or .gz)")
        elif ends is None:
            last = "no hour of it has ended by the decision time"
        else:
            last = f"the last hour ends {ends:%Y-%m-%dT%H:%MZ}"
        note = (f"ERCOT system load in {market.source}: {last} (staleness limit {duration_text(limit)}); 4CP "
                "probability from the hour-of-day climatology, every afternoon of a 4CP month at risk")
        return climatology_probabilities(hours, months=months), note
    da = published_day_ahead(market.power["da_price_usd_per_mwh"], at) if "da_price_usd_per_mwh" in market.power else None
    return peak_probabilities(known, at, hours, da_price_usd_per_mwh=da, load_forecast_mw=market.load_forecast_mw,
                              months=months), None


def _four_cp(cfg: SiteConfig, market: MarketData, grid: pd.DatetimeIndex, at: pd.Timestamp, notes: dict) -> np.ndarray | None:
    """The horizon's per-step 4CP probabilities from data known at `at` (None when 4CP is not configured; the
    climatology, with a note, when ERCOT load is missing or stale: `four_cp_hourly`)."""
    four_cp = cfg.power.four_cp
    if four_cp is None or not four_cp.enabled:
        return None
    hours = pd.DatetimeIndex(grid).floor("h").unique()
    hourly, note = four_cp_hourly(market, at, hours, tuple(four_cp.months))
    if note:
        notes["four_cp"] = note
    p = four_cp_step_probability(pd.Series(np.asarray(hourly, dtype=float), index=hours), grid, cfg.horizon.step_minutes,
                                 four_cp.min_probability)
    notes["four_cp_max_probability"] = round(float(p.max()), 4) if len(p) else 0.0
    return p


def build_forecast(cfg: SiteConfig, market: MarketData, at: pd.Timestamp | str | None = None) -> Forecast:
    """Assemble the horizon's inputs from `market` as known at `at` (default: the data's latest time)."""
    at = default_at(market) if at is None else to_utc(at)
    step = pd.Timedelta(minutes=cfg.horizon.step_minutes)
    start = at.floor(step)
    grid = pd.date_range(start, periods=cfg.horizon.steps, freq=step, tz="UTC")

    prices, notes = _power_forecast(market, grid, at, cfg.forecast.price_decay_per_step, cfg.forecast.trailing_hours)

    btc_known = _known(market.btc, at, market.btc_interval, "btc_usd")
    btc_usd = float(btc_known["btc_usd"].iloc[-1])
    known_net = _known(market.network, at, market.network_interval, "difficulty")
    net = known_net.iloc[-1]
    subsidy = subsidy_at(net, known_net.index[-1], at)
    hashprice = hashprice_usd_per_th_day(float(net["difficulty"]), btc_usd, subsidy, float(net["fees_btc_per_block"]))
    notes.update(
        difficulty=float(net["difficulty"]),
        subsidy_btc=subsidy,
        fees_btc_per_block=float(net["fees_btc_per_block"]),
        btc_usd_interval_start_utc=btc_known.index[-1].isoformat(),
    )

    gpu_rates: dict[str, np.ndarray] = {}
    for pool in cfg.gpu_pools:
        if pool.rate_series is not None:
            if pool.rate_series not in market.gpu_rates.columns:
                raise DataError(
                    f"gpu_pools.{pool.name}.rate_series = {pool.rate_series!r}: no such GPU rate series in the data; "
                    f"it has {', '.join(market.gpu_rates.columns)}"
                )
            series = market.gpu_rates[[pool.rate_series]].dropna()
            rate = float(_known(series, at, pd.Timedelta(0), f"gpu_rate_usd_per_gpu_hour.{pool.rate_series}").iloc[-1, 0])
        else:
            rate = float(pool.marketplace_rate_usd_per_gpu_hour or 0.0)  # 0: a contract-only pool
        gpu_rates[pool.name] = np.full(len(grid), rate)

    reserve = np.zeros(len(grid))
    res_cfg = cfg.power.reserve
    if res_cfg is not None and res_cfg.enabled:
        if res_cfg.capacity_price_usd_per_mw_hour is not None:
            reserve[:] = res_cfg.capacity_price_usd_per_mw_hour
        else:
            column = f"{res_cfg.product}_usd_per_mw_hour"
            if market.ancillary.empty:
                notes["reserve"] = f"no ancillary prices in {market.source}: reserve not offered"
            elif column not in market.ancillary.columns:
                raise DataError(f"ancillary prices: no {column} series in the data (power.reserve.product = {res_cfg.product!r})")
            else:
                anc = market.ancillary[column].dropna()
                published = published_day_ahead(anc, at)
                if published.empty:
                    raise DataError(f"ancillary prices: no published {column} before {at:%Y-%m-%dT%H:%MZ}")
                last = float(published.iloc[-1])
                reserve[:] = [float(published.get(t, last)) for t in grid.floor("h")]

    four_cp = _four_cp(cfg, market, grid, at, notes)
    return Forecast(
        interval_start_utc=list(grid),
        step_minutes=cfg.horizon.step_minutes,
        power_price_usd_per_mwh=prices,
        hashprice_usd_per_th_day=np.full(len(grid), hashprice),
        btc_usd=np.full(len(grid), btc_usd),
        gpu_rate_usd_per_gpu_hour=gpu_rates,
        ambient_temp_c=_ambient(market, grid, at, cfg.forecast.ambient_temp_c, notes),
        reserve_price_usd_per_mw_hour=reserve,
        notes={"at_utc": at.isoformat(), **notes},
        four_cp_probability=four_cp,
    )
