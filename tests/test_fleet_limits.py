"""Blast-radius and read-back limits of `fleet apply` against a simulated LuxOS farm through real pyasic:
`fleet.max_change_fraction` bounds the machines one apply may command (reductions first, the rest deferred and
audited), and the next apply carries on from what the machines report."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.optimizer.service.fleet_apply import apply_decision
from tests.test_fleet import RunningFarm, _decision

SITE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"


def test_max_change_fraction_defers_the_rest_to_the_next_apply(tmp_path):
    cfg = load_config(SITE, ["fleet.max_change_fraction=0.3", "fleet.timeout_s=2"])
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(10, "127.0.16.1")]
    for i, m in enumerate(machines):  # the last machines draw most per TH/s: they go to sleep first
        m.profiles = tuple(type(p)(p.name, p.watts * (1 + 0.01 * i), p.hashrate_th) for p in m.profiles)
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        first, _ = apply_decision(cfg, store, inventory, _decision({"stock": 4}), 1, False, datetime.now(timezone.utc))
        asleep_after_first = sorted(m.ip for m in machines if m.sleeping)
        second, _ = apply_decision(cfg, store, inventory, _decision({"stock": 4}), 2, False, datetime.now(timezone.utc))
        log = store.fleet_log()
    # 3 of 10 sent; the 3 deferred are in the apply's own table too (a drill found them only in the audit)
    assert [e[3] for e in first].count("ok") == 3 and [e[3] for e in first].count("deferred") == 3
    assert asleep_after_first == sorted(m.ip for m in machines[7:])  # the three least efficient
    assert set(log.loc[log["result"] == "deferred", "ip"]) == {m.ip for m in machines[4:7]}  # audited as waiting
    assert sorted(m.ip for m in machines if m.sleeping) == sorted(m.ip for m in machines[4:])  # finished next time
    assert [e[3] for e in second].count("ok") == 3


def test_the_daemons_fleet_apply_reports_its_duration_to_the_metrics(tmp_path):
    from prometheus_client import generate_latest

    from hashpivot.optimizer.service.metrics import Metrics
    from hashpivot.optimizer.service.outbox import FLEET, drain

    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(4, "127.0.16.101")]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    cfg = load_config(SITE, [f"fleet.inventory='{inventory}'", "fleet.apply='on'", "fleet.timeout_s=2"])
    metrics = Metrics()
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        store.add_decision(_decision({"stock": 2}), datetime.now(timezone.utc), 0.1, targets=[FLEET])
        drain(cfg, store, tmp_path / "out", on_apply=metrics.fleet_apply_duration.set)
    assert sum(m.sleeping for m in machines) == 2
    (line,) = [x for x in generate_latest(metrics.registry).decode().splitlines()
               if x.startswith("hashpivot_fleet_last_apply_duration_seconds ")]
    assert 0.0 < float(line.split()[1]) < 30.0


def test_a_target_the_firmware_rounds_down_is_not_sent_again_every_decision(tmp_path):
    """LuxOS has no profile for turbo's 3,552 W: it runs its highest, 3,010 W (stock's figure). The audit says
    the machine was set to turbo and verified at 3,010 W, so the next apply of the same decision sends nothing,
    and the measured state counts it in turbo; a machine someone moved to another profile is planned again."""
    from hashpivot.feeds.fleet.status import commanded_targets, measured_by_mode

    cfg = load_config(SITE, ["fleet.timeout_s=2"])
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(3, "127.0.16.201")]
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        first, _ = apply_decision(cfg, store, inventory, _decision({"turbo": 3}), 1, False, datetime.now(timezone.utc))
        again, _ = apply_decision(cfg, store, inventory, _decision({"turbo": 3}), 2, False, datetime.now(timezone.utc))
        measured = measured_by_mode(cfg, store.latest_telemetry(), datetime.now(timezone.utc), 900,
                                    commanded_targets(store.last_ok_commands()))
        machines[0].profile = "290MHz"  # moved by hand
        moved, _ = apply_decision(cfg, store, inventory, _decision({"turbo": 3}), 3, False, datetime.now(timezone.utc))
    assert [e[2] for e in first] == ["set_power 3551.8 W"] * 3 and all(e[3] == "ok" for e in first)
    assert again == [] and measured == {"s19xp": {"turbo": 3}}
    assert [(e[0], e[2]) for e in moved] == [(machines[0].ip, "set_power 3551.8 W")]


def test_a_machine_that_fails_its_command_is_left_out_of_the_next_decision(tmp_path):
    from hashpivot.feeds.embedded import embedded_data_dir
    from hashpivot.feeds.importer import import_files
    from hashpivot.optimizer.service.rolling import decide_interval

    machines = [SimMachine(ip, noise=0.0, fault="refuse_profile" if i == 0 else None) for i, ip in enumerate(farm_ips(5, "127.0.16.151"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    cfg = load_config(SITE, [f"fleet.inventory='{inventory}'", "fleet.timeout_s=2", "fleet.retries=1"])
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        now = datetime(2025, 6, 1, tzinfo=timezone.utc)  # inside the embedded market data
        entries, _ = apply_decision(cfg, store, read_inventory(inventory, cfg), _decision({"eco": 5}), 1, False, now)
        doc = decide_interval(cfg, store, now)
    assert [(e[0], e[3], e[5]) for e in entries if e[3] != "ok"] == [(machines[0].ip, "failed", 2)]  # retried once
    assert doc.fleet["pools"]["s19xp"]["healthy_machines"] == 4 and doc.pool("s19xp").units_available == 4
    assert doc.fleet["last_apply"]["commands"] == {"failed": 1, "ok": 4}
    assert doc.fleet["last_apply"]["failed"][0].startswith(f"{machines[0].ip} set_power 2257.5 W: ")


def test_one_apply_raises_at_most_one_ramp_limit_and_the_next_apply_carries_on(tmp_path):
    """A drill woke 19 machines under a 30 kW ramp limit in three waves stamped the same second: three ramp
    limits in one step. One apply now raises at most one limit's worth (IT kW x PUE at the meter); the rest is
    audited as deferred and the next decision, one step later, raises the next share."""
    cfg = load_config(SITE, ["site.ramp_limit_kw_per_step=10", "fleet.timeout_s=2"])  # about three S19 XPs at PUE 1.07
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(8, "127.0.16.201")]
    for m in machines:
        m.sleeping = True
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        first, _ = apply_decision(cfg, store, inventory, _decision({"stock": 8}), 1, False, datetime.now(timezone.utc))
        awake_after_first = sum(not m.sleeping for m in machines)
        second, _ = apply_decision(cfg, store, inventory, _decision({"stock": 8}), 2, False, datetime.now(timezone.utc))
        awake_after_second = sum(not m.sleeping for m in machines)
    sent = [e for e in first if e[3] == "ok"]
    assert 1 <= len(sent) == awake_after_first <= 3  # within 10 kW at the meter
    deferred = [e for e in store_rows(tmp_path, 1) if e["result"] == "deferred"]
    assert len(deferred) == 8 - len(sent) and all("site.ramp_limit_kw_per_step = 10 kW" in d["detail"] for d in deferred)
    assert awake_after_second == 2 * awake_after_first  # the next step raises the next share


def store_rows(tmp_path: Path, seq: int) -> list[dict]:
    with Store(tmp_path / "s.sqlite") as store:
        log = store.fleet_log()
    return log[log["decision_seq"] == seq].to_dict("records")


def test_machines_that_cannot_be_commanded_are_audited_unavailable_not_skipped(tmp_path):
    """A drill: with the VNish password wrong, `fleet apply` of an all-off decision sent 139 commands, exit 0,
    and the 60 VNish machines kept mining; an all-unreachable inventory given 200 units printed '0 commands'."""
    import pandas as pd

    from hashpivot.optimizer.service.fleet_plan import unavailable

    cfg = load_config(SITE)
    refused = "refused the password: check fleet.password_env / fleet.password_file"
    telemetry = pd.DataFrame({"ip": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], "pool": "s19xp",
                              "reachable": [1, 1, 1, 0], "error": [None, refused, refused, "no miner answered"],
                              "mining": pd.array([1, pd.NA, 1, pd.NA], dtype="Int64"),
                              "watts": [3010.0, None, 3005.0, None], "hashrate_th": [140.0, None, 139.0, None]})
    off = unavailable(cfg, _decision({}), telemetry)
    assert {u.ip for u in off} == {"10.0.0.2", "10.0.0.3"}  # answer but refuse: may hash on; the dead one is not news
    assert "may be mining (it cannot say), and cannot be put to sleep" in next(u.detail for u in off if u.ip == "10.0.0.2")
    assert "mining at 3,005 W" in next(u.detail for u in off if u.ip == "10.0.0.3")
    assert unavailable(cfg, _decision({"stock": 3}), telemetry) == []  # the three running are what it wants
    short = unavailable(cfg, _decision({"stock": 4}), telemetry)
    assert [u.ip for u in short] == ["10.0.0.4"] and "cannot be started: the pool runs 1 unit short" in short[0].detail

    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(3, "127.0.16.201")]
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store:  # no farm listens: every machine is unreachable
        entries, _ = apply_decision(load_config(SITE, ["fleet.timeout_s=1"]), store, inventory, _decision({"stock": 3}),
                                    None, False, datetime.now(timezone.utc))
        log = store.fleet_log()
    assert [e[3] for e in entries] == ["unavailable"] * 3 and set(log["result"]) == {"unavailable"}


def test_a_decision_with_pools_the_site_lacks_is_never_applied(tmp_path):
    from hashpivot.models.errors import InputError
    from hashpivot.optimizer.service.fleet_apply import check_pools

    cfg = load_config(SITE)
    doc = _decision({"stock": 1})
    check_pools(cfg, doc)  # a decision for a subset of the pools is fine: the others are not commanded
    other = doc.model_copy(update={"pools": [doc.pools[0].model_copy(update={"name": "s9"})]})
    with pytest.raises(InputError, match=r"the decision has pools s9 \(asic\) that this site's config does not"):
        check_pools(cfg, other)


def test_the_stop_file_audits_every_planned_command_as_not_sent(tmp_path):
    stop = tmp_path / "STOP"
    stop.touch()
    cfg = load_config(SITE, [f"fleet.stop_file='{stop}'", "fleet.timeout_s=2"])
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(3, "127.0.16.211")]
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), cfg)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        entries, _ = apply_decision(cfg, store, inventory, _decision({}), None, False, datetime.now(timezone.utc))
    assert [e[3] for e in entries] == ["stopped"] * 3 and "STOP exists (fleet.stop_file" in entries[0][4]
    assert not any(m.sleeping for m in machines)
