"""The fleet through real pyasic against a simulated LuxOS farm on loopback (`hashpivot.feeds.fleet.farm`
speaks the firmware's TCP 4028 protocol as docs/fleet-protocols.md records it): scan, store, per-pool status."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hashpivot.feeds.fleet.farm import Farm, SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.fleet.scan import scan, telemetry_frame
from hashpivot.feeds.fleet.status import pool_status
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.models.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "configs" / "site.toml"


class RunningFarm:
    """The farm's servers on an event loop of their own thread, as a real site's machines are elsewhere."""

    def __init__(self, machines: list[SimMachine]):
        self.farm, self.loop = Farm(machines), asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Farm:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.farm.start(), self.loop).result(timeout=30)
        return self.farm

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.farm.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def farm_of_200() -> list[SimMachine]:
    """200 S19 XPs, 5 % faulty (the slow ones answer after 8 s: well past a 4 s timeout, which leaves a loaded
    machine room to tell an unreachable address from a slow one): 4 unreachable, 3 slower than the timeout, 3 answering errors; 6 asleep."""
    faults = {3: "unreachable", 40: "unreachable", 77: "unreachable", 150: "unreachable", 9: "slow", 99: "slow",
              199: "slow", 12: "error", 120: "error", 180: "error"}
    machines = [SimMachine(ip, fault=faults.get(i), slow_s=8.0) for i, ip in enumerate(farm_ips(200, "127.0.3.1"))]
    for i in (20, 21, 22, 60, 61, 62):
        machines[i].sleeping = True
    return machines


@pytest.mark.slow
def test_a_scan_of_200_machines_with_5_percent_faulty_reports_each_as_it_is(tmp_path):
    cfg = load_config(SITE)
    machines = farm_of_200()
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with RunningFarm(machines):
        rows = scan(read_inventory(inventory, cfg), datetime.now(timezone.utc), concurrency=100, timeout_s=4.0)
    by_ip = {r.ip: r for r in rows}
    assert len(rows) == 200
    assert not by_ip["127.0.3.4"].reachable and "no miner answered" in by_ip["127.0.3.4"].error
    assert not by_ip["127.0.3.10"].reachable and "no answer within 4 s" in by_ip["127.0.3.10"].error
    assert by_ip["127.0.3.13"].reachable and by_ip["127.0.3.13"].error  # answers, with API errors only
    asleep = by_ip["127.0.3.21"]
    assert asleep.reachable and asleep.mining is False and asleep.watts == 95.0 and asleep.hashrate_th == 0.0
    well = by_ip["127.0.3.1"]
    assert well.mining and 2_950 <= well.watts <= 3_070 and 138 <= well.hashrate_th <= 142 and well.temp_c
    with Store(tmp_path / "s.sqlite") as store:
        store.add_telemetry(rows)
        status = pool_status(cfg, store.latest_telemetry()).iloc[0].to_dict()
    assert {k: status[k] for k in ("machines", "healthy", "mining", "sleeping", "unreachable", "erroring")} == {
        "machines": 200, "healthy": 190, "mining": 184, "sleeping": 6, "unreachable": 7, "erroring": 3}
    assert status["config_stock_kw"] == pytest.approx(184 * 3.01, abs=0.1)
    assert status["measured_kw"] == pytest.approx(184 * 3.01 + 6 * 0.095, rel=0.01)  # within the farm's 1 % noise


def test_an_inventory_with_a_bad_row_is_refused_naming_the_line(tmp_path):
    cfg = load_config(SITE)
    path = tmp_path / "fleet.csv"
    for body, expected in (("ip,pool\n127.0.3.1,s19xp\n127.0.3.999,s19xp\n", r"line 3, column ip: '127.0.3.999' is not an IP"),
                           ("ip,pool\n127.0.3.1,s9\n", r"line 2, column pool: 's9' is not an ASIC pool of the site"),
                           ("ip,pool\n127.0.3.1,s19xp\n127.0.3.1,s21\n", r"line 3, column ip: 127.0.3.1 is listed twice")):
        path.write_text(body)
        with pytest.raises(ConfigError, match=expected):
            read_inventory(path, cfg)


@pytest.mark.e2e
def test_the_cli_rehearsal_simulate_then_scan_then_status(tmp_path):
    """What an operator runs before pointing hashpivot at a real site (README: Driving the fleet)."""
    sim = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "simulate", "--machines", "30",
                            "--first-ip", "127.0.7.1", "--inventory", str(tmp_path / "sim.csv"), "--seconds", "60"], cwd=tmp_path,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert "simulating 30 LuxOS machines" in sim.stderr.readline()
        db = ["--db", str(tmp_path / "s.sqlite"), "--set", "fleet.timeout_s=2"]
        scanned = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "scan", "--inventory",
                                  str(tmp_path / "sim.csv"), *db, "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120)
        assert scanned.returncode == 0, scanned.stderr
        status = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "status", *db, "--format", "csv"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert status.returncode == 0 and status.stdout.splitlines()[1].startswith("s19xp,30,30,30,0,0,0,")
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def test_the_daemon_decides_on_the_healthy_machines_the_fleet_reports(tmp_path, caplog):
    """With [fleet] configured, a pool's units_available is its healthy machines (fresh telemetry, never above
    the config's figure); telemetry past fleet.telemetry_staleness_s leaves the config's figure, with a warning."""
    import logging
    from datetime import timedelta

    from hashpivot.feeds.embedded import embedded_data_dir
    from hashpivot.feeds.importer import import_files
    from hashpivot.optimizer.service.rolling import decide_interval

    machines = [SimMachine(ip, fault={2: "unreachable", 7: "unreachable", 5: "error"}.get(i))
                for i, ip in enumerate(farm_ips(12, "127.0.4.1"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    cfg = load_config(SITE, [f"fleet.inventory='{inventory}'"])
    now = datetime(2025, 6, 1, 0, 0, tzinfo=timezone.utc)
    with Store(tmp_path / "s.sqlite") as store:
        import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
        blind = decide_interval(cfg, store, now)  # a fleet configured but never scanned: the document says so
        assert any("no fleet telemetry stored yet" in w for w in blind.fleet["warnings"]), blind.fleet
        with RunningFarm(machines):
            store.add_telemetry(scan(read_inventory(inventory, cfg), now, timeout_s=2.0))
        doc = decide_interval(cfg, store, now)
        assert doc.pool("s19xp").units_available == 9 and doc.pool("s19xp").units_on <= 9
        assert doc.fleet["pools"]["s19xp"] == {"units_available": 9, "healthy_machines": 9, "config_units_available": 6500,
                                               "measured_by_mode": {"stock": 9}}
        assert doc.pool("s21").units_available == 9500  # no machines of that pool in the inventory: config figure
        with caplog.at_level(logging.WARNING):
            later = decide_interval(cfg, store, now + timedelta(hours=1))
    assert later.pool("s19xp").units_available == 6500 and "older than 900 s" in caplog.text


def _decision(units_by_mode: dict[str, int]):
    from hashpivot.models.decision import Decision, PoolDecision, SiteState

    return Decision(schema_version=2, status="optimal", site=SiteState(cap_kw=90_000, it_power_kw=0, site_power_kw=0),
                    interval_start_utc="2025-06-01T00:00:00Z", horizon_steps=1, step_minutes=60, pools=[
                        PoolDecision(name="s19xp", kind="asic", hall="hall-a", units_on=sum(units_by_mode.values()),
                                     units_available=6500, units_by_mode=units_by_mode, power_kw=0, reason="test")])


class Meter:
    """The farm's total power sampled every 5 ms while a transition runs (what the site meter would see)."""

    def __init__(self, farm):
        self.farm, self.samples, self.stop = farm, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(0.005):
            self.samples.append(self.farm.site_power_kw())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_a_decision_turning_30_percent_off_and_changing_modes_is_applied_reductions_first(tmp_path):
    """60 machines all at stock: the decision keeps 42 (18 eco, 24 stock). The farm ends exactly so, the 18
    asleep are the least efficient measured ones, and the meter never reads more than before (the cap)."""
    from hashpivot.optimizer.service.fleet_apply import apply_waves
    from hashpivot.optimizer.service.fleet_plan import plan, waves

    cfg = load_config(SITE)
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(60, "127.0.8.1")]
    for i, m in enumerate(machines):  # measured efficiency differs: the last 18 draw most per TH/s
        m.profiles = tuple(type(p)(p.name, p.watts * (1 + 0.001 * i), p.hashrate_th) for p in m.profiles)
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with RunningFarm(machines) as farm:
        telemetry = telemetry_frame(scan(read_inventory(inventory, cfg), datetime.now(timezone.utc), timeout_s=2.0))
        before_kw = farm.site_power_kw()
        commands = plan(cfg, _decision({"eco": 18, "stock": 24}), telemetry)
        steps = waves(commands, before_kw, before_kw, None)
        with Meter(farm) as meter:
            applied = asyncio.run(apply_waves(steps, timeout_s=2.0))
    assert all(a.ok for a in applied), [a.detail for a in applied if not a.ok]
    assert sorted(m.ip for m in machines if m.sleeping) == [m.ip for m in machines[42:]]
    assert sum(m.profile == "290MHz" for m in machines) == 18 and sum(m.profile == "default" and not m.sleeping for m in machines) == 24
    assert max(meter.samples) <= before_kw + 1e-6  # never above where it started: reductions went first
    firsts = [c.delta_kw for c in steps[0]]
    assert all(d < 0 for d in firsts)


