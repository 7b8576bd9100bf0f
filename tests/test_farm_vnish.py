"""The second firmware family of the loopback farm, VNish (`hashpivot.feeds.fleet.farm_vnish`: HTTP on port 80
and BMMiner RPC on 4028, as docs/fleet-protocols.md records pyasic 0.79.0 driving it), proven with real pyasic:
identification in a mixed farm, scan values, sleep / wake / preset with read-back, and every fault ending as a
failed command with its reason. Addresses 127.3.x.y (other test modules use 127.0.x.y and 127.1.x.y)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import pyasic
import pytest
from pyasic.miners.backends.luxminer import LUXMiner
from pyasic.miners.backends.vnish import VNish

from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.farm_mix import mixed_farm
from hashpivot.feeds.fleet.farm_vnish import VNishMachine
from hashpivot.feeds.fleet.inventory import Machine, read_inventory
from hashpivot.feeds.fleet.scan import scan
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.optimizer.service.fleet_apply import apply_decision, apply_waves
from hashpivot.optimizer.service.fleet_plan import Command
from tests.test_fleet import ROOT, SITE, RunningFarm, _decision


def _port_80_free_to_bind() -> str | None:
    """Why VNish machines cannot be simulated here (pyasic's VNish web port is fixed at 80), or None."""
    with socket.socket() as s:
        try:
            s.bind(("127.3.255.254", 80))
        except OSError as exc:
            return f"cannot bind 127.3.255.254:80 ({exc.strerror}): VNish needs port 80 (root or CAP_NET_BIND_SERVICE)"
    return None


pytestmark = pytest.mark.skipif(_port_80_free_to_bind() is not None, reason=str(_port_80_free_to_bind()))
ECO_W = 2257.5  # the s19xp pool's eco mode in configs/site.toml: VNish runs it as the 1900 W preset


def test_pyasic_identifies_every_machine_of_a_mixed_20_machine_farm_by_its_firmware(tmp_path):
    """10 VNish and 10 LuxOS machines, interleaved by seed; three rounds of 20 concurrent `get_miner` calls
    (the web and socket probes race each time) all give the firmware the inventory says."""
    machines = mixed_farm(20, "127.3.1.1", vnish_fraction=0.5, seed=3)
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), load_config(SITE))
    assert sorted(m.firmware for m in inventory) == ["luxos"] * 10 + ["vnish"] * 10
    assert [m.firmware for m in inventory] == [m.firmware for m in machines]

    async def identify() -> list:
        return await asyncio.gather(*(pyasic.get_miner(m.ip) for m in machines))

    with RunningFarm(machines):
        rounds = [asyncio.run(identify()) for _ in range(3)]
    for found in rounds:
        assert [type(x).__name__ for x in found] == ["VNishS19XP" if m.firmware == "vnish" else "LUXMinerS19XP" for m in machines]
        assert all(isinstance(x, VNish if m.firmware == "vnish" else LUXMiner) for x, m in zip(found, machines))
    vnish = next(m for m in machines if m.firmware == "vnish")
    assert "GET /" in vnish.requests and "stats" in vnish.commands  # the web probe, then the model from `stats`


