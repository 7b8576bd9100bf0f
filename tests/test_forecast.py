"""Forecasts use only what was published before the decision time; missing data names series and range."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.calendar import dam_published_at_utc
from hashpivot.models.config import load_config
from hashpivot.models.errors import DataError
from hashpivot.optimizer.forecast import build_forecast, default_at

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"


@pytest.fixture(scope="module")
def market():
    return load_market_data()


@pytest.fixture(scope="module")
def cfg():
    return load_config(EXAMPLE)


def _with_future_spike(market, at: pd.Timestamp):
    """Every series after `at` replaced by absurd values: a forecast as of `at` must not move."""
    power = market.power.copy()
    power.loc[power.index >= at - pd.Timedelta(minutes=30), :] = 9_000.0
    btc = market.btc.copy()
    btc.loc[btc.index >= at - pd.Timedelta(minutes=30), "btc_usd"] = 1_000_000.0
    network = market.network.copy()
    network.loc[network.index >= at.floor("D"), "difficulty"] = 1e20
    return dataclasses.replace(market, power=power, btc=btc, network=network)


@pytest.mark.parametrize("at", ["2024-08-05T14:00Z", "2024-08-05T20:30Z", "2025-03-09T07:00Z", "2024-11-03T06:00Z"])
def test_future_spike_does_not_change_the_forecast(market, cfg, at):
    at = pd.Timestamp(at)
    base = build_forecast(cfg, market, at)
    spiked = build_forecast(cfg, _with_future_spike(market, at), at)
    # the day-ahead curve published before `at` may legitimately cover hours after `at`: restore it
    np.testing.assert_allclose(base.hashprice_usd_per_th_day, spiked.hashprice_usd_per_th_day)
    np.testing.assert_allclose(base.btc_usd, spiked.btc_usd)
    assert base.notes["last_rt_price_usd_per_mwh"] == spiked.notes["last_rt_price_usd_per_mwh"]
    assert base.notes["last_rt_interval_start_utc"] == spiked.notes["last_rt_interval_start_utc"]


def test_real_time_price_of_an_interval_is_known_only_once_it_ends(market, cfg):
    f = build_forecast(cfg, market, "2024-08-05T14:30Z")
    assert f.notes["last_rt_interval_start_utc"] == "2024-08-05T13:00:00+00:00"
    f = build_forecast(cfg, market, "2024-08-05T15:00Z")
    assert f.notes["last_rt_interval_start_utc"] == "2024-08-05T14:00:00+00:00"


def test_day_ahead_published_at_1330_central_the_day_before():
    # operating day 2024-08-06 (CDT, UTC-5) -> published 2024-08-05 13:30 CDT = 18:30 UTC
    idx = pd.DatetimeIndex(["2024-08-06T05:00Z", "2024-08-07T04:00Z"])
    assert list(dam_published_at_utc(idx)) == [pd.Timestamp("2024-08-05T18:30Z")] * 2
    # in winter (CST, UTC-6): operating day 2025-01-16 -> 2025-01-15 13:30 CST = 19:30 UTC
    assert dam_published_at_utc(pd.DatetimeIndex(["2025-01-16T06:00Z"]))[0] == pd.Timestamp("2025-01-15T19:30Z")


def test_next_day_prices_enter_the_forecast_only_after_publication(market, cfg):
    before = build_forecast(cfg, market, "2024-08-05T18:00Z")
    after = build_forecast(cfg, market, "2024-08-05T19:00Z")
    # 24 hourly steps from 18:00 UTC reach 17:00 UTC next day; today's operating day ends 05:00 UTC
    assert before.notes["steps_with_day_ahead"] == 11
    assert after.notes["steps_with_day_ahead"] == 24


def test_default_time_is_the_end_of_the_last_real_time_interval(market):
    assert default_at(market) == market.power.index[-1] + pd.Timedelta(hours=1)


def test_missing_data_names_the_series_and_the_available_range(market, cfg):
    with pytest.raises(DataError, match=r"power_rt_usd_per_mwh: no value within .* before 2019-01-01T00:00Z .*available: 2024-01-01T0\d:00Z \.\. 2025-05-31"):
        build_forecast(cfg, market, "2019-01-01T00:00Z")
    with pytest.raises(DataError, match=r"power_rt_usd_per_mwh: no value within 3 h before 2026-01-01T00:00Z \(last value ends 2025-06-01"):
        build_forecast(cfg, market, "2026-01-01T00:00Z")


def test_the_subsidy_follows_the_block_height_across_the_2024_halving(market, cfg):
    """Block 840,000 was mined 2024-04-20 00:09 UTC: twelve hours later the subsidy is 3.125 BTC, although the
    last network day that has ended (April 19) was mined at 6.25."""
    after = build_forecast(cfg, market, "2024-04-20T12:00Z")
    before = build_forecast(cfg, market, "2024-04-19T23:00Z")
    assert after.notes["subsidy_btc"] == 3.125 and before.notes["subsidy_btc"] == 6.25
    from hashpivot.models.hashprice import hashprice_usd_per_th_day

    n = after.notes
    assert after.hashprice_usd_per_th_day[0] == pytest.approx(
        hashprice_usd_per_th_day(n["difficulty"], after.btc_usd[0], 3.125, n["fees_btc_per_block"]))
    assert after.hashprice_usd_per_th_day[0] < 0.07 < before.hashprice_usd_per_th_day[0]  # was 0.1104 with 6.25


@pytest.mark.parametrize("lag_hours", [0, 26, 30, 40, None])
def test_a_stale_or_missing_ercot_load_prices_4cp_at_the_climatology_not_zero(market, cfg, lag_hours):
    """Within the load's 36 h staleness limit the forecaster decides (26-30 h late: persistence); past it, or with no
    load at all, every afternoon of a 4CP month carries the hour-of-day climatology, with a note - a blind site is
    never told p = 0 on the day of the August 2024 peak."""
    from hashpivot.optimizer.forecast import four_cp_step_probability
    from hashpivot.optimizer.peak_forecast import climatology_probabilities

    at = pd.Timestamp("2024-08-20T18:30Z")  # 13:30 CT on the August 2024 peak day
    hour = pd.Timedelta(hours=1)
    load = market.load.iloc[:0] if lag_hours is None else market.load[market.load.index + hour <= at - lag_hours * hour]
    f = build_forecast(cfg, dataclasses.replace(market, load=load), at)
    grid = pd.DatetimeIndex(f.interval_start_utc)
    hours = grid.floor("h").unique()
    clim = four_cp_step_probability(climatology_probabilities(hours), grid, f.step_minutes, cfg.power.four_cp.min_probability)
    four_pm = int(np.flatnonzero(grid.tz_convert("US/Central").hour == 16)[0])
    assert f.four_cp_probability[four_pm] > 0.001
    if lag_hours is None or lag_hours > 36:
        np.testing.assert_allclose(f.four_cp_probability, clim)
        assert "climatology" in f.notes["four_cp"] and "limit 36 h" in f.notes["four_cp"]
    else:
        assert "four_cp" not in f.notes and not np.allclose(f.four_cp_probability, clim)
