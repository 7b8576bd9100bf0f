"""The outbox between decide and publish: a stored decision is published even when the process died (or the
disk was full) between the commit and the file write, in order, with the same bytes, and the webhook gets
each seq (at least once, with its delivery id). Real subprocesses, a real loopback server, a real tmpfs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from hashpivot.feeds.store import Store
from hashpivot.models.clock import now_utc
from hashpivot.models.decision import Decision, SiteState
from tests.daemon_support import wait_for, wait_started
from tests.feeds_support import loopback_config, serve_all

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


@pytest.fixture
def server():
    s = HTTPServer(threaded=True)
    s.start()
    serve_all(s)
    s.expect_request("/hook", method="POST").respond_with_data("ok")
    yield s
    s.clear()
    s.stop()


def args_for(server: HTTPServer, tmp_path: Path, out: Path, *extra: str) -> list[str]:
    _, sets = loopback_config(server.url_for("/"), retries=0)
    sets += [f"daemon.publish_dir='{out}'", 'daemon.metrics_port="off"',
             f"daemon.webhook_url='{server.url_for('/hook')}'", "daemon.webhook_retries=0", *extra]
    return ["--db", str(tmp_path / "store.sqlite")] + [x for s in sets for x in ("--set", s)]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


def deliveries(server: HTTPServer) -> list[int]:
    return [int(req.headers["X-Hashpivot-Delivery"]) for req, _ in server.log if req.path == "/hook"]


def stored(tmp_path: Path) -> dict[int, dict]:
    with Store(tmp_path / "store.sqlite") as store:
        df = store.decisions(limit=100_000)
    return {int(s): json.loads(d) for s, d in zip(df["seq"], df["document"])}


def check_published_exactly(tmp_path: Path, out: Path) -> None:
    """Every stored decision has its file, with the stored document; latest.json is the newest; no temp files."""
    docs = stored(tmp_path)
    files = {int(p.stem.split("-")[1]): json.loads(p.read_text()) for p in out.glob("decision-*.json")}
    assert files == docs
    assert json.loads((out / "latest.json").read_text()) == docs[max(docs)]
    assert not list(out.glob(".*"))


def test_a_decision_stored_but_never_published_is_published_by_the_next_pass(server, tmp_path):
    """kill -9 between the decision's commit and its file write, simulated exactly: the decision and its
    outbox marks are in the store, nothing is in publish_dir, a temp file is left behind."""
    out = tmp_path / "out"
    doc = Decision(schema_version=2, status="safe", reason="drill", interval_start_utc="2026-01-01T00:00:00Z",
                   site=SiteState(cap_kw=90_000, it_power_kw=0, site_power_kw=0), horizon_steps=1, step_minutes=60, pools=[])
    with Store(tmp_path / "store.sqlite") as store:
        assert store.add_decision(doc, now_utc(), 0.1, ["files", "webhook"]) == 1
    out.mkdir()
    (out / ".decision-00000001.json.tmp123").write_text('{"half": ')  # what a killed write leaves
    proc = cli("tick", *args_for(server, tmp_path, out))
    assert proc.returncode == 0, proc.stderr
    check_published_exactly(tmp_path, out)
    assert sorted(stored(tmp_path)) == [1, 2] and deliveries(server) == [1, 2]


def fill(path: Path) -> None:
    """Write `path` until its disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_publish_disk_is_one_error_line_and_the_decisions_are_published_once_space_returns(
        server, tmp_path, small_disk):
    filler = small_disk / "filler"
    fill(filler)
    args = args_for(server, tmp_path, small_disk / "decisions")
    proc = cli("tick", *args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "cannot write decision 1 to" in lines[0] and "MB free" in lines[0], proc.stderr
    assert sorted(stored(tmp_path)) == [1]  # decided and stored, not lost
    filler.unlink()  # space returns
    proc = cli("tick", *args)
    assert proc.returncode == 0, proc.stderr
    check_published_exactly(tmp_path, small_disk / "decisions")
    assert deliveries(server) == [1, 2]


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_no_decision(server, tmp_path):
    """The daemon decides every second; it is killed with SIGKILL at random moments (0.3-2.5 s after each
    start is logged, 6 times) and restarted; then stopped with SIGTERM. Every decision stored is published exactly
    once in content, and the webhook got every seq."""
    out = tmp_path / "out"
    args = args_for(server, tmp_path, out, "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*/5'")
    rng = random.Random(7)
    log = open(tmp_path / "daemon.log", "a")
    for kill in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "run", *args], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        wait_started(tmp_path / "daemon.log", kill + 1, proc)
        time.sleep(rng.uniform(0.3, 2.5))  # decisions every second: some kills land mid-decision
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    decided_before = len(stored(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "run", *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    wait_started(tmp_path / "daemon.log", 7, proc)  # start-up publishes the backlog; then it decides at least once
    wait_for(lambda: len(stored(tmp_path)) >= max(8, decided_before + 1), timeout_s=60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    docs = stored(tmp_path)
    assert len(docs) >= 6, (tmp_path / "daemon.log").read_text()[-2000:]
    check_published_exactly(tmp_path, out)
    assert set(deliveries(server)) == set(docs)
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()
    print(f"drill: 6 kill -9, {len(docs)} decisions, {len(deliveries(server))} webhook deliveries "
          f"({len(deliveries(server)) - len(docs)} repeats), 0 lost")


def test_run_logs_one_line_per_failed_publish_goes_on_deciding_and_catches_up(server, tmp_path, small_disk):
    """`run` with publish_dir on a full disk: each decision is stored, each failed publish is one log line (no
    traceback), and once space returns the next pass publishes every decision, in order."""
    filler = small_disk / "filler"
    fill(filler)
    out = small_disk / "decisions"
    args = args_for(server, tmp_path, out, "daemon.decision_cron.second='*'")
    log_path = tmp_path / "daemon.log"
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", "run", *args], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and log_path.read_text().count("job=decision_job failed") < 2:
            time.sleep(0.3)
        failed = [line for line in log_path.read_text().splitlines() if "job=decision_job failed" in line]
        assert len(failed) >= 2 and all("No space left on device" in line and "MB free" in line for line in failed)
        filler.unlink()
        n = len(stored(tmp_path))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(list(out.glob("decision-*.json"))) <= n:
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    check_published_exactly(tmp_path, out)
    assert "Traceback" not in log_path.read_text()