def test_a_scan_reads_vnish_machines_within_the_noise_of_their_preset(tmp_path):
    machines = [VNishMachine(ip, profile=preset) for ip, preset in zip(farm_ips(3, "127.3.2.1"), ("3010", "2700", "1900"))]
    machines += [VNishMachine("127.3.2.4", sleeping=True), VNishMachine("127.3.2.5", fault="error"),
                 VNishMachine("127.3.2.6", fault="unreachable")]
    with RunningFarm(machines):
        rows = {r.ip: r for r in scan([Machine(m.ip, "s19xp", firmware="vnish") for m in machines], datetime.now(timezone.utc),
                                      timeout_s=2.0)}

        async def limits() -> list:
            miners = await asyncio.gather(*(pyasic.get_miner(m.ip) for m in machines[:3]))
            return [(await x.get_data(include=[pyasic.DataOptions.WATTAGE_LIMIT])).wattage_limit for x in miners]

        power_targets = asyncio.run(limits())
    for m, (watts, th) in zip(machines[:3], ((3010, 140), (2700, 125), (1900, 95))):
        row = rows[m.ip]
        assert row.reachable and row.mining and row.error is None
        assert watts * 0.99 - 1 <= row.watts <= watts * 1.01 + 1 and th * 0.99 <= row.hashrate_th <= th * 1.01, row
        assert row.temp_c == 61  # the hottest board (temp2_3)
    assert power_targets == [3010, 2700, 1900]  # pyasic's wattage_limit: the preset in /api/v1/settings
    asleep = rows["127.3.2.4"]
    assert asleep.reachable and asleep.mining is False and asleep.watts == 95.0 and asleep.hashrate_th == 0.0
    erroring = rows["127.3.2.5"]
    assert erroring.reachable and "chain 2: no chips found" in erroring.error and not erroring.mining
    assert not rows["127.3.2.6"].reachable and "no miner answered" in rows["127.3.2.6"].error
    assert {"POST /api/v1/unlock", "GET /api/v1/summary"} <= set(machines[0].requests)


def test_a_vnish_machine_with_another_password_refuses_pyasic_s_default_until_it_is_given():
    m = VNishMachine("127.3.32.1", noise=0.0, password="s3cret-pw")
    default = pyasic.settings.get("default_vnish_web_password", "admin")

    async def sleep() -> bool:
        miner = await pyasic.get_miner(m.ip)
        try:
            return await miner.stop_mining()
        except pyasic.APIError:
            return False

    with RunningFarm([m]):
        refused, asleep_after_refusal = asyncio.run(sleep()), m.sleeping
        pyasic.settings.update("default_vnish_web_password", "s3cret-pw")
        try:
            accepted = asyncio.run(sleep())
        finally:
            pyasic.settings.update("default_vnish_web_password", default)
    assert refused is False and not asleep_after_refusal
    assert accepted is True and m.sleeping


def test_apply_sleeps_wakes_and_sets_presets_on_vnish_and_luxos_with_read_back():
    """One wave to a mixed farm: sleep, wake (to stock and to eco) and an eco power target, on VNish and on
    LuxOS; every command verified by reading the machine back, and each sent as the firmware's API wants."""
    vn = [VNishMachine(ip, noise=0.0, sleeping=i in (1, 3)) for i, ip in enumerate(farm_ips(4, "127.3.3.1"))]
    lux = [SimMachine(ip, noise=0.0, sleeping=i in (1, 3)) for i, ip in enumerate(farm_ips(4, "127.3.3.11"))]
    wave = [c for ms in (vn, lux) for c in (Command(ms[0].ip, "s19xp", "sleep", None, -2.9),
                                             Command(ms[1].ip, "s19xp", "wake", 3010.0, 2.9),
                                             Command(ms[2].ip, "s19xp", "set_power", ECO_W, -0.75),
                                             Command(ms[3].ip, "s19xp", "wake", ECO_W, 2.2))]
    with RunningFarm(vn + lux):
        applied = asyncio.run(apply_waves([wave], timeout_s=3.0, retries=0))
    assert all(a.ok for a in applied), [(a.command.ip, a.detail) for a in applied if not a.ok]
    assert [a.detail for a in applied[:4]] == ["verified asleep", "verified at 3,010 W", "verified at 1,900 W", "verified at 1,900 W"]
    assert [(m.sleeping, m.profile) for m in vn] == [(True, "3010"), (False, "3010"), (False, "1900"), (False, "1900")]
    assert [(m.sleeping, m.profile) for m in lux] == [(True, "default"), (False, "default"), (False, "290MHz"), (False, "290MHz")]
    assert "POST /api/v1/mining/stop" in vn[0].requests and "POST /api/v1/mining/resume" in vn[1].requests
    assert "POST /api/v1/settings" in vn[2].requests and {"POST /api/v1/mining/resume", "POST /api/v1/settings"} <= set(vn[3].requests)
    assert any(c.startswith("curtail s") and c.endswith(",sleep") for c in lux[0].commands)


