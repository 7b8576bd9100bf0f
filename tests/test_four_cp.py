"""4CP: the cost family on a tiny hand-solved problem, kept-model refreshes, the explanation, the realised
charge on a hand-built schedule and in a backtest, breakeven's reserve and lean modes, strike-4cp's call-day
rule (no future data), the per-step probability of sub-hourly steps, and `hashpivot fourcp`.

Conventions of tests/builders.py: hashprice 24 USD/TH/day (1 TH/s earns 1 USD per hour), 1-hour steps, PUE 1.
A 4CP rate of 40 USD/kW-year is 10 USD per kW at one of the four peaks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashpivot.models.config import validate_config
from hashpivot.optimizer.forecast import four_cp_step_probability
from hashpivot.optimizer.milp.explain import explain
from hashpivot.optimizer.milp.families import violations
from hashpivot.optimizer.milp.schedule import Schedule, evaluate
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve
from hashpivot.optimizer.studies.backtest import run_backtest
from hashpivot.optimizer.studies.fourcp import is_call_day, peak_outcomes, realised_probability
from tests.builders import asic, problem
from tests.test_backtest import START, tiny_market, tiny_site

ROOT = Path(__file__).resolve().parents[1]
A = [(1.0, 3.0)]  # 1 kW, earns 3 USD/h: margin 2 USD/h per kW at 1000 USD/MWh
B = [(2.0, 5.0)]  # 2 kW, earns 5 USD/h: margin 1.5 USD/h per kW


def four_cp_problem(probability, rate=40.0, **kw):
    p = problem([1000.0] * len(probability), [asic("A", 10, A), asic("B", 10, B)], **kw)
    p.four_cp_probability = np.asarray(probability, dtype=float)
    p.four_cp_rate_usd_per_kw_year = rate
    return p


@pytest.mark.parametrize("strategy", ["auto", "mip"])
def test_four_cp_family_by_hand(strategy):
    # expected 4CP cost per kW: 0.5 x 10 = 5 at step 0 (above both margins: all off), 0.1 x 10 = 1 at step 1
    # (below both: A earns 2 - 1 = 1 per unit, B 3 - 2 = 1 per unit): 10 + 10 = 20; step 1 pays 1 x 30 kW of 4CP
    p = four_cp_problem([0.5, 0.1])
    sol = solve(p, SolveSettings(mip_rel_gap=1e-6, strategy=strategy))
    assert violations(p, sol.schedule) == []
    assert sol.objective_usd == pytest.approx(20.0, abs=1e-6)
    assert sol.bound_usd == pytest.approx(20.0, abs=1e-6)  # the certificate: model objective = checker's profit
    assert sol.breakdown["four_cp_cost_usd"] == pytest.approx(30.0)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [0, 10])
    np.testing.assert_array_equal(sol.schedule.asic_units[1][0], [0, 10])


def test_a_kept_model_takes_the_next_intervals_probabilities():
    # one kept LP, two intervals that differ only in their 4CP probabilities: the second solve must match a fresh one
    kept = PersistentLP(SolveSettings())
    first = solve(four_cp_problem([0.5, 0.1]), persistent=kept)
    second_problem = four_cp_problem([0.0, 0.5])
    second = solve(second_problem, persistent=kept)
    assert kept.rebuilds == 1
    assert first.objective_usd == pytest.approx(20.0)
    assert second.objective_usd == pytest.approx(solve(four_cp_problem([0.0, 0.5])).objective_usd)
    assert second.objective_usd == pytest.approx(50.0)  # step 0 all on (20 + 30), step 1 all off


def test_a_pool_curtailed_for_4cp_says_so():
    # p = 0.25 -> 2.5 USD per kW = 2,500 USD/MW-step; A's margin is 2,000 USD/MW-step: off for 4CP
    p = four_cp_problem([0.25, 0.0])
    why = {d.name: d.reason for d in explain(solve(p)).pools}
    assert why["A"] == "curtailed for a likely 4CP peak (p = 0.25, expected cost 2,500 USD/MW-step > margin 2,000)"
    assert why["B"].startswith("curtailed for a likely 4CP peak (p = 0.25")


def test_a_pool_ramping_down_ahead_of_a_peak_says_so():
    # all 10 A units on now, 5 kW/step of ramp, p = 0.9 at step 1 (9 USD per kW against the 2 USD margin): staying on
    # earns 20 - 5 x 7 + 20 = 5, ramping 5, 0, 5 earns 10 + 0 + 10 = 20
    p = problem([1000.0] * 3, [asic("A", 10, A, initial={"m0": 10})], ramp_kw=5.0)
    p.four_cp_probability, p.four_cp_rate_usd_per_kw_year = np.array([0.0, 0.9, 0.0]), 40.0
    why = {d.name: d.reason for d in explain(solve(p)).pools}
    assert why["A"] == ("5/10 units on, the rest curtailed: ramping down ahead of a likely 4CP peak at step 1 "
                        "(p = 0.9, expected cost 9,000 USD/MW-step > margin 2,000)")


def test_realised_charge_on_a_hand_built_schedule():
    grid = pd.date_range("2024-08-20T19:00Z", periods=4, freq="h")
    intervals = pd.DataFrame({"year": [2024, 2024], "month": [8, 7],
                              "interval_start_utc": pd.to_datetime(["2024-08-20T21:45Z", "2024-07-01T21:45Z"], utc=True),
                              "cp_mw": [85357.6, 81184.4]})
    prob = realised_probability(intervals, grid, (6, 7, 8, 9))
    np.testing.assert_array_equal(prob, [0, 0, 1, 0])  # 21:45 lies in the hour from 21:00; July's is outside the grid
    p = problem([1000.0] * 4, [asic("A", 10, A)], pue=1.1)
    p.four_cp_probability, p.four_cp_rate_usd_per_kw_year = prob, 68.547301
    units = np.array([[10, 10, 4, 10]], dtype=float)
    sched = Schedule(asic_units=[units], gpu_contract_on=[], gpu_market_on=[], reserve_kw=np.zeros(4))
    # 4 units x 1 kW x PUE 1.1 = 4.4 kW at the meter in the peak hour, at 68.547301 / 4 USD per kW
    assert evaluate(p, sched)["four_cp_cost_usd"] == pytest.approx(4.4 * 68.547301 / 4)
    out = peak_outcomes(p, sched, intervals, grid, (6, 7, 8, 9))
    assert out["four_cp_peaks"] == 1 and out["four_cp_peaks_avoided"] == 0  # 4.4 kW > 10 % of the median 11 kW
    units[0, 2] = 1  # 1.1 kW <= 1.1 kW: avoided
    assert peak_outcomes(p, sched, intervals, grid, (6, 7, 8, 9))["four_cp_peaks_avoided"] == 1


def with_four_cp(market, hour: int):
    at = START + pd.Timedelta(hours=hour, minutes=30)
    intervals = pd.DataFrame({"year": [at.year], "month": [at.month], "interval_start_utc": [at], "cp_mw": [85000.0]})
    return dataclasses.replace(market, four_cp_intervals=intervals)


def test_every_strategy_is_charged_the_realised_4cp_cost():
    # 10 units x 3 kW at 20 USD/MWh, the 4CP interval in hour 1, rate 40 USD/kW-year = 10 USD per kW
    cfg = tiny_site()
    cfg = cfg.model_copy(update={"power": cfg.power.model_copy(update={
        "four_cp": validate_config({"site": cfg.site.model_dump(), "power": {"four_cp": {"rate_usd_per_kw_year": 40.0}}}).power.four_cp})})
    market = with_four_cp(tiny_market([20.0] * 4), 1)
    end = START + pd.Timedelta(hours=4)
    on = run_backtest(cfg, market, START, end, "always-on")
    assert on.totals["four_cp_charge_usd"] == pytest.approx(300.0)  # 30 kW x 10 USD
    assert on.totals["profit_usd"] == pytest.approx(0.24 * 40 - 300.0)
    assert on.totals["four_cp_peaks_avoided"] == 0
    pf = run_backtest(cfg, market, START, end, "perfect-foresight")
    # off in hour 1; the 15 kW ramp allows 5 units either side of it: 5 + 0 + 5 + 10 unit-hours x 0.24 USD
    assert pf.schedule.asic_units[0].sum(axis=0).tolist() == [5, 0, 5, 10]
    assert pf.totals["four_cp_charge_usd"] == pytest.approx(0.0)
    assert pf.totals["profit_usd"] == pytest.approx(4.80)
    assert pf.totals["four_cp_peaks_avoided"] == 1


def reserve_site(**site):
    cfg = tiny_site(**site)
    raw = {"site": cfg.site.model_dump(), "power": {"reserve": {"capacity_price_usd_per_mw_hour": 5.0, "max_offer_mw": 0.02}}}
    return cfg.model_copy(update={"power": validate_config(raw).power})


def test_breakeven_offers_reserve_from_its_running_asics_within_the_models_limits():
    # breakeven runs [10, 10, 10, 5] units (test_backtest's spike): 30, 30, 30, 15 kW of ASIC load; the offer is
    # min(max offer 20 kW, PUE x ASIC kW) every hour, at 5 USD/MW-h
    cfg, market = reserve_site(), tiny_market([20.0, 20.0, 500.0, 20.0])
    r = run_backtest(cfg, market, START, START + pd.Timedelta(hours=4), "breakeven")
    assert r.schedule.asic_units[0].sum(axis=0).tolist() == [10, 10, 10, 5]
    np.testing.assert_allclose(r.schedule.reserve_kw, [20, 20, 20, 15])
    assert r.totals["reserve_revenue_usd"] == pytest.approx(75 * 5 / 1000)
    always = run_backtest(cfg, market, START, START + pd.Timedelta(hours=4), "always-on")
    assert always.totals["reserve_revenue_usd"] == 0  # the naive baseline stays naive


def test_breakeven_uses_a_leaner_mode_when_the_cap_binds():
    # cap 24 kW: 8 units in stock (3 kW, 100 TH/s) = 800 TH/s, or 4 stock + 6 eco (2 kW, 80 TH/s) = 880 TH/s
    raw = tiny_site(interconnect_cap_kw=24, ramp_limit_kw_per_step=None).model_dump()
    raw["asic_pools"][0]["modes"] = [{"name": "eco", "power_w": 2000, "hashrate_th": 80},
                                     {"name": "stock", "power_w": 3000, "hashrate_th": 100}]
    cfg = validate_config(raw)
    r = run_backtest(cfg, tiny_market([20.0] * 2), START, START + pd.Timedelta(hours=2), "breakeven")
    np.testing.assert_array_equal(r.schedule.asic_units[0], [[6, 6], [4, 4]])


def june_load(peak_by_day: dict[int, float]) -> pd.Series:
    """Hourly load of June 2024 (Central days), each day's peak at 16:00 Central as given (default 70,000 MW)."""
    local = pd.date_range("2024-06-01", "2024-07-01", freq="h", tz="America/Chicago", inclusive="left")
    shape = 0.8 + 0.2 * np.exp(-((local.hour - 16) ** 2) / 8.0)
    peak = np.array([peak_by_day.get(d, 70_000.0) for d in local.day])
    return pd.Series(shape * peak, index=local.tz_convert("UTC"))


