"""Backtests: hand-computed tiny cases, strategy ordering on real data, no look-ahead, the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import load_config, validate_config
from hashpivot.models.hashprice import blocks_per_day_per_th
from hashpivot.models.market import MarketData
from hashpivot.optimizer.milp.schedule import evaluate, profit_by_step
from hashpivot.optimizer.studies.backtest import run_backtest

ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2024-08-06T15:00Z")


def tiny_market(prices: list[float]) -> MarketData:
    """A day of 20 USD/MWh history, then `prices` from START (real-time = day-ahead, published in time).
    BTC price chosen so one 100 TH/s unit earns exactly 0.30 USD per hour."""
    index = pd.date_range(START - pd.Timedelta(days=2), START + pd.Timedelta(hours=len(prices) + 30), freq="h", tz="UTC")
    rt = pd.Series(20.0, index=index)
    rt.iloc[48:48 + len(prices)] = prices
    power = pd.DataFrame({"rt_price_usd_per_mwh": rt, "da_price_usd_per_mwh": rt})
    difficulty = 1e14
    btc_usd = 0.072 / (blocks_per_day_per_th(difficulty) * 3.125)
    days = pd.date_range(START.floor("D") - pd.Timedelta(days=5), START.floor("D") + pd.Timedelta(days=3), freq="D", tz="UTC")
    network = pd.DataFrame({"difficulty": difficulty, "fees_btc_per_block": 0.0, "subsidy_btc": 3.125}, index=days)
    btc = pd.DataFrame({"btc_usd": btc_usd}, index=index)
    return MarketData("HB_WEST", power, btc, network, pd.DataFrame(), pd.DataFrame())


def tiny_site(**site):
    raw = {
        "site": {"name": "tiny", "interconnect_cap_kw": 1000, "pue": 1.0, "ramp_limit_kw_per_step": 15,
                 "halls": [{"name": "h", "cap_kw": 1000}], **site},
        "asic_pools": [{"name": "a", "units_installed": 10, "hall": "h", "pool_fee": 0.0,
                        "modes": [{"name": "stock", "power_w": 3000, "hashrate_th": 100}]}],
        "horizon": {"steps": 4, "step_minutes": 60},
    }
    return validate_config(raw)


def profits(prices):
    cfg, market = tiny_site(), tiny_market(prices)
    end = START + pd.Timedelta(hours=len(prices))
    return {s: run_backtest(cfg, market, START, end, s) for s in ("perfect-foresight", "rolling", "breakeven", "always-on")}


def test_one_spike_with_a_ramp_limit_by_hand():
    # 10 units x 3 kW, 0.30 USD/h each; margin 0.24 USD/h at 20 USD/MWh, -1.20 USD/h at 500 USD/MWh;
    # the ramp (15 kW = 5 units per hour) means the fleet needs two hours to get off before the spike.
    r = profits([20.0, 20.0, 500.0, 20.0])
    on = {s: r[s].schedule.asic_units[0].sum(axis=0).tolist() for s in r}
    assert on["perfect-foresight"] == [10, 5, 0, 5]  # 0.24 x 20 unit-hours = 4.80
    assert r["perfect-foresight"].totals["profit_usd"] == pytest.approx(4.80)
    assert on["rolling"] == [10, 5, 0, 5]  # the day-ahead price showed the spike: same as perfect foresight
    assert r["rolling"].totals["profit_usd"] == pytest.approx(4.80)
    # strike price on the last real-time price: runs into the spike, then the ramp only allows 5 units off
    assert on["breakeven"] == [10, 10, 10, 5]  # 0.24 x 25 - 1.20 x 10 = -6.00
    assert r["breakeven"].totals["profit_usd"] == pytest.approx(-6.00)
    assert on["always-on"] == [10, 10, 10, 10]  # 0.24 x 30 - 1.20 x 10 = -4.80
    assert r["always-on"].totals["profit_usd"] == pytest.approx(-4.80)


def test_hourly_profit_adds_up():
    r = profits([20.0, 20.0, 500.0, 20.0])["rolling"]
    assert profit_by_step(r.problem, r.schedule)["objective_usd"].sum() == pytest.approx(evaluate(r.problem, r.schedule)["objective_usd"])


@pytest.fixture(scope="module")
def embedded():
    return load_config(ROOT / "configs" / "site.toml"), load_market_data()


@pytest.mark.slow
def test_perfect_foresight_beats_rolling_beats_always_on_on_real_data(embedded):
    cfg, market = embedded
    # without 4CP: two days with no 4CP peak in them would charge rolling's insurance and nobody else's
    cfg = cfg.model_copy(update={"power": cfg.power.model_copy(update={"four_cp": None})})
    r = {s: run_backtest(cfg, market, "2024-08-01", "2024-08-03", s).totals["profit_usd"]
         for s in ("perfect-foresight", "rolling", "always-on", "breakeven")}
    assert r["perfect-foresight"] >= r["rolling"] * (1 - 1e-4) >= r["always-on"] * (1 - 1e-4)
    assert r["rolling"] > r["breakeven"]  # ramps and start-up costs make curtailment decisions interact


def test_a_future_spike_never_changes_an_earlier_decision(embedded):
    cfg, market = embedded
    start, hours, spike_at = pd.Timestamp("2024-08-05T00:00Z"), 12, 6
    when = start + pd.Timedelta(hours=spike_at)
    power = market.power.copy()
    power.loc[power.index >= when, "rt_price_usd_per_mwh"] = 4_000.0
    btc = market.btc.copy()
    btc.loc[btc.index >= when, "btc_usd"] = 10.0
    spiked = dataclasses.replace(market, power=power, btc=btc)
    end = start + pd.Timedelta(hours=hours)
    a = run_backtest(cfg, market, start, end, "rolling").schedule
    b = run_backtest(cfg, spiked, start, end, "rolling").schedule
    # hour 6's real-time price is known when hour 6 ends: decisions for hours 0..6 must be identical
    for ua, ub in zip(a.asic_units, b.asic_units):
        np.testing.assert_array_equal(ua[:, : spike_at + 1], ub[:, : spike_at + 1])
    assert any(not np.array_equal(ua[:, spike_at + 1:], ub[:, spike_at + 1:]) for ua, ub in zip(a.asic_units, b.asic_units))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_backtest_cli_writes_tables_and_charts(tmp_path):
    proc = run_cli("backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--compare", "--out", str(tmp_path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["strategy"]: r for r in json.loads(proc.stdout)}
    assert rows["perfect-foresight"]["ratio_to_perfect_foresight"] == 1.0
    assert set(rows) == {"rolling", "breakeven", "strike-4cp", "always-on", "perfect-foresight"}
    assert all(r["four_cp_peaks"] == 0 and r["four_cp_charge_usd"] == 0 for r in rows.values())  # no peak on Aug 1
    for r in rows.values():  # the printed terms add up to the profit
        terms = (r["asic_revenue_usd"] + r["gpu_revenue_usd"] + r["resale_revenue_usd"] + r["reserve_revenue_usd"]
                 - r["energy_cost_usd"] - r["four_cp_charge_usd"] - r["block_cost_usd"] - r["startup_cost_usd"]
                 - r["sla_penalty_usd"])
        assert terms == pytest.approx(r["profit_usd"], abs=0.05), r["strategy"]
    for name in ("summary.csv", "cumulative-profit.png", "power-rolling.png", "steps-rolling.csv", "four-cp.png"):
        assert (tmp_path / name).stat().st_size > 300, name
    summary = pd.read_csv(tmp_path / "summary.csv", dtype=str)  # the same columns as the output, each term once
    assert list(summary.columns) == list(rows["rolling"])
    assert not {"objective_usd", "mining_revenue_usd", "four_cp_cost_usd"} & set(summary.columns)
    for count in ("four_cp_peaks", "four_cp_peaks_avoided", "four_cp_hours_curtailed", "ramp_events", "hours_without_data"):
        assert summary[count].str.fullmatch(r"\d+").all(), (count, list(summary[count]))  # 36, not 36.0
    steps = pd.read_csv(tmp_path / "steps-rolling.csv")
    assert len(steps) == 24 and steps["profit_usd"].sum() == pytest.approx(rows["rolling"]["profit_usd"], abs=0.05)


@pytest.mark.e2e
def test_backtest_table_prints_every_ratio_to_four_decimals(tmp_path):
    proc = run_cli("backtest", "--from", "2024-08-01", "--to", "2024-08-01T06:00Z", "--strategy", "always-on",
                   "--strategy", "perfect-foresight", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "ratio_to_perfect_foresight" in x)
    assert re.search(r"\b0\.\d{4}\b", line) and "1.0000" in line, proc.stdout  # not 0.8894 beside 1


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "message", "code"), [
    (["--strategy", "yolo"], "--strategy 'yolo': must be one of rolling", 2),  # a usage error, like --format xml
    (["--to", "2024-07-01"], "must be after --from", 1),
])
def test_backtest_cli_bad_input(args, message, code, tmp_path):
    base = ["backtest", "--from", "2024-08-01", "--out", str(tmp_path)]
    if "--to" not in args:
        base += ["--to", "2024-08-02"]
    proc = run_cli(*base, *args)
    assert proc.returncode == code and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dask_windows_match_local_windows(embedded):
    from hashpivot.optimizer.studies.backtest import run_backtest_windows

    cfg, market = embedded
    local = run_backtest_windows(cfg, market, "2024-08-01", "2024-08-02T12:00Z", "rolling", windows=3)
    dask = run_backtest_windows(cfg, market, "2024-08-01", "2024-08-02T12:00Z", "rolling", windows=3, executor="dask")
    assert {k: v for k, v in local.totals.items() if "time" not in k} == {k: v for k, v in dask.totals.items() if "time" not in k}
    np.testing.assert_array_equal(local.hourly_profit_usd, dask.hourly_profit_usd)
    single = run_backtest_windows(cfg, market, "2024-08-01", "2024-08-02T12:00Z", "rolling", windows=1)
    assert single.totals["profit_usd"] == pytest.approx(run_backtest(cfg, market, "2024-08-01", "2024-08-02T12:00Z", "rolling").totals["profit_usd"])


def test_week_long_data_holes_are_cut_out_not_invented(embedded):
    from hashpivot.optimizer.studies.backtest import data_gaps, run_backtest_windows

    cfg, market = embedded
    gaps = data_gaps(market, pd.Timestamp("2025-03-01", tz="UTC"), pd.Timestamp("2025-04-01", tz="UTC"))
    assert [(a.isoformat(), b.isoformat()) for a, b in gaps] == [("2025-03-09T07:00:00+00:00", "2025-03-16T08:00:00+00:00")]
    r = run_backtest_windows(cfg, market, "2025-03-09", "2025-03-17", "rolling")
    assert r.totals["hours_without_data"] == 170  # the 169-hour hole and the hour after it (no recent price yet)
    assert len(r.steps) == 8 * 24 - 170
    assert not r.steps["interval_start_utc"].between(pd.Timestamp("2025-03-09T07:00Z"), pd.Timestamp("2025-03-16T08:00Z")).any()


def test_a_hole_in_the_trailing_prices_is_logged_once_per_backtest_not_per_decision(caplog):
    """Two real-time hours missing just before the start sit in the trailing window of the first 23 decisions:
    a replay says so once, and how many decisions it held back; a single decision (the daemon) still says so."""
    import logging

    from hashpivot.optimizer.forecast import build_forecast

    market = tiny_market([20.0] * 24)
    hole = [START - pd.Timedelta(hours=3), START - pd.Timedelta(hours=2)]
    market = dataclasses.replace(market, power=market.power.drop(index=hole))
    with caplog.at_level(logging.WARNING):
        run_backtest(tiny_site(), market, START, START + pd.Timedelta(hours=24), "always-on")
    missing = [r for r in caplog.records if "have no real-time price" in r.getMessage()]
    assert len(missing) == 1 and "2 of the 24 hours" in missing[0].getMessage()
    assert "22 more always-on decisions had the same real-time hours missing" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_forecast(tiny_site(), market, START)
        build_forecast(tiny_site(), market, START + pd.Timedelta(hours=1))
    assert len([r for r in caplog.records if "have no real-time price" in r.getMessage()]) == 2


def test_both_panels_of_the_cumulative_profit_chart_use_one_money_unit():
    from hashpivot.optimizer.studies.charts import cumulative_profit_figure, usd_scale

    assert usd_scale([5_000.0, -900.0]) == (1.0, "USD")
    assert usd_scale([-12_000.0]) == (1e3, "thousand USD")
    assert usd_scale([3e5, -1.2e6]) == (1e6, "million USD")
    hours = pd.date_range("2024-08-19", periods=48, freq="h", tz="UTC")
    profits = {"rolling": pd.Series(12_000.0, index=hours), "always-on": pd.Series(11_000.0, index=hours)}
    fig = cumulative_profit_figure(profits, "t")  # totals reach 576 k, the lead 48 k: both in thousand USD
    assert [a.get_ylabel() for a in fig.axes] == ["lead over always-on (thousand USD)", "cumulative profit (thousand USD)"]
    assert max(fig.axes[1].lines[0].get_ydata()) == pytest.approx(576.0)


def test_a_first_decision_that_fails_names_its_hour_and_says_no_plan_covers_it():
    from hashpivot.models.errors import SolverError

    raw = tiny_site().model_dump()
    raw["solver"] = {"time_limit_s": 1e-9}  # no LP solves in a nanosecond
    with pytest.raises(SolverError, match="the decision for 2024-08-06T15:00Z failed and no earlier plan covers that hour"):
        run_backtest(validate_config(raw), tiny_market([20.0] * 3), START, START + pd.Timedelta(hours=3), "rolling")


def test_a_quarter_hour_site_is_backtested_hourly_with_the_same_horizon_and_rates(caplog):
    from hashpivot.optimizer.studies.backtest import _hour_cfg

    raw = tiny_site().model_dump()
    raw["horizon"] = {"steps": 96, "step_minutes": 15}
    raw["forecast"] = {"price_decay_per_step": 0.9}
    hourly = _hour_cfg(validate_config(raw))
    assert (hourly.horizon.steps, hourly.horizon.step_minutes) == (24, 60)  # 24 h, not 96 hours
    assert hourly.site.ramp_limit_kw_per_step == 60  # 15 kW per quarter hour
    assert hourly.forecast.price_decay_per_step == pytest.approx(0.9 ** 4)
    assert "horizon.step_minutes = 15 becomes 60: 24 steps (24 h)" in caplog.text


@pytest.mark.e2e
def test_four_cp_png_only_for_periods_with_4cp_months_and_an_unpriced_4cp_is_said(tmp_path):
    january = run_cli("backtest", "--from", "2025-01-10", "--to", "2025-01-11", "--out", str(tmp_path / "jan"))
    assert january.returncode == 0, january.stderr
    assert not (tmp_path / "jan" / "four-cp.png").exists() and "four-cp.png" not in january.stderr
    august = run_cli("backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--set", "power.four_cp.enabled=false",
                     "--out", str(tmp_path / "aug"))
    assert august.returncode == 0, august.stderr
    assert (tmp_path / "aug" / "four-cp.png").exists()
    assert "note: 4CP is not priced (power.four_cp.enabled = false), but each strategy is still charged" in august.stderr


@pytest.mark.e2e
def test_a_reused_output_folder_keeps_no_file_of_an_earlier_run(tmp_path):
    first = run_cli("backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--strategy", "breakeven", "--out", str(tmp_path))
    assert first.returncode == 0 and (tmp_path / "steps-breakeven.csv").exists(), first.stderr
    (tmp_path / "notes.txt").write_text("mine\n")
    again = run_cli("backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--strategy", "always-on", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "steps-breakeven.csv").exists() and not (tmp_path / "power-breakeven.png").exists()
    assert (tmp_path / "steps-always-on.csv").exists() and (tmp_path / "notes.txt").read_text() == "mine\n"