def test_fleet_apply_drives_a_mixed_farm_to_the_decision_and_audits_it(tmp_path):
    """`apply_decision` (what `hashpivot fleet apply` runs): scan, plan, command, read back, audit."""
    machines = [(VNishMachine if i % 2 else SimMachine)(ip, noise=0.0) for i, ip in enumerate(farm_ips(8, "127.3.4.1"))]
    inventory = read_inventory(write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a"), load_config(SITE))
    with RunningFarm(machines), Store(tmp_path / "s.sqlite") as store:
        entries, _ = apply_decision(load_config(SITE, ["fleet.timeout_s=3"]), store, inventory, _decision({"eco": 3, "stock": 3}),
                                    None, False, datetime.now(timezone.utc))
        audit = store.fleet_log()
    assert len(entries) == 5 and {e[3] for e in entries} == {"ok"}, entries
    assert set(audit["result"]) == {"ok"} and len(audit) == 5
    awake = [m for m in machines if not m.sleeping]
    assert len(awake) == 6 and sum(m.profile in ("1900", "290MHz") for m in awake) == 3
    assert {m.firmware for m in machines if m.sleeping} == {"luxos", "vnish"}  # machines[6:]: one of each


FAULT_DETAILS = {"unreachable": "no miner answered", "slow": "no answer within 2 s",
                 "error": "APIError: Failed to send command to miner", "reboot": "no miner answered",
                 "refuse_profile": "set_power refused by the firmware"}


@pytest.mark.parametrize("firmware,fault", [("vnish", f) for f in FAULT_DETAILS] + [("luxos", "reboot")])
def test_each_fault_ends_as_a_failed_command_with_its_reason_after_retries_not_a_hang(firmware, fault):
    cls = VNishMachine if firmware == "vnish" else SimMachine
    ips = farm_ips(2, f"127.3.{5 + list(FAULT_DETAILS).index(fault) + (10 if firmware == 'luxos' else 0)}.1")
    faulty, healthy = cls(ips[0], noise=0.0, fault=fault, slow_s=4.0, reboot_s=3.0), cls(ips[1], noise=0.0)
    action = ("set_power", ECO_W) if fault == "refuse_profile" else ("sleep", None)
    wave = [Command(m.ip, "s19xp", *action, -1.0) for m in (faulty, healthy)]
    with RunningFarm([faulty, healthy]):
        started = time.monotonic()
        bad, good = asyncio.run(apply_waves([wave], timeout_s=2.0, retries=2))
        elapsed = time.monotonic() - started
    assert not bad.ok and bad.attempts == 3 and FAULT_DETAILS[fault] in bad.detail, bad
    assert good.ok, good  # nothing else disturbed
    assert elapsed < 3 * 2.0 * 2 + 2, elapsed  # three attempts, each bounded by the timeout
    assert (faulty.sleeping, faulty.profile) == (False, faulty.profiles[-1].name)  # the command never took
    if fault == "reboot":
        assert faulty.reboots == 1  # rebooted on the first attempt; the retries found it down


@pytest.mark.parametrize("cls,reboot_to,start,back", [(VNishMachine, "default", "2700", "3010"),
                                                      (SimMachine, "old", "415MHz", "415MHz")])
def test_a_machine_rebooted_mid_command_comes_back_in_its_old_or_default_state(cls, reboot_to, start, back):
    m = cls("127.3.30.1" if cls is VNishMachine else "127.3.30.2", noise=0.0, profile=start, fault="reboot", reboot_s=1.5,
            reboot_to=reboot_to)

    async def read() -> tuple:
        miner = await pyasic.get_miner(m.ip)
        if miner is None:
            return None
        data = await asyncio.wait_for(miner.get_data(include=[pyasic.DataOptions.WATTAGE, pyasic.DataOptions.HASHBOARDS]), 5)
        return float(data.hashrate), data.wattage

    with RunningFarm([m]):
        (failed,) = asyncio.run(apply_waves([[Command(m.ip, "s19xp", "sleep", None, -2.0)]], timeout_s=2.0, retries=0))
        down = asyncio.run(read())
        time.sleep(1.6)
        up = asyncio.run(read())
    assert not failed.ok and down is None  # the command's connection dropped, then no answer while it reboots
    watts = next(p.watts for p in m.profiles if p.name == back)
    assert m.profile == back and not m.sleeping and up[1] == watts and up[0] > 90, up


@dataclass
class AcksStopButKeepsHashing(VNishMachine):
    """A simulator answering wrongly: mining/stop is acknowledged, and nothing stops."""

    def _mining(self, sleeping: bool) -> tuple[int, dict]:
        return 200, {}


def test_the_read_back_catches_a_machine_that_acknowledges_a_sleep_and_keeps_hashing():
    liar = AcksStopButKeepsHashing("127.3.31.1", noise=0.0)
    with RunningFarm([liar]):
        (applied,) = asyncio.run(apply_waves([[Command(liar.ip, "s19xp", "sleep", None, -2.9)]], timeout_s=2.0, retries=1))
    assert "POST /api/v1/mining/stop" in liar.requests  # the command was sent and acknowledged …
    assert not applied.ok and applied.attempts == 2 and applied.detail == "still hashing after sleep"  # … and caught


@pytest.mark.e2e
def test_the_cli_rehearsal_on_a_mixed_farm_simulate_scan_apply(tmp_path):
    """`fleet simulate --vnish-fraction`, then `fleet scan` and `fleet apply` as an operator runs them."""
    sim = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "simulate", "--machines", "10",
                            "--vnish-fraction", "0.4", "--first-ip", "127.3.40.1", "--inventory", str(tmp_path / "sim.csv"),
                            "--seconds", "60"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert "simulating 10 machines (6 LuxOS, 4 VNish)" in sim.stderr.readline()
        firmware = [line.rsplit(",", 1)[1] for line in (tmp_path / "sim.csv").read_text().splitlines()[1:]]
        assert sorted(firmware) == ["luxos"] * 6 + ["vnish"] * 4
        cli = [sys.executable, "-m", "hashpivot.optimizer.cli", "fleet"]
        common = ["--inventory", str(tmp_path / "sim.csv"), "--db", str(tmp_path / "s.sqlite"), "--set", "fleet.timeout_s=2"]
        scanned = subprocess.run([*cli, "scan", *common, "--format", "csv"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert scanned.returncode == 0, scanned.stderr
        assert scanned.stdout.splitlines()[1].startswith("s19xp,10,10,10,0,0,0,"), scanned.stdout
        (tmp_path / "d.json").write_text(_decision({"eco": 4, "stock": 3}).to_json())
        applied = subprocess.run([*cli, "apply", str(tmp_path / "d.json"), *common, "--format", "csv"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        assert applied.returncode == 0, applied.stdout + applied.stderr  # exit 0: every command verified
        assert sum(",ok," in row for row in applied.stdout.splitlines()[1:]) == 7
        rescanned = subprocess.run([*cli, "scan", *common, "--format", "csv"], cwd=ROOT, capture_output=True, text=True,
                                   timeout=120)
        assert rescanned.stdout.splitlines()[1].startswith("s19xp,10,10,7,3,0,0,"), rescanned.stdout
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def test_a_refused_password_reads_as_erroring_with_the_fix_not_as_unreachable():
    """A drill's wrong fleet.password_file counted 12 VNish machines 'unreachable', with two pyasic warning lines
    each on stderr: the machines answer, they refuse the password, and the operator must be told which."""
    from hashpivot.feeds.fleet.scan import AUTH_REFUSED
    from hashpivot.feeds.fleet.status import pool_status

    machines = [VNishMachine(ip, noise=0.0, password="not-pyasic's-default") for ip in farm_ips(3, "127.3.210.1")]
    with RunningFarm(machines):
        rows = scan([Machine(m.ip, "s19xp") for m in machines], datetime.now(timezone.utc), 5, 3.0)
    assert all(r.reachable and r.error == AUTH_REFUSED for r in rows)
    status = pool_status(load_config(SITE), pd.DataFrame([r.__dict__ for r in rows])).iloc[0]
    assert status["erroring"] == 3 and status["unreachable"] == 0 and status["healthy"] == 0