def day_start(day: int) -> pd.Timestamp:
    return pd.Timestamp(f"2024-06-{day:02d}", tz="America/Chicago").tz_convert("UTC")


def test_strike_call_day_rule_by_hand_and_without_future_data():
    load = june_load({3: 80_000.0, 4: 76_000.0, 5: 77_500.0})
    months = (6, 7, 8, 9)
    assert is_call_day(load, day_start(1), months)  # no month-to-date maximum yet
    assert is_call_day(load, day_start(2), months)  # yesterday = the month's maximum so far
    assert is_call_day(load, day_start(4), months)  # yesterday (day 3) set the maximum
    assert not is_call_day(load, day_start(5), months)  # 76,000 < 0.96 x 80,000 = 76,800
    assert is_call_day(load, day_start(6), months)  # 77,500 >= 76,800
    assert not is_call_day(load, day_start(8), months)  # 70,000
    assert not is_call_day(load, pd.Timestamp("2024-05-20", tz="America/Chicago").tz_convert("UTC"), months)
    # whatever happens from the day's start on cannot change its call
    for day in range(2, 30):
        future = load.copy()
        future[future.index >= day_start(day)] *= 1.5
        assert is_call_day(future, day_start(day), months) == is_call_day(load, day_start(day), months)


def test_sub_hourly_steps_carry_their_share_of_the_hours_probability():
    hourly = pd.Series([0.0, 0.4], index=pd.date_range("2024-08-20T20:00Z", periods=2, freq="h"))
    grid = pd.date_range("2024-08-20T20:00Z", periods=8, freq="15min")
    p = four_cp_step_probability(hourly, grid, 15)
    np.testing.assert_allclose(p, [0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1])  # the peak interval is one of the hour's four
    assert p.sum() == pytest.approx(0.4)  # a flat load through the hour is charged as in an hourly model
    np.testing.assert_allclose(four_cp_step_probability(hourly, grid, 15, min_probability=0.5), 0.0)


