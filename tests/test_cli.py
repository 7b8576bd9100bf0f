"""End-to-end: the `hashpivot` CLI as a subprocess on the example config, every output format parsed."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "site.toml"
pytestmark = pytest.mark.e2e


def run(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env=env,
    )


@pytest.fixture(scope="module")
def decision() -> dict:
    proc = run("solve", "--at", "2024-08-05T14:00Z", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_json_document_has_every_required_key(decision):
    assert decision["status"] in ("optimal", "feasible")
    assert decision["interval_start_utc"] == "2024-08-05T14:00:00Z"
    assert decision["horizon_steps"] == 24 and decision["step_minutes"] == 60
    for key in ("btc_usd", "hashprice_usd_per_th_day", "power_price_usd_per_mwh", "gpu_rates_usd_per_gpu_hour"):
        assert key in decision["inputs"]
    assert set(decision["inputs"]["gpu_rates_usd_per_gpu_hour"]) == {"a40", "h100"}
    for key in ("cap_kw", "it_power_kw", "site_power_kw"):
        assert key in decision["site"]
    for key in ("binding_constraints", "shadow_price_usd_per_mw_hour", "objective_usd", "schedule"):
        assert key in decision
    names = {p["name"] for p in decision["pools"]}
    assert names == {"s19jpro", "s19xp", "s21", "m30s", "a40", "h100"}
    for pool in decision["pools"]:
        for key in ("kind", "units_on", "units_available", "power_kw", "revenue_usd_per_hour", "cost_usd_per_hour",
                    "breakeven_usd_per_mwh", "reason"):
            assert key in pool, (pool["name"], key)
        assert pool["kind"] in ("asic", "gpu")
        assert 0 <= pool["units_on"] <= pool["units_available"]
        assert pool["reason"]
        if pool["kind"] == "asic":
            assert "mode" in pool


def test_json_figures_are_consistent(decision):
    site = decision["site"]
    assert sum(p["power_kw"] for p in decision["pools"]) == pytest.approx(site["it_power_kw"], rel=1e-6)
    assert site["site_power_kw"] <= site["cap_kw"] + 1e-6
    assert len(decision["schedule"]) == 24
    step0 = decision["schedule"][0]
    for pool in decision["pools"]:
        assert step0["pools_power_kw"][pool["name"]] == pytest.approx(pool["power_kw"], abs=0.1)
    # a low-price afternoon in August 2024: the interconnect is the limit and has a positive shadow price
    assert "site_cap[t=0]" in decision["binding_constraints"]
    assert decision["shadow_price_usd_per_mw_hour"] > 0


def test_the_default_table_shows_the_whole_decision_in_100_columns():
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "solve", "--at", "2024-08-05T14:00Z"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ, COLUMNS="100"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100 and "…" not in proc.stdout  # fits, nothing cut
    text = " ".join(line.strip() for line in lines)
    assert "total (IT)" in text and "site-cap shadow price" in text
    assert "eco 4,409 · stock 2,091" in text  # split modes per pool
    assert "reserve: 30.0 MW ecrs offered at" in text
    assert "fixed blocks: 25,000 kW delivered, 0 kW resold" in text
    assert "binding at step 0: interconnect 90,000 kW reached at steps 0–2, 14–23" in text  # 4CP: the afternoon runs lighter
    assert "marginal power 18.16 USD/MWh = real-time 15.66 + adder 2.50" in text
    assert "4CP: p = 0.00062 at step 0, today's highest 0.12 at 16:00 CT; expected 4CP charge over the horizon" in text
    assert "climatology" not in text
    assert "s19xp: all 6,500 units on, in eco + stock mode: the interconnect cap keeps them out of a hungrier mode" in text
    assert "site_cap[t=0]" not in text  # row names stay in the JSON


def test_csv_has_one_row_per_pool(tmp_path):
    out = tmp_path / "decision.csv"
    proc = run("solve", "--at", "2024-08-05T14:00Z", "--format", "csv", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and str(out) in proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["name"] for r in rows] == ["s19jpro", "s19xp", "s21", "m30s", "a40", "h100"]
    assert all(float(r["power_kw"]) >= 0 for r in rows)


def test_default_config_and_data_work_from_any_directory(tmp_path):
    proc = run("solve", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["site"]["cap_kw"] == 90_000


def test_bad_config_value_exits_1_with_the_key_and_no_traceback():
    proc = run("solve", "--set", "asic_pools[2].modes[0].power_w=-5")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "asic_pools[2].modes[0].power_w = -5: must be greater than 0" in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace("pue = 1.07", "pue = 1.07\npeu = 1.1"))
    proc = run("solve", "--config", str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{bad}: site.peu: unknown key; allowed keys here:" in proc.stderr


def test_missing_market_data_names_series_and_range():
    proc = run("solve", "--at", "2030-01-01T00:00Z")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "power_rt" in proc.stderr and "available: 2024-01-01" in proc.stderr


def test_infeasible_site_names_the_conflicting_constraint_groups(tmp_path):
    firm = tmp_path / "firm.toml"
    firm.write_text(EXAMPLE.read_text().replace("sla_penalty_usd_per_gpu_hour = 1.50", ""))
    proc = run("solve", "--config", str(firm), "--set", "site.halls.gpu-h100.cap_kw=2000")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "contract_floors" in proc.stderr and "hall_caps" in proc.stderr
    assert "hall gpu-h100: firm contracts need" in proc.stderr
    assert "ramp_limits" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one error line: the figures, then the groups


@pytest.mark.parametrize("command", ["solve", "hashprice"])
def test_every_command_has_help_with_examples(command):
    proc = run(command, "--help")
    assert proc.returncode == 0
    assert "Examples" in proc.stdout and f"hashpivot {command}" in proc.stdout


def test_hashprice_command_worked_example():
    proc = run("hashprice", "--difficulty", "20082460130795", "--btc-usd", "60865.45", "--height", "705600",
               "--fees-btc-per-block", "0.05832444", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["subsidy_btc"] == 6.25
    assert row["hashprice_usd_per_th_day"] == pytest.approx(0.3846, abs=5e-5)
    assert row["hashprice_usd_per_ph_day"] == pytest.approx(384.6, abs=0.05)


def test_hashprice_needs_exactly_one_of_subsidy_or_height():
    proc = run("hashprice", "--difficulty", "1e13", "--btc-usd", "60000")
    assert proc.returncode == 2 and "exactly one of --subsidy-btc or --height" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["solve", "--source", "store", "--at", "yesterday-ish"], "--at 'yesterday-ish': not a date/time"),
    (["backtest", "--from", "2024-13-45", "--to", "2024-08-02"], "--from '2024-13-45': not a date/time"),
])
def test_bad_times_on_the_command_line_are_clear_errors(args, message):
    proc = run(*args)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def _frame_lines(df, monkeypatch, capsys) -> list[str]:
    from hashpivot.optimizer.cli.common import OutputFormat, frame_out

    monkeypatch.setenv("COLUMNS", "80")
    frame_out(df, OutputFormat.table, "t")
    return capsys.readouterr().out.splitlines()


def test_a_wide_short_table_is_turned_into_as_many_tables_as_fit_80_columns(monkeypatch, capsys):
    """`hold list` with 8 holds lost the last ones off the right edge of one turned table."""
    import pandas as pd

    holds = pd.DataFrame({"id": range(1, 9), "pool": ["s19xp"] * 8, "ip": [f"127.0.10.{20 + i}" for i in range(8)],
                          "units": [10] * 8, "off": [True] * 8, "mode": ["eco"] * 8, "until_utc": ["2026-12-04T06:00:00Z"] * 8,
                          "reason": [f"RMA ticket {i}" for i in range(8)], "created_at_utc": ["2026-12-03T19:38:00Z"] * 8})
    lines = _frame_lines(holds, monkeypatch, capsys)
    assert max(len(line) for line in lines) <= 80
    header = " ".join(line for line in lines if line.startswith("┃ id"))
    assert all(f" {i} ┃" in header for i in range(1, 9)) and "127.0.10.27" in "\n".join(lines)
    assert sum(line.startswith("┏") and line.endswith("┓") for line in lines) >= 2  # every table has its right edge


def test_a_wide_long_table_splits_its_columns_and_keeps_every_number_whole(monkeypatch, capsys):
    """`decisions show` at 80 columns crushed seq, time and status to nothing and cut 14,672 to '14,67'."""
    import pandas as pd

    rows = pd.DataFrame({"seq": range(1, 21), "decided_at_utc": ["2025-06-01T00:30:00Z"] * 20, "status": ["optimal"] * 20,
                         **{f"pool{i}_kw": [14_672.0 + i] * 20 for i in range(8)}})
    text = "\n".join(_frame_lines(rows, monkeypatch, capsys))
    assert max(len(line) for line in text.splitlines()) <= 80 and "(columns 1 of" in text
    assert all(f"14,67{2 + i}" in text for i in range(8)) and "2025-06-01T00:30:00Z" in text and "optimal" in text
    assert text.count("┃ seq ") >= 2  # each part led by the first column


def test_json_tables_keep_slashes_and_whole_numbers(capsys):
    import pandas as pd

    from hashpivot.optimizer.cli.common import OutputFormat, frame_out

    frame_out(pd.DataFrame({"unit": ["TH/s"], "decision_seq": pd.array([13], dtype="Int64")}), OutputFormat.json, "t")
    out = capsys.readouterr().out
    assert '"TH/s"' in out and '"decision_seq": 13' in out, out


def test_a_day_with_no_4cp_risk_says_so_instead_of_naming_an_hour():
    from hashpivot.optimizer.cli.render import today_peak_text

    zero = {"today_max_probability": 0.0, "today_max_at_utc": "2025-06-01T00:00:00Z"}
    assert today_peak_text(zero) == "no 4CP risk today (p = 0 in every step of today, Central)"
    risky = {"today_max_probability": 0.1234, "today_max_at_utc": "2024-08-20T21:00:00Z"}
    assert today_peak_text(risky) == "today's highest 0.12 at 16:00 CT"
    # a drill: at 19:00 CT on 31 May the decision curtails for tomorrow's afternoon, and said only "no risk today"
    evening = {**zero, "horizon_max_probability": 0.0174, "horizon_max_at_utc": "2025-06-01T21:00:00Z"}
    assert today_peak_text(evening).endswith("(p = 0 in every step of today, Central); the horizon's highest 0.017 at "
                                             "16:00 CT 01 Jun")
    assert today_peak_text({**risky, "horizon_max_probability": 0.1234, "horizon_max_at_utc": "2024-08-20T21:00:00Z"}
                           ) == "today's highest 0.12 at 16:00 CT"  # today's is the horizon's: said once


def test_table_cells_are_text_not_rich_markup(capsys, monkeypatch):
    import pandas as pd

    from hashpivot.optimizer.cli.common import OutputFormat, frame_out

    monkeypatch.setenv("COLUMNS", "120")
    frame_out(pd.DataFrame({"case": ["[b]base[/b]"], "binding": ["unit_limits[s21,t=0], site_cap[t=0]"]}),
              OutputFormat.table, "what-if [x]")
    out = capsys.readouterr().out
    assert "unit_limits[s21,t=0], site_cap[t=0]" in out and "[b]base[/b]" in out and "what-if [x]" in out


def test_a_single_kind_site_prints_only_its_own_inputs(tmp_path):
    site = ('[site]\nname = "one kind"\ninterconnect_cap_kw = 20000\n'
            '[[site.halls]]\nname = "h"\ncap_kw = 20000\n')
    asic_only = tmp_path / "asic.toml"
    asic_only.write_text(site + '[[asic_pools]]\nname = "s19"\nmodel = "Antminer S19j Pro"\nunits_installed = 100\nhall = "h"\n')
    gpu_only = tmp_path / "gpu.toml"
    gpu_only.write_text(site + '[[gpu_pools]]\nname = "h100"\nmodel = "H100 80GB SXM"\ngpus_installed = 64\nhall = "h"\n'
                               'rate_series = "H100"\n')
    asic = run("solve", "--config", str(asic_only), env=dict(os.environ, COLUMNS="200"))
    gpu = run("solve", "--config", str(gpu_only), env=dict(os.environ, COLUMNS="200"))
    assert asic.returncode == 0 and gpu.returncode == 0, asic.stderr + gpu.stderr
    assert "hashprice" in asic.stdout and "GPU USD/h" not in asic.stdout
    assert "GPU USD/h: h100" in gpu.stdout and "hashprice" not in gpu.stdout.splitlines()[1]


def test_a_short_horizon_says_its_4cp_high_is_only_within_the_horizon():
    proc = run("solve", "--at", "2024-08-05T14:00Z", "--set", "horizon.steps=1", env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    assert "today's highest within the horizon (to 10:00 CT) 0.00062 at 09:00 CT" in proc.stdout


def test_every_command_and_group_has_examples_in_its_help():
    import typer.main

    from hashpivot.optimizer.cli import app

    def walk(cmd, path: str):  # typer's groups are not the installed click's Group class: walk by `commands`
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    seen = dict(walk(typer.main.get_command(app), "hashpivot"))
    assert {"hashpivot feeds", "hashpivot feeds fetch", "hashpivot fleet apply", "hashpivot solve"} <= set(seen)
    missing = [path for path, cmd in seen.items() if path != "hashpivot" and "**Examples**" not in (cmd.epilog or "")]
    assert missing == []


def test_every_example_in_help_prints_as_written():
    """Markdown help eats a pair of '*' as emphasis: `history/*.csv history/*.csv.gz` printed as `history/.csv`."""
    import typer.main
    from typer.testing import CliRunner

    from hashpivot.optimizer.cli import app

    def walk(cmd, words: list[str]):
        yield words, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*words, name])

    garbled = []
    for words, cmd in walk(typer.main.get_command(app), []):
        examples = [line.strip() for line in (cmd.epilog or "").splitlines() if line.startswith("    hashpivot")]
        if not examples:
            continue
        shown = " ".join(CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "400"}).output.split())
        garbled += [e for e in examples if " ".join(e.replace("\\*", "*").replace("`", "").split()) not in shown]
    assert garbled == []


def test_several_config_problems_are_one_error_line_each():
    proc = run("solve", "--set", "site.market=NYISO")  # an ERCOT hub and 4CP priced: two problems
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 2 and all(line.startswith("error: ") for line in lines), proc.stderr


def test_a_zero_is_never_printed_as_minus_zero():
    from hashpivot.optimizer.cli.common import cell_text
    from hashpivot.optimizer.cli.render import _money

    assert (cell_text(-0.0), cell_text(-0.4 * 0), _money(-0.3), _money(-1500.4)) == ("0", "0", "0", "-1,500")
