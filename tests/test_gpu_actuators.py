"""GPU pools' actuators against real things: the Vast.ai host API on a loopback HTTP server
(`hashpivot.feeds.fleet.vast_sim`, the calls and bodies of vast-ai/vast-python's vast.py), operator commands
that are real scripts written here, a real SQLite store. Credentials must not leak anywhere."""

from __future__ import annotations

import copy
import json
import logging
import secrets
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hashpivot.feeds.fleet.secrets import Secret, read_secret, redact
from hashpivot.feeds.fleet.vast import VastClient
from hashpivot.feeds.fleet.vast_sim import SimHost, VastSim
from hashpivot.feeds.store import Store
from hashpivot.models.config import GPU_ACTUATOR_CONFIGS, load_raw_config, validate_config
from hashpivot.models.decision import Decision, Inputs, PoolDecision, SiteState
from hashpivot.models.errors import ActuatorError, ConfigError
from hashpivot.optimizer.service.gpu_actuators import ACTUATORS, apply_gpu_pools, firm_floor

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "configs" / "site.toml"
NOW = datetime.now(timezone.utc).replace(microsecond=0)  # the sim refuses a listing that ends in the past
IDS = [1001, 1002, 1003, 1004, 1005, 1006]


def site(actuators: list[dict], firm: bool = False):
    raw, _ = load_raw_config(SITE)
    raw = copy.deepcopy(raw)
    if firm:  # the h100 hosting deal without an SLA penalty: a firm contract
        del raw["gpu_pools"][1]["contract"]["sla_penalty_usd_per_gpu_hour"]
    raw.setdefault("fleet", {})["gpu_actuators"] = actuators
    return validate_config(raw, "site.toml")


