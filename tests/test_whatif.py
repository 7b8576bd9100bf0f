"""What-ifs and sweeps: transforms (pure), scenario and sweep errors, Dask vs local, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import load_config, load_raw_config
from hashpivot.models.errors import ConfigError
from hashpivot.models.scenario import load_scenario
from hashpivot.optimizer.forecast import build_forecast
from hashpivot.optimizer.studies.sweep import parse_param, run_sweep
from hashpivot.optimizer.studies.whatif import csv_values, transform_forecast

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "site.toml"
AT = "2024-08-05T14:00Z"


@pytest.fixture(scope="module")
def forecast():
    return build_forecast(load_config(EXAMPLE), load_market_data(), AT)


def test_transforms(forecast, tmp_path):
    f = transform_forecast(forecast, "btc_usd", "scale", 0.5)
    np.testing.assert_allclose(f.btc_usd, forecast.btc_usd * 0.5)
    np.testing.assert_allclose(f.hashprice_usd_per_th_day, forecast.hashprice_usd_per_th_day * 0.5)  # hashprice follows BTC
    np.testing.assert_allclose(transform_forecast(forecast, "power_price_usd_per_mwh", "add", 20).power_price_usd_per_mwh,
                               forecast.power_price_usd_per_mwh + 20)
    assert set(transform_forecast(forecast, "gpu_rate.h100", "set", 1.5).gpu_rate_usd_per_gpu_hour["h100"]) == {1.5}
    path = tmp_path / "path.csv"
    hours = pd.date_range(forecast.interval_start_utc[0], periods=24, freq="h")
    pd.DataFrame({"interval_start_utc": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": np.arange(24.0)}).to_csv(path, index=False)
    f = transform_forecast(forecast, "gpu_rate.h100", "csv", values=csv_values(path, forecast))
    assert list(f.gpu_rate_usd_per_gpu_hour["h100"]) == list(np.arange(24.0))
    with pytest.raises(ConfigError, match="no GPU pool named 'h200'"):
        transform_forecast(forecast, "gpu_rate.h200", "set", 1.0)
    short = tmp_path / "short.csv"
    pd.DataFrame({"interval_start_utc": ["2030-01-01T00:00:00Z"], "value": [1.0]}).to_csv(short, index=False)
    with pytest.raises(ConfigError, match="short.csv: no value for 2024-08-05T14:00Z"):
        csv_values(short, forecast)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[transform]]\nseries = "btc_usd"\nop = "mul"\nvalue = 2\n', r"transform\[0\]\.op = 'mul': must be 'set', 'scale', 'add' or 'csv'"),
        ('[[transform]]\nseries = "gold_usd"\nop = "set"\nvalue = 2\n', r"transform\[0\]\.series = 'gold_usd': must be one of btc_usd"),
        ('[[transform]]\nseries = "btc_usd"\nop = "scale"\n', r"transform\[0\]: op = 'scale' needs a numeric value"),
        ('colour = "red"\n', r"colour: unknown key; allowed keys here: name, description, base, set, transform, at"),
    ],
)
def test_scenario_errors_name_file_key_and_allowed(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as exc:
        load_scenario(path)
    assert str(exc.value).startswith(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("btc_usd=10000:150000:0", "step must be > 0"),
        ("btc_usd=150000:10000:5000", "stop 10000 is below start 150000"),
        ("btc_usd=1:1000000:1", "more than 20,000"),
        ("gold=1:2:1", "'gold' must be one of"),
        ("btc_usd=a:b:c", "values must be numbers"),
        ("btc_usd", "expected name=start:stop:step"),
        ("btc_usd=-100,0", "btc_usd must be >= 0 \\(only power_price_usd_per_mwh can be negative\\)"),
        ("gpu_rate.h100=nan,1", "values must be finite numbers"),
    ],
)
def test_sweep_bounds_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_param(text)


def test_sweep_grid_inclusive_and_two_dimensional():
    assert parse_param("btc_usd=10000:30000:10000").values == (10000.0, 20000.0, 30000.0)
    assert parse_param("gpu_rate.h100=1.0,2.5").values == (1.0, 2.5)
    # a whole-number grid stays whole: sweep.csv and the table printed `9500.0` for a unit count
    whole = parse_param("set:asic_pools.s21.min_units_on=0:9500:4750").values
    assert whole == (0, 4750, 9500) and all(type(v) is int for v in whole)
    assert pd.DataFrame({"v": whole}).to_csv(index=False) == "v\n0\n4750\n9500\n"


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_numbers(forecast):
    raw, _ = load_raw_config(EXAMPLE)
    params = [parse_param("btc_usd=15000:45000:10000"), parse_param("set:site.interconnect_cap_kw=70000,90000")]
    local = run_sweep(raw, forecast, params, "local")
    dask = run_sweep(raw, forecast, params, "dask")
    assert len(local) == 8
    pd.testing.assert_frame_equal(local, dask)
    assert local["profit_usd"].nunique() >= 6  # the points really differ (the cap binds only at higher BTC)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_whatif_cli(tmp_path):
    scenarios = sorted(str(p) for p in (ROOT / "scenarios").glob("*.toml"))
    proc = run_cli("whatif", *scenarios, "--at", AT, "--out", str(tmp_path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["case"]: r for r in json.loads(proc.stdout)}
    assert {"base", "BTC -50 %", "second H100 hall", "dear power, cheap GPUs"} <= set(rows)
    assert rows["BTC -50 %"]["profit_usd"] < rows["base"]["profit_usd"] < rows["second H100 hall"]["profit_usd"]
    assert (tmp_path / "whatif.png").stat().st_size > 10_000 and (tmp_path / "whatif.csv").exists()


@pytest.mark.e2e
def test_sweep_cli_one_and_two_dimensions(tmp_path):
    proc = run_cli("sweep", "--param", "btc_usd=10000:40000:10000", "--at", AT, "--out", str(tmp_path / "a"), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "allocation flips at btc_usd = 20000" in proc.stderr
    assert len(pd.read_csv(tmp_path / "a" / "sweep.csv")) == 4 and (tmp_path / "a" / "sweep.png").stat().st_size > 10_000
    proc = run_cli("sweep", "--param", "btc_usd=20000:40000:10000", "--param", "gpu_rate.h100=1.0,3.0", "--at", AT,
                   "--out", str(tmp_path / "b"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 6
    assert (tmp_path / "b" / "sweep-profit.png").exists() and (tmp_path / "b" / "sweep-asic-mw.png").exists()
    bad = run_cli("sweep", "--param", "btc_usd=5:1:1")
    assert bad.returncode == 2 and "stop 1 is below start 5" in bad.stderr and "Traceback" not in bad.stderr


def test_persistent_lp_gives_the_same_solutions_in_any_order(forecast):
    from hashpivot.optimizer.milp.problem import make_problem
    from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve

    cfg = load_config(EXAMPLE)
    problems = [make_problem(cfg, transform_forecast(forecast, "btc_usd", "set", v)) for v in (15_000, 60_000, 30_000, 120_000)]
    fresh = [solve(p).objective_usd for p in problems]
    forward = PersistentLP(SolveSettings(), problems[0])
    assert [solve(p, persistent=forward).objective_usd for p in problems] == fresh
    backward = PersistentLP(forward.settings, problems[-1])
    assert [solve(p, persistent=backward).objective_usd for p in reversed(problems)][::-1] == fresh


def test_a_scenario_at_may_be_a_toml_date_time_and_each_row_says_its_hour(tmp_path):
    (tmp_path / "t.toml").write_text('name = "later"\nat = 2024-08-05T16:00:00Z\n')
    scenario, _ = load_scenario(tmp_path / "t.toml")
    assert scenario.at == "2024-08-05T16:00:00Z"
    from hashpivot.optimizer.studies.whatif import run_whatif

    _, rows = run_whatif(EXAMPLE, [], [tmp_path / "t.toml"], at=AT)
    assert [(r["case"], r["at_utc"]) for r in rows] == [("base", "2024-08-05T14:00:00Z"), ("later", "2024-08-05T16:00:00Z")]


def test_an_infeasible_scenario_or_point_is_a_row_not_the_end_of_the_study(tmp_path, forecast):
    from hashpivot.optimizer.studies.whatif import run_whatif

    (tmp_path / "inf.toml").write_text('name = "too small"\n'
                                       'set = { "asic_pools.s21.min_units_on" = 9500, "site.interconnect_cap_kw" = 20000 }\n')
    _, rows = run_whatif(EXAMPLE, [], [tmp_path / "inf.toml", ROOT / "scenarios" / "btc-crash.toml"], at=AT)
    by_case = {r["case"]: r for r in rows}
    assert by_case["too small"]["status"] == "infeasible" and np.isnan(by_case["too small"]["profit_usd"])
    assert "unit_floors" in by_case["too small"]["binding"] and "site_cap" in by_case["too small"]["binding"]
    assert by_case["BTC -50 %"]["status"] == "optimal" and by_case["BTC -50 %"]["profit_usd"] > 0
    raw, _ = load_raw_config(EXAMPLE, ["site.interconnect_cap_kw=20000"])
    df = run_sweep(raw, forecast, [parse_param("set:asic_pools.s21.min_units_on=0,9500")])
    assert list(df["status"]) == ["optimal", "infeasible"] and df["profit_usd"].iloc[0] > 0


@pytest.mark.e2e
def test_sweep_file_and_stdout_carry_the_same_columns_and_default_folders_are_new_per_run(tmp_path):
    args = ["sweep", "--param", "btc_usd=20000,40000", "--param", "gpu_rate.h100=1.0,3.0", "--at", AT, "--format", "csv"]
    first = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    again = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    folders = sorted(tmp_path.glob("sweep-*"))
    assert len(folders) == 2  # never the first run's folder again, even within the same second
    import io

    stdout = pd.read_csv(io.StringIO(first.stdout))
    written = pd.read_csv(folders[0] / "sweep.csv")
    assert list(stdout.columns) == list(written.columns) and "asic_mw" in written and "s21_mean_mw" in written


def test_the_fresh_default_folder_is_never_one_that_exists(tmp_path):
    from hashpivot.optimizer.cli.common import out_dir

    first = out_dir(tmp_path / "whatif-20260101T000000", fresh=True)
    (first / "whatif.csv").write_text("kept\n")
    second = out_dir(tmp_path / "whatif-20260101T000000", fresh=True)
    assert second.name == "whatif-20260101T000000-2" and (first / "whatif.csv").read_text() == "kept\n"


def test_negative_prices_only_where_markets_have_them(forecast):
    with pytest.raises(ConfigError, match="btc_usd would be -"):
        transform_forecast(forecast, "btc_usd", "scale", -1.0)
    assert transform_forecast(forecast, "power_price_usd_per_mwh", "set", -25.0).power_price_usd_per_mwh.max() == -25.0
    assert parse_param("power_price_usd_per_mwh=-50,0").values == (-50.0, 0.0)


def test_two_scenarios_may_not_share_a_name(tmp_path):
    from hashpivot.optimizer.studies.whatif import run_whatif

    crash = ROOT / "scenarios" / "btc-crash.toml"
    (tmp_path / "again.toml").write_text(crash.read_text())
    with pytest.raises(ConfigError, match="again.toml: name = 'BTC -50 %' is already used by .*btc-crash.toml"):
        run_whatif(EXAMPLE, [], [crash, tmp_path / "again.toml"], at=AT)


@pytest.mark.e2e
def test_a_study_with_no_feasible_case_is_an_error_and_writes_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "sweep", "--param",
                           "set:asic_pools.s21.min_units_on=9000,9500", "--set", "site.interconnect_cap_kw=20000",
                           "--at", AT], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no feasible allocation in any of the 2 cases" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []
