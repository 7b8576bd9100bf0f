"""Blast-radius and read-back limits of `fleet apply` against a simulated LuxOS farm through real pyasic:
`fleet.max_change_fraction` bounds the machines one apply may command (reductions first, the rest deferred and
audited), and the next apply carries on from what the machines report."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.optimizer.service.fleet_apply import apply_decision
from tests.test_fleet import RunningFarm, _decision

SITE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"


def test_max_change_fraction_defers_the_rest_to_the_next_apply(tmp_path):
    cfg = load_config(SITE, ["fleet.max_change_fraction=0.3", "fleet.timeout_s=2"])
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(10, "127.0.14.1")]
    for i, m in enumerate(machines):  # the last machines draw most per TH/s: they go to sleep first
        m.profiles = tuple(type(p)(p.name, p.watts * (1 + 0.01 * i), p.hashrate_th) for p in m.profiles)
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        first, _ = apply_decision(cfg, store, inventory, _decision({"stock": 4}), 1, False, datetime.now(timezone.utc))
        asleep_after_first = sorted(m.ip for m in machines if m.sleeping)
        second, _ = apply_decision(cfg, store, inventory, _decision({"stock": 4}), 2, False, datetime.now(timezone.utc))
        log = store.fleet_log()
    assert [e[3] for e in first].count("ok") == 3 and [e[3] for e in first].count("deferred") == 0  # 3 of 10 sent
    assert asleep_after_first == sorted(m.ip for m in machines[7:])  # the three least efficient
    assert set(log.loc[log["result"] == "deferred", "ip"]) == {m.ip for m in machines[4:7]}  # audited as waiting
    assert sorted(m.ip for m in machines if m.sleeping) == sorted(m.ip for m in machines[4:])  # finished next time
    assert [e[3] for e in second].count("ok") == 3
