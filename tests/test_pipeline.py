"""The one decision pipeline and its typed document: start-ups carried from one decision to the next, old
documents, documents from another site, and the JSON Schema on disk."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import load_config
from hashpivot.models.decision import Decision, json_schema, load_decision
from hashpivot.models.errors import InputError
from hashpivot.optimizer.pipeline.decide import decide, initial_state

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "configs" / "site.toml")


@pytest.fixture(scope="module")
def market(cfg):
    return load_market_data(None, cfg.site.settlement_point)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.e2e
def test_marketplace_gpus_started_by_one_decision_stay_on_for_their_minimum_rental_time(tmp_path):
    """The reproduction from the foundation issue: 1,024 marketplace H100s started at 00:00 stay on until
    04:00 (min_rental_hours = 4) when each solve starts from the previous decision's document."""
    assert cli("solve", "--at", "2024-08-21T00:00Z", "-f", "json", "-o", "D0.json", cwd=tmp_path).returncode == 0
    doc = json.loads((tmp_path / "D0.json").read_text())
    h100 = next(p for p in doc["pools"] if p["name"] == "h100")
    h100["market_on"] = 0
    (tmp_path / "Z.json").write_text(json.dumps(doc))
    proc = cli("solve", "--at", "2024-08-21T00:00Z", "--initial", "Z.json", "-f", "json", "-o", "X.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    started = next(p for p in json.loads((tmp_path / "X.json").read_text())["pools"] if p["name"] == "h100")
    assert started["market_on"] == 1024 and started["recent_starts"][0] == 1024
    previous = "X.json"
    for hour in (1, 2, 3):
        out = f"H{hour}.json"
        proc = cli("solve", "--at", f"2024-08-21T0{hour}:00Z", "--initial", previous, "-f", "json", "-o", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        pool = next(p for p in json.loads((tmp_path / out).read_text())["pools"] if p["name"] == "h100")
        assert pool["market_on"] >= 1024, f"hour {hour}: rentals started at 00:00 were turned off"
        assert pool["recent_starts"][hour] == 1024
        previous = out


def test_a_decision_held_for_several_intervals_shifts_its_start_up_history(cfg, market):
    first = decide(cfg, market, "2024-08-21T00:00Z").document
    pool = first.pool("h100").model_copy(update={"recent_starts": [7, 0, 0, 0]})
    doc = first.model_copy(update={"pools": [pool if p.name == "h100" else p for p in first.pools]})
    state = initial_state(cfg, doc, doc_time(doc, hours=3), 60)
    assert state.recent_starts["h100"][:4] == [0, 0, 7, 0]  # started at 00:00, now deciding for 03:00


def doc_time(doc: Decision, hours: int):
    import pandas as pd

    return pd.Timestamp(doc.interval_start_utc) + pd.Timedelta(hours=hours)


def test_a_schema_1_document_still_loads_and_minimum_times_restart_with_a_warning(cfg, market, caplog):
    current = decide(cfg, market, "2024-08-21T00:00Z").document.model_dump()
    old = {k: v for k, v in current.items() if k != "schema_version"}
    for pool in old["pools"]:
        del pool["recent_starts"]
    doc = load_decision(json.dumps(old), "old.json")
    assert doc.schema_version == 1
    with caplog.at_level(logging.WARNING):
        state = initial_state(cfg, doc, doc_time(doc, hours=1), 60)
    assert "minimum run and rental times restart from zero" in caplog.text
    assert state.recent_starts == {} and state.gpu_market_on["h100"] == doc.pool("h100").market_on


def test_a_document_from_another_site_is_refused_naming_the_pool(cfg, market):
    doc = decide(cfg, market, "2024-08-21T00:00Z").document
    other = doc.model_copy(update={"pools": [p.model_copy(update={"name": "s9"}) if p.name == "s21" else p for p in doc.pools]})
    with pytest.raises(InputError, match=r"ASIC pool 's9' is not in the site config"):
        initial_state(cfg, other, doc_time(doc, 1), 60)
    many = doc.model_copy(update={"pools": [
        p.model_copy(update={"units_by_mode": {"stock": 99_999}}) if p.name == "s21" else p for p in doc.pools]})
    with pytest.raises(InputError, match=r"pool 's21' has 99,999 units on, more than the 9,500 installed"):
        initial_state(cfg, many, doc_time(doc, 1), 60)


def test_a_broken_or_newer_document_is_one_clear_error():
    with pytest.raises(InputError, match=r"x.json: not a hashpivot decision JSON"):
        load_decision("{not json", "x.json")
    with pytest.raises(InputError, match=r"x.json: not a hashpivot decision JSON: pools"):
        load_decision({"status": "optimal", "site": {"cap_kw": 1, "it_power_kw": 0, "site_power_kw": 0},
                       "interval_start_utc": "2024-01-01T00:00:00Z", "horizon_steps": 1, "step_minutes": 60}, "x.json")
    with pytest.raises(InputError, match=r"decision schema 99 is newer than this hashpivot"):
        load_decision({"schema_version": 99}, "x.json")


def test_every_status_is_a_valid_document_and_round_trips(cfg, market):
    from hashpivot.optimizer.service.rolling import carried_forward, safe_document

    optimal = decide(cfg, market, "2024-08-21T00:00Z").document
    safe = safe_document(cfg, doc_time(optimal, 1), "inputs too stale", optimal)
    kept = carried_forward(optimal, doc_time(optimal, 2), "kept", "previous decision kept: time limit", 60)
    for doc in (optimal, safe, kept):
        assert load_decision(doc.to_json(), doc.status) == doc
    assert safe.status == "safe" and safe.objective_usd is None
    assert kept.pool("h100").market_on == optimal.pool("h100").market_on


def test_the_json_schema_on_disk_is_current():
    """Regenerate with `python -m hashpivot.models.decision > docs/decision.schema.json`."""
    assert (ROOT / "docs" / "decision.schema.json").read_text(encoding="utf-8") == json_schema()