@pytest.mark.e2e
def test_fourcp_cli_prints_today_and_tomorrow():
    run = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--at", "2024-08-20T15:00Z",
                          "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) == 48 and rows[0]["hour_start_central"] == "2024-08-20 00:00"
    assert all(0.0 <= r["four_cp_probability"] <= 1.0 and r["four_cp_basis"] == "forecast" for r in rows)
    planned = [r for r in rows if r["planned_site_kw"] is not None]
    assert len(planned) == 24 and planned[0]["interval_start_utc"] == "2024-08-20T15:00Z"
    for r in planned:
        assert r["planned_expected_cost_usd"] == pytest.approx(r["four_cp_probability"] * 68.547301 / 4 * r["planned_site_kw"], abs=1.0)
        assert 0.0 <= r["four_cp_curtailment_kw"] <= r["planned_curtailment_kw"] + 0.1  # a part of what the cap leaves
    by_hour = {r["hour_start_central"][11:]: r for r in planned if r["hour_start_central"].startswith("2024-08-20")}
    top = max(by_hour, key=lambda h: by_hour[h]["four_cp_curtailment_kw"])
    assert top == max(by_hour, key=lambda h: by_hour[h]["four_cp_probability"]) == "16:00"  # the likeliest peak hour
    assert by_hour["16:00"]["four_cp_curtailment_kw"] > 20_000  # curtails most for 4CP
    assert by_hour["23:00"]["four_cp_curtailment_kw"] == 0.0 < by_hour["23:00"]["four_cp_probability"] < 1e-3
    assert all(r["four_cp_curtailment_kw"] is None for r in rows if r["planned_site_kw"] is None)
    table = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--at", "2024-08-20T15:00Z"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and max(len(line) for line in lines) <= 80 and "…" not in table.stdout
    cells = {c[0]: c[1:] for c in ([x.strip() for x in line.strip("│").split("│")] for line in lines if line.startswith("│"))}
    assert cells["08-20 16:00"][0] == "0.0037"  # whole hours and numbers at 80 columns
    assert all(p != "0" or cap == "0" for p, _, cap, *_ in cells.values())  # a p that costs something is never "0"
    assert "4CP kW" in table.stdout and "note:" not in table.stderr
    november = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--at", "2024-11-20T15:00Z",
                               "--format", "csv"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert november.returncode == 0 and "outside the 4CP months [6, 7, 8, 9]" in november.stderr, november.stderr
    bad = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--set", "power.four_cp.enabled=false"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "power.four_cp.enabled = false; set it to true" in bad.stderr
    assert "(with --set overrides)" in bad.stderr  # it named configs/site.toml, unread outside the repository


