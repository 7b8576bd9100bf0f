"""Machines found by address range ([[fleet.ranges]]) and the miners' password from a secret file, through
real pyasic against a simulated LuxOS farm on loopback."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hashpivot.feeds.fleet.farm import SimMachine, farm_ips
from hashpivot.feeds.fleet.inventory import fleet_machines
from hashpivot.feeds.fleet.scan import PASSWORD_SETTINGS, scan_into, use_password
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.models.errors import ConfigError
from tests.test_fleet import RunningFarm

SITE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def test_a_range_counts_the_machines_that_answer_and_keeps_one_that_falls_silent(tmp_path):
    cfg = load_config(SITE, ["fleet.ranges=[{cidr='127.0.17.0/28', pool='s21'}]", "fleet.timeout_s=1"])
    machines = [SimMachine(ip, model="Antminer S19 XP", noise=0.0, slow_s=3.0) for ip in farm_ips(6, "127.0.17.1")]
    addresses = fleet_machines(cfg)
    assert len(addresses) == 14 and {m.pool for m in addresses} == {"s21"} and all(m.discovered for m in addresses)
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        first = scan_into(store, addresses, NOW, 50, 1.0)
        machines[0].fault = "slow"  # stops answering within the timeout
        second = scan_into(store, addresses, NOW + timedelta(minutes=5), 50, 1.0)
        latest = store.latest_telemetry()
    assert sorted(r.ip for r in first) == sorted(m.ip for m in machines)  # the 8 silent addresses are no machines
    assert len(second) == 6 and len(latest) == 6
    silent = latest[latest["ip"] == machines[0].ip].iloc[0]
    assert silent["reachable"] == 0 and "no answer within 1 s" in silent["error"]


def test_a_range_outside_any_asic_pool_or_too_large_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"fleet.ranges\[0\].pool = 'nope': must be one of the ASIC pools"):
        load_config(SITE, ["fleet.ranges=[{cidr='10.0.0.0/24', pool='nope'}]"])
    with pytest.raises(ConfigError, match=r"fleet.ranges\[0\].cidr = '10.0.0.0/16': .*65,536 addresses; at most 4,096"):
        load_config(SITE, ["fleet.ranges=[{cidr='10.0.0.0/16', pool='s21'}]"])


def test_the_miners_password_comes_from_a_private_file_and_a_readable_one_is_refused(tmp_path):
    from pyasic import settings as pyasic_settings

    secret = tmp_path / "miners.pw"
    secret.write_text("Ru5ty-Fan-Blade-42\n")
    os.chmod(secret, 0o640)
    cfg = load_config(SITE, [f"fleet.password_file='{secret}'"])
    with pytest.raises(ConfigError, match=rf"secret file {secret} is readable by its group or others \(mode 0640\); run: chmod 600"):
        use_password(cfg)
    os.chmod(secret, 0o600)
    before = {key: pyasic_settings.get(key) for key in PASSWORD_SETTINGS}
    try:
        use_password(cfg)
        assert pyasic_settings.get("default_vnish_web_password") == "Ru5ty-Fan-Blade-42"
        assert pyasic_settings.get("default_antminer_web_password") == "Ru5ty-Fan-Blade-42"
    finally:
        for key, value in before.items():
            pyasic_settings.update(key, value)


def test_a_scan_stores_each_machines_power_target(tmp_path):
    from hashpivot.feeds.fleet.farm_vnish import VNishMachine
    from hashpivot.feeds.fleet.inventory import Machine

    machines = [SimMachine("127.0.17.101", noise=0.0, profile="415MHz"), VNishMachine("127.0.17.102", noise=0.0)]
    machines[1].profile = machines[1].profiles[0].name
    with Store(tmp_path / "s.sqlite") as store, RunningFarm(machines):
        scan_into(store, [Machine(m.ip, "s19xp") for m in machines], NOW, 10, 3.0)
        latest = store.latest_telemetry().set_index("ip")
    assert latest.loc["127.0.17.101", "power_target_w"] == 2700.0  # the LuxOS profile in use
    assert latest.loc["127.0.17.102", "power_target_w"] == machines[1].profiles[0].watts  # the VNish preset
