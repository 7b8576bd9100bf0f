"""Operator holds: the model honours a pool hold as a bound and the decision says so; fleet apply never
commands a held machine; expired or removed holds stop applying."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hashpivot.feeds.embedded import embedded_data_dir
from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.importer import import_files
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.optimizer.service.fleet_apply import apply_decision
from hashpivot.optimizer.service.rolling import decide_interval
from tests.test_fleet import RunningFarm, _decision

SITE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
NOW = datetime(2025, 5, 20, 0, 0, tzinfo=timezone.utc)


def test_pool_holds_bound_the_model_and_name_themselves_in_the_reasons(tmp_path):
    cfg = load_config(SITE)
    with Store(tmp_path / "s.sqlite") as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        free = decide_interval(cfg, store, NOW)
        store.add_hold({"pool": "s19xp", "off": True, "until_utc": "2025-05-20T06:00:00Z", "reason": "cooling repair"}, NOW)
        store.add_hold({"pool": "s21", "units": 1000, "reason": "PDU 3 derated"}, NOW)
        store.add_hold({"pool": "m30s", "mode": "eco", "reason": "noise limit"}, NOW)
        held = decide_interval(cfg, store, NOW)
        later = decide_interval(cfg, store, NOW + timedelta(hours=7))  # the s19xp hold has expired
    assert free.pool("s19xp").units_on > 0 and free.pool("s21").units_on > 1000
    assert held.pool("s19xp").units_on == 0
    assert held.pool("s19xp").reason.startswith("held by operator until 2025-05-20T06:00:00Z (off): cooling repair")
    assert held.pool("s21").units_on == 1000 and held.pool("s21").reason.startswith("held by operator (exactly 1,000 units)")
    assert set(held.pool("m30s").units_by_mode) <= {"eco"} and "noise limit" in held.pool("m30s").reason
    assert later.pool("s19xp").units_on > 0 and "held by operator" not in later.pool("s19xp").reason


def test_a_hold_the_site_cannot_honour_is_named_by_the_diagnosis(tmp_path):
    # 9,500 S21 at 3.5 kW need 33 MW at least; with the interconnect cut to 20 MW the hold cannot be honoured:
    # the decision keeps the previous one and says which hold and which limit conflict.
    cfg = load_config(SITE, ["site.interconnect_cap_kw=20000", "site.ramp_limit_kw_per_step=90000"])
    with Store(tmp_path / "s.sqlite") as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        free = decide_interval(cfg, store, NOW)
        store.add_decision(free, NOW, 0.1)
        store.add_hold({"pool": "s21", "units": 9500, "reason": "firmware soak test"}, NOW)
        kept = decide_interval(cfg, store, NOW + timedelta(hours=1))
    assert free.status in ("optimal", "feasible") and kept.status == "kept"
    assert "unit_floors" in kept.reason and "asic pool s21: 9,500 units must run" in kept.reason
    assert "site_cap" in kept.reason or "hall_caps" in kept.reason


def test_fleet_apply_never_commands_a_machine_held_as_it_is_and_keeps_one_held_off_asleep(tmp_path):
    """A drill: a machine held off (`rma board`) came back mining after a farm restart and was left running, as
    'never commanded' meant; held off now means asleep. A machine held without --off is never commanded."""
    cfg = load_config(SITE)
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(6, "127.0.13.1")]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        store.add_hold({"ip": "127.0.13.2", "off": False, "reason": "firmware test in progress"}, NOW)
        store.add_hold({"ip": "127.0.13.3", "off": True, "reason": "hashboard RMA"}, NOW)
        entries, _ = apply_decision(cfg, store, read_inventory(inventory, cfg), _decision({"eco": 5}), None, False,
                                    datetime.now(timezone.utc))
        again, _ = apply_decision(cfg, store, read_inventory(inventory, cfg), _decision({"eco": 5}), None, False,
                                  datetime.now(timezone.utc))
    assert "127.0.13.2" not in {e[0] for e in entries}
    assert not any(c.split()[0] in ("curtail", "profileset", "atmset", "logon") for c in machines[1].commands)  # read only
    assert machines[1].profile == "default" and not machines[1].sleeping
    assert ("127.0.13.3", "s19xp", "sleep", "ok") in {e[:4] for e in entries} and machines[2].sleeping
    assert "127.0.13.3" not in {e[0] for e in again} and machines[2].sleeping  # never woken for the 5 eco units
    assert sum(not m.sleeping for m in machines) == 5


def test_a_pool_hold_applies_at_once_whatever_the_ramp_limit(tmp_path):
    """A drill: holding a running pool off cut more than one ramp step, so the model was infeasible and the
    daemon kept the previous decision with the held pool still on."""
    cfg = load_config(SITE, ["site.ramp_limit_kw_per_step=500"])
    with Store(tmp_path / "s.sqlite") as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        free = decide_interval(load_config(SITE, ["site.ramp_limit_kw_per_step=90000"]), store, NOW)
        assert free.pool("s19xp").units_on * 3 > 500  # the pool draws more than one ramp step
        store.add_decision(free, NOW, 0.1)
        store.add_hold({"pool": "s19xp", "off": True, "reason": "cooling repair"}, NOW)
        store.add_hold({"pool": "m30s", "mode": "eco", "reason": "noise limit"}, NOW)
        held = decide_interval(cfg, store, NOW + timedelta(hours=1))
    assert held.status in ("optimal", "feasible"), held.reason
    assert held.pool("s19xp").units_on == 0 and set(held.pool("m30s").units_by_mode) <= {"eco"}


def test_fleet_apply_enforces_a_pool_hold_on_a_decision_from_before_it():
    """A drill: `fleet apply FILE` of a decision taken before `hold add --pool s19xp --off` woke 64 machines."""
    import pandas as pd

    from hashpivot.optimizer.service.fleet_plan import plan

    cfg = load_config(SITE)
    telemetry = pd.DataFrame({"ip": [f"10.0.0.{i}" for i in range(1, 5)], "pool": "s19xp", "reachable": 1,
                              "error": None, "mining": [1, 1, 0, 0], "watts": [3010.0, 3010.0, 95.0, 95.0],
                              "hashrate_th": [140.0, 140.0, 0.0, 0.0]})
    free = plan(cfg, _decision({"stock": 4}), telemetry)
    assert [c.action for c in free].count("wake") == 2
    off = plan(cfg, _decision({"stock": 4}), telemetry, pool_holds={"s19xp": {"off": 1, "units": None, "mode": None}})
    assert sorted(c.action for c in off) == ["sleep", "sleep"]
    three = plan(cfg, _decision({"stock": 4}), telemetry, pool_holds={"s19xp": {"off": 0, "units": 3, "mode": None}})
    assert [c.action for c in three] == ["wake"]


def test_a_machine_hold_with_a_mode_or_units_is_refused(tmp_path):
    """A drill: `hold add --machine IP --mode stock` was stored and listed as `off True, mode stock`."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "hold", "add", "--machine", "10.0.0.5",
                           "--mode", "stock", "--reason", "x", "--db", str(tmp_path / "s.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "a machine hold takes --off (kept asleep) or nothing" in proc.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_solve_from_the_store_honours_the_holds_in_force(tmp_path):
    """A drill: with `hold add --pool s19xp --units 10`, `solve --source store` gave units_on 200."""
    import json
    import subprocess
    import sys

    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        store.add_hold({"pool": "s19xp", "units": 10, "reason": "PDU 3 derated"}, NOW)
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "solve", "--source", "store", "--db", str(db),
                           "--at", "2025-05-20T00:00Z", "--format", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pool = next(p for p in json.loads(proc.stdout)["pools"] if p["name"] == "s19xp")
    assert pool["units_on"] == 10 and pool["reason"].startswith("held by operator (exactly 10 units): PDU 3 derated")
    assert "the operator holds in force bound s19xp" in proc.stderr


def test_a_hold_into_a_store_that_did_not_exist_says_so(tmp_path):
    """A drill: a mistyped --db created a new store and said `hold 1 added`; the daemon never saw the hold."""
    import subprocess
    import sys

    new = tmp_path / "typo.sqlite"
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "hold", "add", "--pool", "s19xp", "--off",
                           "--reason", "cooling", "--db", str(new)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and f"note: {new} did not exist and was created" in proc.stderr
    again = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "hold", "add", "--pool", "s21", "--off",
                            "--reason", "cooling", "--db", str(new)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "did not exist" not in again.stderr