def test_fourcp_prices_hours_as_the_decision_does_and_is_for_ercot_sites_only(tmp_path):
    """A drill: with min_probability = 0.01, fourcp still costed an hour at p = 0.0003 that solve prices at 0,
    and on a NYISO site it advised enabling 4CP, which that site's config refuses."""
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.pipeline.decide import decide
    from hashpivot.optimizer.pipeline.four_cp import four_cp_outlook

    at = pd.Timestamp("2024-08-20T21:00Z")
    cfg = load_config(ROOT / "configs" / "site.toml", ["power.four_cp.min_probability=0.01"])
    market = load_market_data(None, cfg.site.settlement_point)
    doc = decide(cfg, market, at).document
    table = four_cp_outlook(cfg, market, at, doc)
    low = table[(table["four_cp_probability"] > 0) & (table["four_cp_probability"] < 0.01)]
    high = table[table["four_cp_probability"] >= 0.01]
    assert len(low) and len(high) and (low["expected_cost_usd_per_mw"] == 0).all()
    assert (high["expected_cost_usd_per_mw"] > 0).all()
    assert table["planned_expected_cost_usd"].sum() == pytest.approx(doc.four_cp_expected_cost_usd, abs=1.0)
    nyiso = tmp_path / "nyiso.toml"
    nyiso.write_text((ROOT / "configs" / "site.toml").read_text().replace('market = "ERCOT"', 'market = "NYISO"')
                     .replace('settlement_point = "HB_WEST"', 'settlement_point = "WEST"'))
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--config", str(nyiso),
                           "--set", "power.four_cp.enabled=false"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "fourcp is for ERCOT sites" in proc.stderr, proc.stderr


