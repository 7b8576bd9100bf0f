"""Bad input, through the real CLI (subprocess): one plain error line naming what was wrong and where, exit 1
(2 for usage errors), no traceback, and nothing on disk changed (no store created, no output written, no
empty folder left behind)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hashpivot.feeds.store import Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "feeds" / "data"
pytestmark = pytest.mark.e2e


def _data_dir_with(work: Path, name: str, edit) -> None:
    """A copy of the embedded data under work/data with one file changed by `edit(lines) -> lines`."""
    shutil.copytree(DATA, work / "data")
    gz = work / "data" / f"{name}.gz"
    plain = work / "data" / name
    if gz.exists():
        plain.write_text(gzip.decompress(gz.read_bytes()).decode())
        gz.unlink()
    plain.write_text("\n".join(edit(plain.read_text().splitlines())) + "\n")


def _cut_last_line(lines: list[str]) -> list[str]:
    return lines[:-1] + [lines[-1].split(",")[0]]


def _set_cell(line: int, value: str):
    def edit(lines: list[str]) -> list[str]:
        cells = lines[line - 1].split(",")
        cells[-1] = value
        return lines[: line - 1] + [",".join(cells)] + lines[line:]
    return edit


SETUPS = {
    "dir": lambda w: (w / "adir").mkdir(),
    "binary": lambda w: (w / "bin.dat").write_bytes(bytes(range(256)) * 8),
    "store_is_not_sqlite": lambda w: (w / "notdb.sqlite").write_text("not a database\n"),
    "scenario_bad_csv": lambda w: ((w / "bad.csv").write_text("interval_start_utc,value\n2024-08-05T14:00Z,x\n"),
                                   (w / "s.toml").write_text('name = "s"\n[[transform]]\nseries = "btc_usd"\nop = "csv"\nfile = "bad.csv"\n')),
    "scenario_bad_op": lambda w: (w / "s.toml").write_text('name = "s"\n[[transform]]\nseries = "btc_usd"\nop = "mul"\nvalue = 2\n'),
    "scenario_bad_at": lambda w: (w / "s.toml").write_text('name = "s"\nat = "garbage"\n'),
    "scenario_time_only_at": lambda w: (w / "s.toml").write_text('name = "s"\nat = 14:00:00\n'),
    "data_not_a_number": lambda w: _data_dir_with(w, "btc_usd_hourly.csv", _set_cell(5, "abc")),
    "data_bad_time": lambda w: _data_dir_with(w, "btc_usd_hourly.csv", lambda ls: ls[:3] + ["yesterday,42000"] + ls[4:]),
    "data_cut_last_line": lambda w: _data_dir_with(w, "ercot_hub_prices_hourly.csv", _cut_last_line),
    "history_not_a_number": lambda w: (w / "btc_usd_hourly.csv").write_text(
        "interval_start_utc,btc_usd\n2024-01-01T00:00:00Z,42458.92\n2024-01-01T01:00:00Z,4x\n"),
    "history_cut_mid_number": lambda w: (w / "btc_usd_hourly.csv").write_text(  # 42458.92 cut after four digits
        "interval_start_utc,btc_usd\n2024-01-01T00:00:00Z,42458.92\n2024-01-01T01:00:00Z,4245"),
    "empty_store": lambda w: Store(w / "s.sqlite").close(),
    "initial_other_site": lambda w: (w / "d.json").write_text(
        (ROOT / "tests" / "fixtures" / "decision-other-site.json").read_text()),
}


@dataclass
class Case:
    name: str
    args: list[str]
    expected: str  # a part of the error line
    setup: str | None = None
    code: int = 1
    lines: int = 1  # stderr lines (usage errors add a "see --help" line)
    extra_env: dict = field(default_factory=dict)


CASES = [
    Case("config is a directory", ["solve", "--config", "adir"], "adir: is a directory, not a config file", "dir"),
    Case("config is binary", ["solve", "--config", "bin.dat"], "bin.dat: not a text file", "binary"),
    Case("config missing", ["solve", "--config", "nope.toml"], "nope.toml: no such config file"),
    Case("unknown key", ["solve", "--set", "site.bogus=1"], "site.bogus: unknown key; allowed keys here:"),
    Case("wrong type", ["solve", "--set", "site.interconnect_cap_kw='lots'"], "site.interconnect_cap_kw = 'lots': must be a valid number"),
    Case("out of range", ["solve", "--set", "site.pue=5"], "site.pue = 5: must be less than or equal to 3"),
    Case("missing hall", ["solve", "--set", "asic_pools[0].hall=nope"], "asic_pools[0].hall = 'nope': must be one of the halls"),
    Case("CAISO not collected", ["solve", "--set", "site.market=CAISO"],
         "site.market = 'CAISO': CAISO prices are not collected yet; supported: ERCOT, NYISO"),
    Case("NYISO site at an ERCOT hub", ["solve", "--set", "site.market=NYISO", "--set", "power.four_cp.enabled=false"],
         "site.settlement_point = 'HB_WEST': a NYISO site settles at a NYISO zone: CAPITL"),
    Case("4CP priced for a NYISO site", ["solve", "--set", "site.market=NYISO", "--set", "site.settlement_point='N.Y.C.'"],
         "power.four_cp: 4CP is ERCOT's transmission charge; site.market = 'NYISO' has none"),
    Case("empty settlement point", ["solve", "--set", "site.settlement_point=''"],
         "site.settlement_point = '': must have at least 1 character"),
    Case("must-run floor above the units available", ["solve", "--set", "asic_pools.s21.min_units_on=9501"],
         "asic_pools[2].min_units_on = 9501: must be <= units_available (9500)"),
    Case("index out of range", ["solve", "--set", "asic_pools[9].units_available=1"], "index 9 is out of range"),
    Case("at garbage", ["solve", "--at", "garbage"], "--at 'garbage': not a date/time"),
    Case("at impossible", ["solve", "--at", "2024-13-45T99:00Z"], "--at '2024-13-45T99:00Z': not a date/time"),
    Case("at empty", ["solve", "--at", ""], "--at '': not a date/time"),
    Case("whatif at garbage", ["whatif", "s.toml", "--at", "garbage"], "--at 'garbage': not a date/time", "scenario_bad_op"),
    Case("sweep at garbage", ["sweep", "--param", "btc_usd=1,2", "--at", "garbage"], "--at 'garbage': not a date/time"),
    Case("data cell not a number", ["solve", "--data", "data"], "btc_usd_hourly.csv: line 5, column btc_usd: 'abc' is not a number",
         "data_not_a_number"),
    Case("data cell not a time", ["solve", "--data", "data"], "btc_usd_hourly.csv: line 4, column interval_start_utc: 'yesterday'",
         "data_bad_time"),
    Case("data last line cut", ["solve", "--data", "data"], "ercot_hub_prices_hourly.csv: line", "data_cut_last_line"),
    Case("import binary", ["feeds", "import", "bin.dat", "--db", "s.sqlite"], "bin.dat: not a text CSV file", "binary"),
    Case("import directory", ["feeds", "import", "adir", "--db", "s.sqlite"], "adir: cannot read", "dir"),
    Case("import not a number", ["feeds", "import", "btc_usd_hourly.csv", "--db", "s.sqlite"],
         "btc_usd_hourly.csv: line 3, column btc_usd: '4x' is not a number", "history_not_a_number"),
    Case("import cut inside the last number", ["feeds", "import", "btc_usd_hourly.csv", "--db", "s.sqlite"],
         "btc_usd_hourly.csv: line 3 has no line end: the file looks cut off", "history_cut_mid_number"),
    Case("whatif binary", ["whatif", "bin.dat"], "bin.dat: not a text file", "binary"),
    Case("scenario csv not a number", ["whatif", "s.toml"], "bad.csv: line 2, column value: 'x' is not a number", "scenario_bad_csv"),
    Case("scenario at garbage", ["whatif", "s.toml"], "s.toml: at = 'garbage': not a date/time (use ISO 8601",
         "scenario_bad_at"),
    Case("scenario at a time of day only", ["whatif", "s.toml"], "s.toml: at = 14:00:00: must be a date/time",
         "scenario_time_only_at"),
    Case("scenario bad op", ["whatif", "s.toml"], "transform[0].op = 'mul': must be 'set', 'scale', 'add' or 'csv'", "scenario_bad_op"),
    Case("output into a missing folder", ["solve", "-o", "nodir/x.json"], "--output nodir/x.json: the directory nodir does not exist"),
    Case("output onto a folder", ["solve", "-o", "adir"], "--output adir: is a directory", "dir"),
    Case("backtest out is a file", ["backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--out", "bin.dat"],
         "--out bin.dat: is a file, not a folder", "binary"),
    Case("sweep same param twice", ["sweep", "--param", "btc_usd=1,2", "--param", "btc_usd=3,4"], "--param btc_usd is given twice",
         code=2, lines=2),
    Case("sweep a word for a number", ["sweep", "--param", "btc_usd=a:b:c"], "--param btc_usd=a:b:c: values must be numbers",
         code=2, lines=2),
    Case("hashprice at a BTC price of nan", ["hashprice", "--difficulty", "1e13", "--btc-usd", "nan", "--height", "1"],
         "--btc-usd nan: must be a finite number >= 0"),
    Case("hashprice without a subsidy", ["hashprice", "--difficulty", "1e13", "--btc-usd", "1"],
         "give exactly one of --subsidy-btc or --height", code=2, lines=2),
    Case("initial is a folder", ["solve", "--initial", "adir"], "--initial adir: cannot read", "dir"),
    Case("initial is binary", ["solve", "--initial", "bin.dat"], "--initial bin.dat: not a hashpivot decision JSON", "binary"),
    Case("initial from another site", ["solve", "--initial", "d.json"], "ASIC pool 's9' is not in the site config",
         "initial_other_site"),
    Case("status of a missing store", ["status", "--db", "missing.sqlite"], "store missing.sqlite: no such file"),
    Case("feeds status of a missing store", ["feeds", "status", "--db", "missing.sqlite"], "store missing.sqlite: no such file"),
    Case("feeds show of a missing store", ["feeds", "show", "--db", "missing.sqlite"], "store missing.sqlite: no such file"),
    Case("decisions of a missing store", ["decisions", "show", "--db", "missing.sqlite"], "store missing.sqlite: no such file"),
    Case("solve from a missing store", ["solve", "--source", "store", "--db", "missing.sqlite"], "store missing.sqlite: no such file"),
    Case("store is not sqlite", ["status", "--db", "notdb.sqlite"], "store notdb.sqlite: cannot open (file is not a database)",
         "store_is_not_sqlite"),
    Case("unknown feed group", ["feeds", "fetch", "--series", "gold", "--db", "s.sqlite"], "--series 'gold': unknown feed group"),
    Case("backtest from a time off the hour", ["backtest", "--from", "2024-08-01T00:30Z", "--to", "2024-08-02"],
         "--from 2024-08-01T00:30Z: a backtest decides hour by hour; give a time on the hour (e.g. 2024-08-01T00:00Z)"),
    Case("bad strategy", ["backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--strategy", "yolo"], "--strategy 'yolo'",
         code=2, lines=2),
    Case("hold more units than the pool has", ["hold", "add", "--pool", "s21", "--units", "99999", "--reason", "x", "--db", "s.sqlite"],
         "--units 99,999: pool s21 has 9,500 units"),
    Case("hold ending in the past", ["hold", "add", "--pool", "s21", "--off", "--until", "2020-01-01T00:00Z", "--reason", "x",
                                     "--db", "s.sqlite"], "--until 2020-01-01T00:00:00Z: already past"),
    Case("hold without a reason", ["hold", "add", "--pool", "s21", "--off", "--reason", " ", "--db", "s.sqlite"],
         "--reason: a hold needs a reason"),
    Case("backup into a missing folder", ["store", "backup", "--db", "notdb.sqlite", "--to", "nodir/x.sqlite"],
         "--to nodir/x.sqlite: the directory nodir does not exist", "store_is_not_sqlite"),
    Case("feeds show of an unknown series", ["feeds", "show", "--db", "s.sqlite", "--series", "nosuch"],
         "--series 'nosuch': no such series or family in the store", "empty_store"),
    Case("console port out of range", ["serve", "--port", "99999"], "--port': Input should be less than or equal to 65535",
         code=2, lines=2),
    Case("bad source", ["solve", "--source", "nope"], "--source 'nope': must be embedded or store", code=2, lines=2),
    Case("bad executor", ["backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--executor", "ray"],
         "--executor 'ray': must be local or dask", code=2, lines=2),
    Case("to before from", ["backtest", "--from", "2024-08-02", "--to", "2024-08-01"], "--to 2024-08-01 must be after --from"),
    Case("windows 0", ["backtest", "--from", "2024-08-01", "--to", "2024-08-02", "--windows", "0"],
         "--windows 0: must be between 1 and the number of hours (24)"),
    Case("backtest past the data", ["backtest", "--from", "2025-05-30", "--to", "2025-06-05"],
         "is not covered by the data: real-time prices in"),
    Case("sweep of an unknown key", ["sweep", "--param", "set:site.bogus=1,2"], "site.bogus: unknown key"),
    Case("sweep out of range", ["sweep", "--param", "set:site.pue=5,6"], "site.pue = 5: must be less than or equal to 3"),
    Case("unknown option", ["solve", "--bogus"], "No such option: --bogus", code=2, lines=2),
    Case("bad format", ["solve", "--format", "xml"], "'xml' is not one of 'table', 'json', 'csv'", code=2, lines=2),
    Case("not a number", ["hashprice", "--difficulty", "abc", "--btc-usd", "1", "--height", "1"], "--difficulty", code=2, lines=2),
    Case("missing argument", ["whatif"], "Missing argument", code=2, lines=2),
]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def run_case(case: Case, work: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    work.mkdir()
    if case.setup:
        SETUPS[case.setup](work)
    before = snapshot(work)
    env = dict(os.environ, **case.extra_env)
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *case.args], cwd=work, capture_output=True,
                          text=True, timeout=300, env=env)
    return proc, before, snapshot(work)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c.name: pool.submit(run_case, c, root / f"case{i}") for i, c in enumerate(CASES)}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_error_and_changes_nothing(case, outcomes):
    proc, before, after = outcomes[case.name]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == case.code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == case.lines, proc.stderr
    assert lines[0].startswith("error: ") and case.expected in lines[0], lines[0]
    assert after == before, "the failed run changed files on disk"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_a_full_disk_is_one_error_line_with_the_free_space_and_keeps_the_store_good(small_disk, tmp_path):
    store = small_disk / "store.sqlite"
    btc = tmp_path / "btc_usd_hourly.csv"
    btc.write_text("interval_start_utc,btc_usd\n2024-01-01T00:00:00Z,42458.92\n")
    assert cli("feeds", "import", str(btc), "--db", str(store), cwd=tmp_path).returncode == 0
    proc = cli("feeds", "import", str(DATA / "ercot_hub_prices_hourly.csv.gz"), "--db", str(store), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write (database or disk is full" in lines[0] and "MB free on its disk" in lines[0]
    status = cli("feeds", "show", "--series", "btc_usd", "--db", str(store), "--format", "csv", cwd=tmp_path)
    assert status.returncode == 0 and "42458.92" in status.stdout  # the good row is still there, nothing half-written


def test_a_store_on_a_read_only_disk_is_one_error_line(small_disk, tmp_path):
    store = small_disk / "store.sqlite"
    btc = tmp_path / "btc_usd_hourly.csv"
    btc.write_text("interval_start_utc,btc_usd\n2024-01-01T00:00:00Z,42458.92\n")
    assert cli("feeds", "import", str(btc), "--db", str(store), cwd=tmp_path).returncode == 0
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    proc = cli("solve", "-o", str(small_disk / "decision.json"), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: --output {small_disk / 'decision.json'}: cannot write (Read-only file system)"]
    for args in (["feeds", "import", str(btc)], ["tick", "--set", 'daemon.metrics_port="off"']):
        proc = cli(*args, "--db", str(store), cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(small_disk) in lines[0], proc.stderr