def test_raises_go_in_waves_under_the_cap_and_the_ramp_limit():
    from hashpivot.optimizer.service.fleet_plan import Command, waves

    raises = [Command(f"127.0.9.{i}", "s19xp", "wake", 3010.0, 2.915) for i in range(1, 21)]
    cut = [Command("127.0.9.99", "s19xp", "sleep", None, -2.9)]
    steps = waves(cut + raises, site_kw=100.0, cap_kw=140.0, ramp_kw=10.0)
    assert steps[0] == cut  # the reduction alone, first
    assert all(sum(c.delta_kw for c in w) <= 10.0 for w in steps[1:])  # each wave within the ramp limit
    level = 100.0 - 2.9 + sum(c.delta_kw for w in steps[1:] for c in w)
    assert level <= 140.0 and sum(len(w) for w in steps[1:]) == 14  # the 15th raise would pass the cap: it waits


def test_a_machine_that_refuses_its_power_target_is_retried_then_reported_and_nothing_else_is_disturbed(tmp_path):
    from hashpivot.optimizer.service.fleet_apply import apply_waves
    from hashpivot.optimizer.service.fleet_plan import plan, waves

    cfg = load_config(SITE)
    machines = [SimMachine(ip, noise=0.0, fault="refuse_profile" if i == 0 else None) for i, ip in enumerate(farm_ips(6, "127.0.10.1"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with RunningFarm(machines) as farm:
        telemetry = telemetry_frame(scan(read_inventory(inventory, cfg), datetime.now(timezone.utc), timeout_s=2.0))
        steps = waves(plan(cfg, _decision({"eco": 6}), telemetry), farm.site_power_kw(), farm.site_power_kw(), None)
        applied = asyncio.run(apply_waves(steps, timeout_s=2.0, retries=2))
    failed = [a for a in applied if not a.ok]
    assert [(a.command.ip, a.attempts) for a in failed] == [("127.0.10.1", 3)] and "Profile not applied" in failed[0].detail
    assert all(m.profile == "290MHz" for m in machines[1:]) and machines[0].profile == "default"


@pytest.mark.e2e
def test_a_dry_run_commands_nothing_and_logs_the_exact_plan(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "simulate", "--machines", "10",
                            "--first-ip", "127.0.11.1", "--inventory", str(tmp_path / "sim.csv"), "--seconds", "60"],
                           cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert "simulating 10 LuxOS machines" in sim.stderr.readline()
        (tmp_path / "d.json").write_text(_decision({"eco": 4, "stock": 3}).to_json())
        common = ["--inventory", str(tmp_path / "sim.csv"), "--db", str(tmp_path / "s.sqlite"), "--set", "fleet.timeout_s=2"]
        dry = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "apply", str(tmp_path / "d.json"),
                              "--dry-run", *common, "--format", "csv"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0, dry.stderr
        planned = dry.stdout.splitlines()[1:]
        assert len(planned) == 7 and sum(",sleep," in r for r in planned) == 3 and sum("set_power 2257.5 W" in r for r in planned) == 4
        status = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "scan", *common, "--format", "csv"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert status.stdout.splitlines()[1].startswith("s19xp,10,10,10,0,")  # still all mining: nothing was sent
        log = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "log", "--db", str(tmp_path / "s.sqlite"),
                              "--format", "csv"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert log.stdout.count(",planned,") == 7
    finally:
        sim.terminate()
        sim.wait(timeout=30)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["dry-run", "on"])
def test_tick_with_fleet_apply_commands_the_farm_to_its_decision(tmp_path, mode):
    """tick against the loopback feed server and a 12-machine farm: the decision is taken on the 11 healthy
    machines, then (fleet.apply = "on") the farm runs exactly its step 0 for the pool, or (dry-run) nothing
    changes and the plan is audited."""
    import json

    from pytest_httpserver import HTTPServer

    from tests.feeds_support import loopback_config, serve_all

    server = HTTPServer(threaded=True)
    server.start()
    serve_all(server)
    machines = [SimMachine(ip, noise=0.0, fault="unreachable" if i == 4 else None) for i, ip in enumerate(farm_ips(12, "127.0.12.1"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    _, sets = loopback_config(server.url_for("/"), retries=0)
    sets += [f"daemon.publish_dir='{tmp_path / 'out'}'", 'daemon.metrics_port="off"', f"fleet.inventory='{inventory}'",
             f"fleet.apply='{mode}'", "fleet.timeout_s=2"]
    args = ["tick", "--format", "json", "--db", str(tmp_path / "s.sqlite")] + [x for s in sets for x in ("--set", s)]
    try:
        with RunningFarm(machines):
            scanned = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "scan", *args[3:]],
                                     cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert scanned.returncode == 0, scanned.stderr
            proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True,
                                  text=True, timeout=180)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    pool = next(p for p in json.loads(proc.stdout)["pools"] if p["name"] == "s19xp")
    assert pool["units_available"] == 11
    with Store(tmp_path / "s.sqlite") as store:
        audit = store.fleet_log()
    assert set(audit["decision_seq"]) == {1}
    awake = [m for m in machines if m.fault is None and not m.sleeping]
    if mode == "dry-run":
        assert set(audit["result"]) == {"planned"} and len(awake) == 11  # nothing was sent
    status = json.loads(subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "status", "--format", "json",
                                        *args[3:]], cwd=ROOT, capture_output=True, text=True, timeout=120).stdout)
    assert status["last_fleet_apply"]["ok" if mode == "on" else "planned"] == len(audit)
    if mode == "on":
        assert set(audit["result"]) == {"ok"}
        assert len(awake) == pool["units_on"]
        eco_w = next(m.power_w for m in load_config(SITE).asic_pools[1].modes if m.name == "eco")
        assert sum(m.profile == "290MHz" for m in awake) == pool["units_by_mode"].get("eco", 0) and eco_w == 2257.5


def test_fleet_metrics_show_machines_by_state_power_and_the_last_apply(tmp_path):
    from prometheus_client import generate_latest

    from hashpivot.optimizer.service.metrics import Metrics

    cfg = load_config(SITE)
    machines = [SimMachine(ip, noise=0.0, fault="unreachable" if i == 0 else None) for i, ip in enumerate(farm_ips(5, "127.0.14.1"))]
    machines[1].sleeping = True
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    with RunningFarm(machines), Store(tmp_path / "s.sqlite") as store:
        store.add_telemetry(scan(read_inventory(inventory, cfg), datetime.now(timezone.utc), timeout_s=2.0))
        store.log_commands(datetime.now(timezone.utc), 7, [("127.0.14.3", "s19xp", "sleep", "ok", "verified", 1),
                                                            ("127.0.14.4", "s19xp", "sleep", "failed", "timeout", 2)])
        metrics = Metrics()
        metrics.record_fleet(pool_status(cfg, store.latest_telemetry()), _decision({"stock": 2}), store.last_apply())
    text = generate_latest(metrics.registry).decode()
    for line in ('hashpivot_fleet_machines{pool="s19xp",state="unreachable"} 1.0', 'hashpivot_fleet_machines{pool="s19xp",state="sleeping"} 1.0',
                 'hashpivot_fleet_machines{pool="s19xp",state="mining"} 3.0', 'hashpivot_fleet_last_apply_commands{result="failed"} 1.0',
                 'hashpivot_fleet_last_apply_commands{result="ok"} 1.0', 'hashpivot_fleet_measured_kw{pool="s19xp"} 9.1'):
        assert line in text, text



@pytest.mark.slow
def test_the_daemon_drives_the_farm_and_a_kill_9_mid_apply_continues_from_what_the_machines_are(tmp_path):
    """`run` with fleet.apply = "on", decisions every 2 s, fleet scans every 3 s, against the loopback feed
    server and a 24-machine farm whose machines answer slowly (so kills land mid-apply); killed with SIGKILL
    three times and restarted. At the end the farm runs exactly the last decision's step 0 for the pool, every
    apply is audited, and no log has a traceback."""
    import json
    import random
    import signal
    import time

    from pytest_httpserver import HTTPServer

    from tests.daemon_support import wait_for, wait_started
    from tests.feeds_support import loopback_config, serve_all

    def decisions_stored(db) -> int:
        with Store(db) as store:
            return len(store.decisions(limit=100))

    server = HTTPServer(threaded=True)
    server.start()
    serve_all(server)
    machines = [SimMachine(ip, noise=0.0, fault="slow" if i % 6 == 0 else None, slow_s=0.2)
                for i, ip in enumerate(farm_ips(24, "127.0.15.1"))]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    _, sets = loopback_config(server.url_for("/"), retries=0)
    sets += [f"daemon.publish_dir='{tmp_path / 'out'}'", 'daemon.metrics_port="off"', f"fleet.inventory='{inventory}'",
             "fleet.apply='on'", "fleet.timeout_s=2", "daemon.decision_cron.second='*/2'", "daemon.fleet_scan_cron.second='*/3'",
             "asic_pools.s19xp.units_available=16"]  # fewer than the farm: the decision must put machines to sleep
    args = ["run", "--db", str(tmp_path / "s.sqlite")] + [x for s in sets for x in ("--set", s)]
    rng, log_path = random.Random(5), tmp_path / "daemon.log"
    try:
        with RunningFarm(machines), open(log_path, "a") as log:
            for kill in range(4):
                proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, stdout=log,
                                        stderr=subprocess.STDOUT)
                wait_started(log_path, kill + 1, proc)
                if kill < 3:
                    time.sleep(rng.uniform(1.0, 4.0))  # decisions every 2 s: some kills land mid-apply
                else:
                    wait_for(lambda: decisions_stored(tmp_path / "s.sqlite") > 4, timeout_s=60)
                    time.sleep(6.0)  # the last applies and a scan finish
                proc.send_signal(signal.SIGKILL if kill < 3 else signal.SIGTERM)
                proc.wait(timeout=60)
    finally:
        server.stop()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]
    with Store(tmp_path / "s.sqlite") as store:
        seq, last = store.last_decision()
        audit = store.fleet_log(limit=10_000)
    pool = last.pool("s19xp")
    assert pool.units_available == 16 and len(audit) > 0 and seq > 3
    awake = [m for m in machines if not m.sleeping]
    assert len(awake) == pool.units_on, (len(awake), pool.units_by_mode, audit.tail(10).to_dict("records"))
    assert sum(m.profile == "290MHz" for m in awake) == pool.units_by_mode.get("eco", 0)
    print(f"\nfleet drill: 3 kill -9, {seq} decisions, {len(audit)} commands audited, farm = last decision "
          f"({pool.units_on} on: {json.dumps(pool.units_by_mode)})")