def test_the_decision_metrics_and_status_show_todays_peak_risk():
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.pipeline.decide import decide
    from hashpivot.optimizer.pipeline.four_cp import peak_risk
    from hashpivot.optimizer.service.metrics import Metrics

    doc = decide(load_config(ROOT / "configs" / "site.toml"), load_market_data(), "2024-08-20T15:00Z").document
    p = [s.four_cp_probability for s in doc.schedule]
    assert doc.schema_version == 3 and all(x is not None for x in p) and max(p) > 0
    today = [s.four_cp_probability for s in doc.schedule if s.interval_start_utc < "2024-08-21T05:00"]  # Central day
    risk = peak_risk(doc)
    assert risk["today_max_probability"] == max(today) and risk["step0_probability"] == p[0]
    assert risk["expected_cost_usd"] == doc.four_cp_expected_cost_usd == pytest.approx(doc.breakdown_usd["four_cp_cost_usd"])
    metrics = Metrics()
    metrics.record_decision(doc, 0.0, 1.0)
    sample = metrics.registry.get_sample_value
    assert sample("hashpivot_four_cp_probability", {"step": "today_max"}) == max(today)
    assert sample("hashpivot_four_cp_expected_cost_usd") == doc.four_cp_expected_cost_usd


def test_a_decision_priced_blind_says_so_in_status_and_the_banners():
    """No ERCOT load: the decision prices the climatology, and `peak_risk` (status, metrics) and the console's
    banners say why - an operator is never shown a quiet p that no load stands behind."""
    import dataclasses

    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.console.state import banners
    from hashpivot.optimizer.pipeline.decide import decide
    from hashpivot.optimizer.pipeline.four_cp import peak_risk
    from hashpivot.optimizer.service.metrics import Metrics

    cfg, market = load_config(ROOT / "configs" / "site.toml"), load_market_data()
    seeing = decide(cfg, market, "2024-08-20T15:00Z").document
    blind = decide(cfg, dataclasses.replace(market, load=market.load.iloc[:0]), "2024-08-20T15:00Z").document
    assert peak_risk(seeing)["fallback"] is None and banners(seeing, 10.0, 300.0, []) == []
    assert "climatology" in peak_risk(blind)["fallback"]
    assert peak_risk(blind)["today_max_probability"] == pytest.approx(0.62 / 31, abs=0.002)  # 16:00 CT's share
    shown = banners(blind, 10.0, 300.0, [])
    assert [b["kind"] for b in shown] == ["stale"] and shown[0]["text"].startswith("4CP risk is the climatology")
    metrics = Metrics()
    for doc, flag in ((blind, 1.0), (seeing, 0.0)):
        metrics.record_decision(doc, 0.0, 1.0)
        assert metrics.registry.get_sample_value("hashpivot_four_cp_climatology") == flag


