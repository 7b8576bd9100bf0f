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


def test_fleet_apply_never_commands_a_held_machine(tmp_path):
    cfg = load_config(SITE)
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(6, "127.0.13.1")]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        store.add_hold({"ip": "127.0.13.2", "off": True, "reason": "hashboard RMA"}, NOW)
        entries, _ = apply_decision(cfg, store, read_inventory(inventory, cfg), _decision({"eco": 2}), None, False,
                                    datetime.now(timezone.utc))
    assert "127.0.13.2" not in {e[0] for e in entries} and len(entries) == 5  # 3 to sleep, 2 to eco, the held one untouched
    assert not any(c.split()[0] in ("curtail", "profileset", "atmset", "logon") for c in machines[1].commands)  # read only
    assert machines[1].profile == "default" and not machines[1].sleeping
