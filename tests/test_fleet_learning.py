"""The model runs on what the fleet reports (real pyasic against a simulated LuxOS farm): each mode's measured
W and TH/s replace the catalogue's with `fleet.learn_modes`, and a decision starts from the units the machines
report mining per mode when that differs from the last plan (a failed command, a reboot, a person at the rack)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hashpivot.feeds.embedded import embedded_data_dir
from hashpivot.feeds.fleet.farm import Profile, SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.fleet.scan import scan
from hashpivot.feeds.importer import import_files
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.optimizer.service.rolling import decide_interval
from tests.test_fleet import RunningFarm

SITE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
NOW = datetime(2025, 6, 1, 0, 0, tzinfo=timezone.utc)
# these S19 XPs draw more and hash less than the catalogue's 3,010 W / 140 TH/s stock and 2,257.5 W / 114.8 TH/s eco
WORN = (Profile("290MHz", 2_300.0, 108.0), Profile("415MHz", 2_700.0, 125.0), Profile("default", 3_100.0, 137.0))


@pytest.mark.parametrize("learn", [True, False])
def test_decisions_use_the_fleets_measured_modes_and_start_from_what_runs(tmp_path, learn):
    machines = [SimMachine(ip, profiles=WORN, noise=0.0, profile="290MHz" if i < 10 else "default",
                           fault="unreachable" if i in (20, 21) else None)
                for i, ip in enumerate(farm_ips(30, "127.0.15.1"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    cfg = load_config(SITE, [f"fleet.inventory='{inventory}'", f"fleet.learn_modes={str(learn).lower()}",
                             "fleet.timeout_s=2"])
    with Store(tmp_path / "s.sqlite") as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        free = decide_interval(load_config(SITE), store, NOW - timedelta(hours=1))
        planned = free.model_copy(update={"pools": [p.model_copy(update={"units_by_mode": {"stock": 28}, "units_on": 28})
                                                    if p.name == "s19xp" else p for p in free.pools]})
        store.add_decision(planned, NOW - timedelta(hours=1), 0.1)
        with RunningFarm(machines):
            for minutes in (20, 5):  # two scans: the medians are over the readings of the last learn_window_s
                store.add_telemetry(scan(read_inventory(inventory, cfg), NOW - timedelta(minutes=minutes), timeout_s=2.0))
        doc = decide_interval(cfg, store, NOW)
    pool = doc.fleet["pools"]["s19xp"]
    assert pool["measured_by_mode"] == {"eco": 10, "stock": 18}
    assert doc.fleet["initial_state"] == {"s19xp": {"planned": {"stock": 28}, "measured": {"eco": 10, "stock": 18}}}
    s19xp = doc.pool("s19xp")
    if learn:
        assert pool["learned_modes"]["stock"] | {"readings": 36} == {
            "power_w": 3100.0, "hashrate_th": 137.0, "config_power_w": 3010.0, "config_hashrate_th": 140.0,
            "machines": 18, "readings": 36}
        assert pool["learned_modes"]["eco"]["power_w"] == 2300.0 and "turbo" not in pool["learned_modes"]
        per_unit_w = {"eco": 2300.0, "stock": 3100.0, "turbo": 3551.8}  # no machine runs turbo: the catalogue's
    else:
        assert "learned_modes" not in pool
        per_unit_w = {"eco": 2257.5, "stock": 3010.0, "turbo": 3551.8}
    assert s19xp.units_on == 28
    assert s19xp.power_kw == pytest.approx(sum(n * per_unit_w[m] for m, n in s19xp.units_by_mode.items()) / 1000, abs=0.1)