@pytest.mark.e2e
def test_fourcp_cli_on_stale_load_prints_the_climatology_and_warns(tmp_path):
    """`--data DIR` whose ERCOT load ends 5 days before `--at`, then none at all: the outlook and the decision price
    the same climatology (0.02 at 16:00 CT), and `fourcp` and `solve` say the risk is not a forecast."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(ROOT / "feeds" / "data", data)
    load = pd.read_csv(data / "ercot_native_load_hourly.csv.gz")
    (data / "ercot_native_load_hourly.csv.gz").unlink()
    load[load["interval_start_utc"] < "2024-08-15"].to_csv(data / "ercot_native_load_hourly.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--data", str(data), "--at",
                          "2024-08-20T15:00Z", "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "4CP risk is the climatology, not a forecast" in run.stderr and "staleness limit 36 h" in run.stderr
    rows = {r["hour_start_central"]: r for r in json.loads(run.stdout)}
    four_pm = rows["2024-08-20 16:00"]
    assert {r["four_cp_basis"] for r in rows.values()} == {"climatology"}
    assert four_pm["four_cp_probability"] == pytest.approx(0.615 / 31, abs=0.001)
    assert four_pm["planned_site_kw"] < 10_000  # the decision curtails the ASICs through it
    table = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "solve", "--data", str(data), "--at",
                            "2024-08-20T15:00Z"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "COLUMNS": "100"})
    assert table.returncode == 0, table.stderr
    text = " ".join(line.strip() for line in table.stdout.splitlines())
    assert "4CP: p = " in text and "Risk is the climatology, not a forecast: ERCOT system load in" in text
    assert "warning: 4CP risk is the climatology" in table.stderr  # on stderr too, for csv and json
    (data / "ercot_native_load_hourly.csv").unlink()  # no load at all: the same outlook, saying how to get load
    none = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--data", str(data), "--at",
                           "2024-08-20T15:00Z", "--format", "csv"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert none.returncode == 0, none.stderr
    assert "ERCOT system load in" in none.stderr and "none at all (`hashpivot feeds fetch` collects it" in none.stderr


def test_a_backtest_on_stale_load_says_how_many_hours_were_priced_blind(caplog):
    """ERCOT load that ends 5 days before the replay: rolling prices every hour at the climatology and the
    backtest says so once, with the count, instead of scoring a blind strategy without a word."""
    import dataclasses
    import logging

    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config

    cfg, market = load_config(ROOT / "configs" / "site.toml"), load_market_data()
    late = dataclasses.replace(market, load=market.load[market.load.index < pd.Timestamp("2024-08-15T00:00Z")])
    with caplog.at_level(logging.WARNING):
        run_backtest(cfg, late, "2024-08-20T12:00Z", "2024-08-20T18:00Z", "rolling")
    assert "rolling: 6 of 6 hours priced 4CP at the hour-of-day climatology" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_backtest(cfg, market, "2024-08-20T12:00Z", "2024-08-20T18:00Z", "rolling")
    assert "climatology" not in caplog.text


def two_mode_site(**site):
    raw = tiny_site(**site).model_dump()
    raw["asic_pools"][0]["modes"] = [{"name": "eco", "power_w": 2000, "hashrate_th": 80},
                                     {"name": "stock", "power_w": 3000, "hashrate_th": 100}]
    return raw


@pytest.mark.parametrize("strategy", ["breakeven", "strike-4cp", "always-on"])
def test_rule_strategies_keep_a_drop_within_the_ramp_when_every_unit_is_on(strategy):
    # 10 units in stock = 30 kW; breakeven sees the 500 USD/MWh spike an hour late and turns them off, but the
    # 5 kW ramp allows 25 kW: all 10 in eco is only 20 kW, so 5 stay in stock (5 x 2 + 5 x 3 = 25 kW)
    cfg = validate_config(two_mode_site(ramp_limit_kw_per_step=5))
    r = run_backtest(cfg, tiny_market([20.0, 20.0, 500.0, 20.0]), START, START + pd.Timedelta(hours=4), strategy)
    site = r.steps["site_power_kw"].to_numpy()
    assert np.abs(np.diff(site)).max() <= 5 + 1e-6
    if strategy == "breakeven":
        np.testing.assert_array_equal(r.schedule.asic_units[0][:, 3], [5, 5])


@pytest.mark.parametrize("strategy", ["breakeven", "strike-4cp"])
def test_rule_strategies_run_the_must_run_floor_at_any_price(strategy):
    raw = two_mode_site(ramp_limit_kw_per_step=None)
    raw["asic_pools"][0]["min_units_on"] = 4
    r = run_backtest(validate_config(raw), tiny_market([500.0] * 4), START, START + pd.Timedelta(hours=4), strategy)
    assert r.schedule.asic_units[0].sum(axis=0).tolist()[1:] == [4, 4, 4]  # hour 0 reads the 20 USD/MWh before


def test_a_strike_4cp_window_keeps_the_floor_on():
    from hashpivot.optimizer.milp.problem import make_problem
    from hashpivot.optimizer.studies.backtest import _rule_step, realised_forecast

    raw = two_mode_site(ramp_limit_kw_per_step=None)
    raw["asic_pools"][0]["min_units_on"] = 3
    cfg = validate_config(raw)
    one = make_problem(cfg, realised_forecast(cfg, tiny_market([20.0]), START, 1))
    step = _rule_step(one, "strike-4cp", None, None, asics_off=True)
    assert step.asic_units[0][:, 0].sum() == 3  # the window turns every other unit off


def test_a_4cp_reason_names_the_must_run_floor_above_it_too():
    """A drill: a pool one unit above its floor (the ramp kept one more) gave a 4CP reason without the floor."""
    from hashpivot.optimizer.milp.explain import explain

    a = asic("A", 10, A, initial={"m0": 10})
    a.min_units_on = 4
    p = problem([1000.0, 1000.0], [a], ramp_kw=5.0)  # from 10 kW now, at most 5 kW lower at step 0
    p.four_cp_probability, p.four_cp_rate_usd_per_kw_year = np.array([0.5, 0.5]), 40.0
    (pool,) = explain(solve(p)).pools
    assert pool.units_on == 5
    assert pool.reason.startswith("5/10 units on, the rest curtailed for a likely 4CP peak (p = 0.5")
    assert pool.reason.endswith("; 4 must run (min_units_on)")


def test_a_backtest_without_the_official_intervals_says_it_charges_no_4cp(tmp_path):
    """A drill: with ercot_4cp_intervals.csv left out of --data, a period holding the 20 Aug 2024 peak showed
    four_cp_charge_usd 0 and no word why."""
    import shutil

    from hashpivot.feeds.embedded import embedded_data_dir

    data = tmp_path / "data"
    shutil.copytree(embedded_data_dir(), data)
    args = ["backtest", "--from", "2024-08-20T20:00Z", "--to", "2024-08-20T22:00Z", "--strategy", "always-on",
            "--format", "csv", "--out", str(tmp_path / "out")]
    full = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args, "--data", str(data)],
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0 and "no official 4CP interval" not in full.stderr, full.stderr
    (data / "ercot_4cp_intervals.csv").unlink()
    bare = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args, "--data", str(data)],
                          capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0, bare.stderr
    assert "warning: no official 4CP interval for 2024-08 in" in bare.stderr


def test_fourcp_names_the_decision_interval_not_the_time_given():
    """A drill: `fourcp --at 2024-08-20T21:30Z` was titled 21:30Z while solve decides the interval 21:00Z."""
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fourcp", "--at", "2024-08-20T21:30Z"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0 and "4CP outlook at 2024-08-20T21:00Z" in proc.stdout, proc.stdout + proc.stderr