def test_a_simulated_farm_that_cannot_listen_leaves_the_inventory_as_it_was(tmp_path):
    """A drill's `fleet simulate` failed on a port in use and still overwrote its --inventory file."""
    inventory = tmp_path / "fleet.csv"
    inventory.write_text("ip,pool\n10.0.0.1,s19xp\n")
    with RunningFarm([SimMachine("127.0.19.1", noise=0.0)]):  # holds 127.0.19.1:4028
        proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "simulate", "--machines", "2",
                               "--first-ip", "127.0.19.1", "--vnish-fraction", "0", "--inventory", str(inventory),
                               "--seconds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot listen" in proc.stderr, proc.stderr
    assert inventory.read_text() == "ip,pool\n10.0.0.1,s19xp\n"


def test_one_apply_raises_at_most_one_ramp_limit_net_of_its_reductions():
    from hashpivot.optimizer.service.fleet_plan import Command, within_ramp

    cuts = [Command(f"127.0.9.{i}", "s19xp", "sleep", None, -3.0) for i in range(1, 5)]  # frees 12 kW
    raises = [Command(f"127.0.9.{i}", "s21", "wake", 3500.0, 3.5) for i in range(10, 20)]  # 35 kW wanted
    now, later = within_ramp(cuts + raises, ramp_kw=10.0)
    assert now[:4] == cuts and sum(c.delta_kw for c in now) <= 10.0 + 1e-9  # the net rise within one limit
    assert len(now) - 4 == 6 and later == raises[6:]  # 6 x 3.5 = 21 kW <= 12 + 10
    assert within_ramp(raises, None) == (raises, [])
    assert within_ramp([raises[0]], 1.0) == ([raises[0]], [])  # one machine always goes