def vast(url: str, **kw) -> dict:
    return {"kind": "vastai", "pool": "h100", "api_url": url, "api_key_env": "HP_TEST_VAST_KEY", "machine_ids": IDS,
            "gpus_per_machine": 8, "min_price_usd_per_gpu_hour": 1.8, "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01} | kw


def decision(market_on: int, contract_on: int = 3072, rate: float = 2.37) -> Decision:
    inputs = Inputs(btc_usd=100_000, hashprice_usd_per_th_day=0.05, hashprice_usd_per_ph_day=50, power_price_usd_per_mwh=30,
                    marginal_power_price_usd_per_mwh=32.5, reserve_price_usd_per_mw_hour=5, gpu_rates_usd_per_gpu_hour={"h100": rate})
    return Decision(schema_version=2, status="optimal", site=SiteState(cap_kw=90_000, it_power_kw=0, site_power_kw=0),
                    interval_start_utc="2025-06-01T00:00:00Z", horizon_steps=1, step_minutes=60, inputs=inputs, pools=[
                        PoolDecision(name="h100", kind="gpu", hall="gpu-h100", units_on=contract_on + market_on,
                                     units_available=4096, contract_on=contract_on, market_on=market_on,
                                     power_kw=(contract_on + market_on) * 1.275, reason="test")])


@pytest.fixture
def key(monkeypatch) -> str:
    value = "vk-" + secrets.token_hex(20)
    monkeypatch.setenv("HP_TEST_VAST_KEY", value)
    return value


@pytest.fixture
def account(key):
    hosts = [SimHost(i, 8) for i in IDS]
    hosts[1].listed, hosts[1].price_gpu = True, 2.0  # 1002 listed at an old price
    hosts[4].listed, hosts[4].price_gpu, hosts[4].rentals_running = True, 2.0, 1  # 1005 listed and rented
    with VastSim(hosts, key) as sim:
        yield sim


def run(cfg, doc, tmp_path, dry_run=False, seq=1):
    with Store(tmp_path / "s.sqlite") as store:
        rows = apply_gpu_pools(cfg, store, doc, seq, dry_run, NOW)
        log = store.fleet_log()
    return rows, log


def test_every_actuator_kind_has_a_config_and_a_driver():
    assert set(ACTUATORS) == set(GPU_ACTUATOR_CONFIGS) == {"vastai", "command"}


def test_vast_lists_whole_machines_for_the_marketplace_target_unlists_the_rest_and_reads_back(account, tmp_path):
    """20 marketplace GPUs = 3 machines of 8: the rented 1005 and the listed 1002 stay (re-priced at the pool's
    rate), 1001 is listed. Then 5 GPUs = 1 machine: the rented one stays, the other two are unlisted."""
    cfg = site([vast(account.url)])
    rows, log = run(cfg, decision(market_on=20), tmp_path)
    assert account.listed() == {1001: 2.37, 1002: 2.37, 1005: 2.37}
    assert sorted((r[0], r[2], r[3]) for r in rows) == [("vast:1001", "list 2.370 USD/GPU-h", "ok"),
                                                         ("vast:1002", "reprice 2.370 USD/GPU-h", "ok"),
                                                         ("vast:1005", "reprice 2.370 USD/GPU-h", "ok")]
    assert all("verified listed at 2.370" in r[4] for r in rows)
    assert list(log["ip"]) == [r[0] for r in rows] and set(log["decision_seq"]) == {1}
    puts = [(q, b) for m, p, q, b, ok in account.requests if m == "PUT"]
    assert {p for m, p, *_ in account.requests} == {"/api/v0/machines", "/api/v0/machines/create_asks/"}
    assert all(q == {} and set(b) == {"machine", "price_gpu", "price_disk", "price_inetu", "price_inetd", "price_min_bid",
                                      "min_chunk", "end_date", "credit_discount_max"} for q, b in puts)
    assert all(b["end_date"] == pytest.approx(NOW.timestamp() + 7 * 86400) for _, b in puts)
    assert all(ok for *_, ok in account.requests)  # the key went as `Authorization: Bearer`, never in the URL

    rows, _ = run(cfg, decision(market_on=5), tmp_path, seq=2)
    assert account.listed() == {1005: 2.37}
    assert sorted((r[0], r[2], r[3], r[4]) for r in rows) == [("vast:1001", "unlist", "ok", "verified unlisted"),
                                                              ("vast:1002", "unlist", "ok", "verified unlisted")]
    assert ("DELETE", "/api/v0/machines/1001/asks/") in account.changes()
    rows, _ = run(cfg, decision(market_on=5), tmp_path, seq=3)
    assert rows == []  # at the target already: nothing sent


def test_the_asking_price_never_goes_below_the_floor_and_more_gpus_than_machines_lists_them_all(account, tmp_path, caplog):
    cfg = site([vast(account.url, min_price_usd_per_gpu_hour=2.9)])
    run(cfg, decision(market_on=1024, rate=2.37), tmp_path)
    assert account.listed() == {i: 2.9 for i in IDS}
    assert "6 machines x 8 GPUs cannot offer the decision's 1024 marketplace GPUs" in caplog.text


def test_the_firm_contract_is_never_reduced_and_the_clamp_is_audited(tmp_path):
    """A decision with 1,000 contract GPUs on a firm 3,072-GPU contract: the command gets 3,072 and the audit
    says why; with the contract's SLA penalty (curtailment priced by the model) it gets the 1,000 asked."""
    got = tmp_path / "stdin.json"
    script = _script(tmp_path, "drain", f"import sys, pathlib; pathlib.Path({str(got)!r}).write_text(sys.stdin.read())")
    cfg = site([{"kind": "command", "pool": "h100", "argv": [str(script)]}], firm=True)
    assert firm_floor(cfg.gpu_pools[1]) == 3072
    rows, log = run(cfg, decision(market_on=100, contract_on=1000), tmp_path)
    sent = json.loads(got.read_text())
    assert (sent["contract_gpus"], sent["marketplace_gpus"], sent["gpus_on"]) == (3072, 100, 3172)
    assert sent["pool"] == "h100" and sent["decision_seq"] == 1 and sent["time_utc"] == NOW.isoformat().replace("+00:00", "Z")
    assert sent["power_kw"] == pytest.approx(1100 * 1.275 + 2072 * cfg.gpu_pools[1].full_power_kw, abs=0.01)
    clamp = log[log["result"] == "clamped"].iloc[0]
    assert clamp["command"] == "clamp contract GPUs" and "decision had 1000 contract GPUs on" in clamp["detail"]
    assert [r[3] for r in rows] == ["clamped", "ok"]

    run(site([{"kind": "command", "pool": "h100", "argv": [str(script)]}]), decision(market_on=100, contract_on=1000), tmp_path)
    assert json.loads(got.read_text())["contract_gpus"] == 1000


def test_5xx_is_retried_then_succeeds_and_persistent_5xx_is_reported_with_nothing_sent(account, tmp_path):
    cfg = site([vast(account.url)])
    account.faults.statuses = [503]
    rows, _ = run(cfg, decision(market_on=8), tmp_path)  # one machine: the rented 1005 stays, 1002 goes
    assert {r[3] for r in rows} == {"ok"} and account.listed() == {1005: 2.37}
    assert [m for m, *_ in account.requests[:2]] == ["GET", "GET"]  # the 503 was retried

    account.faults.statuses = [503] * 3
    before = len(account.changes())
    rows, log = run(cfg, decision(market_on=48), tmp_path, seq=2)
    assert [(r[0], r[2], r[3], r[5]) for r in rows] == [(f"vast:{account.url}", "show machines", "failed", 3)]
    assert "nothing sent: show machines: HTTP 503 after 3 attempts" in rows[0][4]
    assert len(account.changes()) == before and account.listed() == {1005: 2.37}


def test_a_listing_that_times_out_is_retried_then_marked_failed_and_the_others_go_on(account, tmp_path):
    cfg = site([vast(account.url, timeout_s=0.3, retries=1)])
    account.faults.only, account.faults.slow, account.faults.slow_s = "PUT", 2, 1.0
    rows, _ = run(cfg, decision(market_on=24), tmp_path)
    by = {r[0]: r for r in rows}
    assert by["vast:1001"][3] == "failed" and by["vast:1001"][5] == 2 and "no answer within 0.3 s (2 attempts)" in by["vast:1001"][4]
    assert by["vast:1002"][3] == by["vast:1005"][3] == "ok"


def test_a_listing_accepted_but_not_applied_fails_its_read_back(account, tmp_path):
    account.faults.ignore_lists = {1001}
    rows, _ = run(site([vast(account.url)]), decision(market_on=24), tmp_path)
    assert {r[0]: (r[3], r[4]) for r in rows}["vast:1001"] == ("failed", "read back: not listed after list")


def test_a_refused_key_fails_at_once_and_never_reaches_logs_store_or_audit(account, tmp_path, monkeypatch, caplog):
    wrong = "vk-wrong-" + secrets.token_hex(16)
    monkeypatch.setenv("HP_TEST_VAST_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    env_dump = tmp_path / "env.json"
    script = _script(tmp_path, "drain", f"import os, json, pathlib; pathlib.Path({str(env_dump)!r}).write_text(json.dumps(dict(os.environ)))")
    cfg = site([vast(account.url), {"kind": "command", "pool": "h100", "argv": [str(script)]}])
    rows, _ = run(cfg, decision(market_on=24), tmp_path)
    assert rows[0][3] == "failed" and rows[0][5] == 1 and "HTTP 401: the API key was refused: Invalid user key ***" in rows[0][4]
    assert account.changes() == []
    assert account.requests[0][4] is False  # the sim saw the wrong key (and echoed it in its 401 answer)
    _no_secret_anywhere(wrong, tmp_path / "s.sqlite", caplog.text, rows)
    assert "HP_TEST_VAST_KEY" not in json.loads(env_dump.read_text())  # the operator's command does not get it
    with VastClient(account.url, Secret(wrong), retries=0) as client, pytest.raises(ActuatorError) as exc:
        client.machines()
    assert wrong not in str(exc.value) and str(exc.value).endswith("Invalid user key ***")  # scrubbed by the client itself


def test_the_api_key_never_appears_in_logs_the_store_or_the_audit_table(account, key, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    account.faults.statuses = [500]
    cfg = site([vast(account.url)])
    rows, _ = run(cfg, decision(market_on=40), tmp_path)
    run(cfg, decision(market_on=0), tmp_path, dry_run=True, seq=2)
    assert len(rows) == 5 and {r[3] for r in rows} == {"ok"}  # 40 GPUs: five machines of 8
    _no_secret_anywhere(key, tmp_path / "s.sqlite", caplog.text, rows)
    client = VastClient(account.url, Secret(key))
    assert key not in repr(client) and key not in f"{Secret(key)}" and key not in str([Secret(key)])


def test_a_dry_run_sends_nothing_and_audits_the_plan(account, tmp_path):
    marker = tmp_path / "ran"
    script = _script(tmp_path, "drain", f"import pathlib; pathlib.Path({str(marker)!r}).touch()")
    cfg = site([vast(account.url), {"kind": "command", "pool": "h100", "argv": [str(script)]}])
    rows, log = run(cfg, decision(market_on=24), tmp_path, dry_run=True)
    assert account.changes() == [] and account.listed() == {1002: 2.0, 1005: 2.0} and not marker.exists()
    assert list(log["result"]) == ["planned"] * 4
    assert sorted(log["command"])[:3] == ["list 2.370 USD/GPU-h", "reprice 2.370 USD/GPU-h", "reprice 2.370 USD/GPU-h"]
    assert '"marketplace_gpus": 24' in log["detail"].iloc[-1]


def test_the_command_actuator_checks_exit_codes_logs_output_and_kills_a_hang(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cases = {"ok": "import sys, json; t = json.load(sys.stdin); print('drained to', t['gpus_on'])",
             "exit3": "import sys; print('cordon failed: node gpu-17 busy', file=sys.stderr); sys.exit(3)",
             "hang": "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"}
    acts = [{"kind": "command", "pool": "h100", "argv": [str(_script(tmp_path, n, body))], "timeout_s": 1.0} for n, body in cases.items()]
    started = time.monotonic()
    rows, _ = run(site(acts), decision(market_on=24), tmp_path)
    assert time.monotonic() - started < 10
    ok, exit3, hang = rows
    assert ok[3] == "ok" and ok[4] == "exit 0; stdout: drained to 3096" and ok[0] == "command:ok"
    assert exit3[3] == "failed" and exit3[4] == "exit 3; stderr: cordon failed: node gpu-17 busy"
    assert hang[3] == "failed" and hang[4].startswith("killed after 1 s")
    assert "drained to 3096" in caplog.text and "cordon failed" in caplog.text
    missing = site([{"kind": "command", "pool": "h100", "argv": [str(tmp_path / "nope")]}])
    assert run(missing, decision(0), tmp_path)[0][0][4].startswith("cannot run")


def test_secrets_come_from_the_environment_or_a_private_file_and_a_group_readable_file_is_refused(tmp_path, monkeypatch):
    value = "vk-" + secrets.token_hex(12)
    path = tmp_path / "vast.key"
    path.write_text(value + "\n")
    path.chmod(0o600)
    assert read_secret(None, str(path), "Vast.ai API key") == value
    assert read_secret(None, None, "x") is None
    path.chmod(0o640)
    with pytest.raises(ConfigError) as exc:
        read_secret(None, str(path), "Vast.ai API key")
    assert str(exc.value) == (f"Vast.ai API key: secret file {path} is readable by its group or others (mode 0640); "
                              f"run: chmod 600 {path}") and value not in str(exc.value)
    path.chmod(0o604)
    with pytest.raises(ConfigError, match="mode 0604"):
        read_secret(None, str(path), "k")
    monkeypatch.delenv("HP_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match="environment variable HP_NOT_SET is not set"):
        read_secret("HP_NOT_SET", None, "k")
    assert redact(f"bad key {value}!", Secret(value)) == "bad key ***!"


def test_a_group_readable_key_file_sends_nothing_and_says_what_to_run(account, tmp_path):
    path = tmp_path / "vast.key"
    path.write_text("anything")
    path.chmod(0o644)
    cfg = site([vast(account.url, api_key_env=None, api_key_file=str(path))])
    rows, _ = run(cfg, decision(market_on=8), tmp_path)
    assert rows[0][3] == "failed" and f"run: chmod 600 {path}" in rows[0][4] and account.requests == []


def test_actuator_config_errors_name_the_key_and_what_is_allowed():
    def err(acts):
        with pytest.raises(ConfigError) as exc:
            site(acts)
        return str(exc.value)

    assert err([vast("http://127.0.0.1:1", pool="h200")]) == (
        "site.toml: fleet.gpu_actuators[0].pool = 'h200': must be one of the GPU pools: a40, h100")
    assert "fleet.gpu_actuators[0].argv: unknown key; allowed keys here: kind, pool, api_url" in err([vast("http://x", argv=["a"])])
    assert "give exactly one of `api_key_env`" in err([vast("http://x", api_key_file="/k")])
    assert "fleet.gpu_actuators[1].machine_ids: machine 1001 is also in fleet.gpu_actuators[0]" in err(
        [vast("http://x"), vast("http://x", pool="a40", machine_ids=[1001])])
    assert "does not match any of the expected tags: 'vastai', 'command'" in err([{"kind": "slurm", "pool": "h100"}])
    assert "fleet.gpu_actuators[0].api_url = 'http://u:p@x'" not in err([vast("http://u:p@x")])


@pytest.mark.e2e
def test_fleet_apply_drives_the_gpu_pools_after_the_asic_waves_and_fleet_log_shows_it(account, key, tmp_path):
    """`hashpivot fleet apply` (a real subprocess) against a 3-machine LuxOS farm and the Vast sim: the ASIC
    commands, then the listings, all in `fleet log`."""
    from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
    from tests.test_fleet import RunningFarm

    doc = decision(market_on=16)
    doc.pools.append(PoolDecision(name="s19xp", kind="asic", hall="hall-a", units_on=2, units_available=3,
                                  units_by_mode={"stock": 2}, power_kw=6.02, reason="test"))
    (tmp_path / "d.json").write_text(doc.to_json())
    machines = [SimMachine(ip, noise=0.0) for ip in farm_ips(3, "127.0.21.1")]
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    act = (f'[{{kind="vastai", pool="h100", api_url="{account.url}", api_key_env="HP_TEST_VAST_KEY", machine_ids={IDS}, '
           'gpus_per_machine=8, min_price_usd_per_gpu_hour=1.8, backoff_s=0.01}]')
    cli = [sys.executable, "-m", "hashpivot.optimizer.cli"]
    common = ["--db", str(tmp_path / "s.sqlite"), "--set", f"fleet.gpu_actuators={act}"]
    with RunningFarm(machines):
        proc = subprocess.run([*cli, "fleet", "apply", str(tmp_path / "d.json"), "--inventory", str(inventory),
                               "--set", "fleet.timeout_s=2", *common, "--format", "csv"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert account.listed() == {1002: 2.37, 1005: 2.37} and sum(m.sleeping for m in machines) == 1
    log = subprocess.run([*cli, "fleet", "log", *common, "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    rows = json.loads(log.stdout)
    assert [r["ip"] for r in rows][-2:] == ["vast:1002", "vast:1005"] and rows[0]["command"] == "sleep"
    assert key not in proc.stdout + proc.stderr + log.stdout + log.stderr


# --------------------------------------------------------------------------- helpers


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _no_secret_anywhere(value: str, db: Path, log_text: str, rows: list[tuple]) -> None:
    assert value not in log_text
    assert all(value not in str(x) for r in rows for x in r)
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert value not in dump and "fleet_log" in dump
    wal = [p for p in db.parent.glob(db.name + "*") if p.is_file()]
    assert all(value.encode() not in p.read_bytes() for p in wal)


@pytest.mark.e2e
def test_a_site_with_gpu_actuators_and_no_inventory_applies_its_gpu_pools_alone(tmp_path):
    """`fleet apply` with no ASIC inventory runs the GPU actuators only, and the daemon's outbox gets a fleet
    target for such a site once fleet.apply is on."""
    from hashpivot.optimizer.service.outbox import FLEET, targets

    got = tmp_path / "stdin.json"
    script = _script(tmp_path, "drain", f"import sys, pathlib; pathlib.Path({str(got)!r}).write_text(sys.stdin.read())")
    (tmp_path / "d.json").write_text(decision(market_on=64).to_json())
    act = f'[{{kind="command", pool="h100", argv=["{script}"], timeout_s=20}}]'
    cli = [sys.executable, "-m", "hashpivot.optimizer.cli", "fleet", "apply", str(tmp_path / "d.json"),
           "--db", str(tmp_path / "s.sqlite"), "--set", f"fleet.gpu_actuators={act}", "--format", "csv"]
    dry = subprocess.run([*cli, "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert 'command:drain,h100,"target 3136 GPUs (3072 contract, 64 marketplace)",planned' in dry.stdout and not got.exists()
    on = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert on.returncode == 0, on.stderr
    assert json.loads(got.read_text())["gpus_on"] == 3136 and ",ok,exit 0" in on.stdout

    cfg = site([{"kind": "command", "pool": "h100", "argv": [str(script)]}])
    assert FLEET not in targets(cfg)
    assert FLEET in targets(cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"apply": "on"})}))


def test_a_relative_key_file_is_read_next_to_the_config_file(tmp_path):
    from hashpivot.models.config import load_config

    (tmp_path / "site.toml").write_text(SITE.read_text() + '\n[[fleet.gpu_actuators]]\nkind = "vastai"\npool = "h100"\n'
                                        'api_key_file = "keys/vast.key"\nmachine_ids = [1]\ngpus_per_machine = 8\n'
                                        'min_price_usd_per_gpu_hour = 2.0\n')
    assert load_config(tmp_path / "site.toml").fleet.gpu_actuators[0].api_key_file == str(tmp_path / "keys" / "vast.key")
