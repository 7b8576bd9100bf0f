"""Credentials never leave the processes that use them: one daemon pass (`hashpivot tick -v`, fleet.apply on)
against the loopback feed server, a farm of VNish machines that only unlock with the site's password and a
simulated Vast.ai account that only answers its API key. The commands succeed (so both secrets were used), and
neither secret appears in the pass's output or logs, the store (every table), the published documents, the
audit shown by `fleet log`, or `status`."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.farm_vnish import VNishMachine
from hashpivot.feeds.fleet.vast_sim import SimHost, VastSim
from tests.test_fleet import RunningFarm

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hashpivot.optimizer.cli"]


@pytest.mark.e2e
def test_no_secret_reaches_output_logs_store_documents_or_audit(tmp_path):
    from pytest_httpserver import HTTPServer

    from tests.feeds_support import loopback_config, serve_all

    password, key = "pw-" + secrets.token_hex(12), "vk-" + secrets.token_hex(20)
    secret_file = tmp_path / "miners.pw"
    secret_file.write_text(password + "\n")
    os.chmod(secret_file, 0o600)
    ips = farm_ips(6, "127.0.18.1")
    machines = [VNishMachine(ip, noise=0.0, password=password) for ip in ips[:4]] + [SimMachine(ip, noise=0.0) for ip in ips[4:]]
    for m in machines[:4]:  # the VNish machines draw most per TH/s: the plan puts them to sleep first
        m.profiles = tuple(type(p)(p.name, p.watts * 1.05, p.hashrate_th) for p in m.profiles)
    inventory = write_inventory(machines, tmp_path / "fleet.csv", "s19xp", "hall-a")
    server = HTTPServer(threaded=True)
    server.start()
    serve_all(server)
    _, sets = loopback_config(server.url_for("/"), retries=0)
    db, out = tmp_path / "s.sqlite", tmp_path / "out"
    try:
        with VastSim([SimHost(i, 8) for i in (2001, 2002, 2003)], key) as account, RunningFarm(machines):
            sets += [f"daemon.publish_dir='{out}'", 'daemon.metrics_port="off"', f"fleet.inventory='{inventory}'",
                     "fleet.apply='on'", "fleet.timeout_s=3", f"fleet.password_file='{secret_file}'",
                     f'fleet.gpu_actuators=[{{kind="vastai", pool="h100", api_url="{account.url}", '
                     'api_key_env="HP_TEST_VAST_KEY", machine_ids=[2001, 2002, 2003], gpus_per_machine=8, min_price_usd_per_gpu_hour=1.5, backoff_s=0.01}]']
            common = ["--db", str(db)] + [x for s in sets for x in ("--set", s)]
            env = dict(os.environ, HP_TEST_VAST_KEY=key)
            hold = subprocess.run([*CLI, "hold", "add", "--pool", "s19xp", "--units", "2", "--reason", "drill", *common],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
            assert hold.returncode == 0, hold.stderr
            tick = subprocess.run([*CLI, "tick", "-v", "--format", "json", *common], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300, env=env)
            listed = account.listed()
        texts = [tick.stdout, tick.stderr]
        for command in (["fleet", "log", "--format", "json"], ["status", "--format", "json"], ["fleet", "status"]):
            texts.append(subprocess.run([*CLI, *command, *common], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                        env=env).stdout)
    finally:
        server.stop()
    assert tick.returncode in (0, 3), tick.stderr
    assert sum(m.sleeping for m in machines[:4]) >= 2 and all(not m.sleeping for m in machines[4:])  # VNish commanded
    assert listed, "the Vast account was never listed: the API key was not used"
    with sqlite3.connect(db) as conn:
        texts.append("\n".join(conn.iterdump()))
    texts += [p.read_text() for p in out.glob("*.json")]
    assert len(texts) >= 7 and '"command": "sleep"' in texts[2]
    for text in texts:
        assert password not in text and key not in text