def test_fleet_status_counts_the_inventory_not_every_address_ever_scanned(tmp_path):
    """A drill: after a scan of a two-line inventory beside an earlier 200-machine one, status and the metrics
    counted 201 machines, one of them a stale `::1` row; an IPv6 inventory line and an unknown hall went in."""
    from hashpivot.feeds.fleet.inventory import in_fleet
    from hashpivot.feeds.fleet.scan import Telemetry
    from hashpivot.models.errors import ConfigError

    inventory = tmp_path / "fleet.csv"
    inventory.write_text("ip,pool,hall\n10.0.0.1,s19xp,hall-a\n10.0.0.2,s19xp,hall-a\n")
    cfg = load_config(SITE, [f"fleet.inventory='{inventory}'"])
    now = datetime.now(timezone.utc)
    with Store(tmp_path / "s.sqlite") as store:
        store.add_telemetry([Telemetry(ip, "s19xp", now, True, mining=True, watts=3000.0) for ip in
                             ("10.0.0.1", "10.0.0.2", "10.0.0.99")])
        telemetry = store.latest_telemetry()
    assert len(telemetry) == 3 and sorted(in_fleet(telemetry, cfg)["ip"]) == ["10.0.0.1", "10.0.0.2"]
    for line, message in (("::1,s19xp,hall-a", "is IPv6"), ("10.0.0.3,s19xp,hall-zz", "'hall-zz' is not a hall")):
        bad = tmp_path / "bad.csv"
        bad.write_text(f"ip,pool,hall\n{line}\n")
        with pytest.raises(ConfigError, match=message):
            read_inventory(bad, cfg)


def test_fleet_log_refuses_a_limit_below_one(tmp_path):
    """A drill: `fleet log --limit -3` printed the whole audit log."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "log", "--limit", "-3", "--db",
                           str(tmp_path / "s.sqlite")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--limit" in proc.stderr
