"""`hashpivot feeds …` and `solve --source store` as subprocesses, against a loopback server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hashpivot.feeds.embedded import embedded_data_dir
from tests.feeds_support import loopback_config, serve_all

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_fetch_with_fresh_values_exits_0_and_lists_each_group(httpserver, tmp_path):
    serve_all(httpserver)
    _, sets = loopback_config(httpserver.url_for("/"))
    db = tmp_path / "s.sqlite"
    args = [x for s in sets for x in ("--set", s)]
    proc = run("feeds", "fetch", "--db", str(db), "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    groups = {g["group"]: g for g in json.loads(proc.stdout)}
    assert {"btc", "network", "power_rt", "power_da", "weather", "gpu"} <= set(groups)
    assert all(g["ok"] for g in groups.values())

    proc = run("feeds", "status", "--db", str(db), "--format", "json", *args)
    status = {s["series"]: s for s in json.loads(proc.stdout)}
    assert status["power_rt_usd_per_mwh.HB_WEST"]["fresh"] and status["hashprice_usd_per_th_day"]["fresh"]
    assert status["btc_usd"]["source"] == "mempool"

    proc = run("solve", "--source", "store", "--db", str(db), "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["inputs"]["btc_usd"] == 43753  # mempool.space, the primary


def test_fetch_with_every_source_down_exits_1_naming_the_series(tmp_path):
    _, sets = loopback_config("http://127.0.0.1:9", retries=0)
    proc = run("feeds", "fetch", "--db", str(tmp_path / "s.sqlite"), "--series", "btc", *[x for s in sets for x in ("--set", s)])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no fresh value for required series: btc_usd" in proc.stderr
    assert "cannot connect" in proc.stdout


def test_import_show_and_solve_from_store(tmp_path):
    db = tmp_path / "s.sqlite"
    files = [str(p) for p in sorted(embedded_data_dir().glob("*.csv*"))]
    proc = run("feeds", "import", *files, "--db", str(db), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert sum(r["rows"] for r in json.loads(proc.stdout)) > 90_000
    proc = run("feeds", "show", "--db", str(db), "--series", "btc_usd", "--since", "2025-05-31T20:00Z", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["interval_start_utc"] for r in rows] == [f"2025-05-31T{h}:00:00Z" for h in (20, 21, 22, 23)]
    assert rows[-1]["value"] == "104696.46" and rows[-1]["source"] == "import:btc_usd_hourly.csv.gz"
    store_doc = json.loads(run("solve", "--source", "store", "--db", str(db), "--at", "2024-08-05T14:00Z", "-f", "json").stdout)
    embedded_doc = json.loads(run("solve", "--at", "2024-08-05T14:00Z", "-f", "json").stdout)
    assert store_doc["objective_usd"] == embedded_doc["objective_usd"]
    status = {r["series"]: r for r in json.loads(run("feeds", "status", "--db", str(db), "--format", "json").stdout)}
    assert status["hashprice_usd_per_th_day"]["source"] == "computed"  # derived from the imports, not "never received"
    latest_doc = json.loads(run("solve", "-f", "json").stdout)  # the embedded data's latest time, like the derived row
    assert status["hashprice_usd_per_th_day"]["value"] == pytest.approx(latest_doc["inputs"]["hashprice_usd_per_th_day"], rel=0.01)


def test_import_bad_file_exits_1(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    proc = run("feeds", "import", str(bad), "--db", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 1 and "unrecognised header" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["fetch", "show", "status", "import"])
def test_feeds_commands_have_help_with_examples(command):
    proc = run("feeds", command, "--help")
    assert proc.returncode == 0 and "Examples" in proc.stdout and f"hashpivot feeds {command}" in proc.stdout
