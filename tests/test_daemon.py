"""The daemon and `tick` end to end, as subprocesses, against a loopback server serving recorded payloads."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from hashpivot.feeds.store import Store
from hashpivot.optimizer.service.daemon import InstanceLock
from tests.daemon_support import wait_for
from tests.feeds_support import loopback_config, serve_all

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    s = HTTPServer(threaded=True)
    s.start()
    serve_all(s)
    yield s
    s.clear()
    s.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env=None, **kwargs) -> list[str]:
    return [sys.executable, "-m", "hashpivot.optimizer.cli", *args]


def site_args(server_url: str, tmp_path: Path, *extra: str) -> list[str]:
    _, sets = loopback_config(server_url, retries=0)
    sets += [f"daemon.publish_dir='{tmp_path / 'out'}'", "daemon.metrics_port=" + str(free_port()), *extra]
    return ["--db", str(tmp_path / "store.sqlite")] + [x for s in sets for x in ("--set", s)]


def run(args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def published(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("decision-*.json"))]


def test_tick_decides_publishes_and_the_next_tick_starts_from_it(server, tmp_path):
    args = site_args(server.url_for("/"), tmp_path)
    first = run(["tick", "--format", "json", *args])
    assert first.returncode == 0, first.stderr
    doc1 = json.loads(first.stdout)
    assert doc1["status"] in ("optimal", "feasible") and doc1["reason"] == "solved"
    second = run(["tick", "--format", "json", *args])
    doc2 = json.loads(second.stdout)
    ramp = 25_000
    assert abs(doc2["site"]["site_power_kw"] - doc1["site"]["site_power_kw"]) <= ramp + 1e-6
    files = published(tmp_path)
    assert [d["decided_at_utc"] for d in files] == [doc1["decided_at_utc"], doc2["decided_at_utc"]]
    assert json.loads((tmp_path / "out" / "latest.json").read_text()) == files[-1]
    shown = json.loads(run(["decisions", "show", "--format", "json", *args]).stdout)
    assert [r["seq"] for r in shown] == [1, 2]
    status = json.loads(run(["status", "--format", "json", *args]).stdout)
    assert status["last_decision_seq"] == 2 and not status["safe_allocation"]
    as_csv = run(["status", "--format", "csv", *args])  # stdout is CSV alone; the summary lines go to stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0][0] == "series" and len({len(r) for r in rows}) == 1 and len(rows) > 5, as_csv.stdout[:300]
    assert "last decision #2" in as_csv.stderr


def test_webhook_receives_the_published_decision_and_is_retried_after_a_500(server, tmp_path):
    server.expect_oneshot_request("/hook", method="POST").respond_with_data("busy", status=500)
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    args = site_args(server.url_for("/"), tmp_path, f"daemon.webhook_url='{server.url_for('/hook')}'",
                     "daemon.webhook_retries=2")
    proc = run(["tick", "--format", "json", *args])
    assert proc.returncode == 0, proc.stderr
    posts = [req for req, _ in server.log if req.path == "/hook"]
    assert len(posts) == 2  # the 500, then the retry
    assert posts[1].get_json() == published(tmp_path)[-1] == json.loads(proc.stdout)


@pytest.mark.parametrize("override, reason", [
    # The interconnect drops to 2 MW while the site draws ~90 MW and may ramp 25 MW per step: infeasible.
    ("site.interconnect_cap_kw=2000", ["no feasible allocation", "site_cap", "ramp_limits",
                                       "ramp limit 25,000 kW/step, interconnect cap 2,000 kW"]),
    # The solver's time limit stops HiGHS before it has any allocation.
    ("solver.time_limit_s=0.000001", ["HiGHS stopped on the LP relaxation with status time_limit",
                                      "raise solver.time_limit_s (now 1e-06 s)"]),
])
def test_an_interval_without_an_allocation_keeps_the_previous_decision_then_recovers(server, tmp_path, override, reason):
    args = site_args(server.url_for("/"), tmp_path)
    first = json.loads(run(["tick", "--format", "json", *args]).stdout)
    proc = run(["tick", "--format", "json", *args, "--set", override])
    assert proc.returncode == 3, proc.stderr  # a kept decision is a failure cron and systemd see
    assert proc.stderr.strip().splitlines()[-1].startswith("error: decision 2 is KEPT: previous decision kept: ")
    kept = json.loads(proc.stdout)
    assert kept["status"] == "kept"
    assert kept["reason"].startswith("previous decision kept: ")
    for part in reason:
        assert part in kept["reason"]
    def units(doc):
        return [{k: v for k, v in p.items() if k != "recent_starts"} for p in doc["pools"]]

    assert units(kept) == units(first)
    third = json.loads(run(["tick", "--format", "json", *args]).stdout)
    assert third["status"] in ("optimal", "feasible")
    assert [d["status"] for d in published(tmp_path)] == [first["status"], "kept", third["status"]]


def test_stale_inputs_publish_the_safe_allocation(tmp_path):
    args = site_args("http://127.0.0.1:9", tmp_path)  # nothing answers: no data at all
    proc = run(["tick", "--format", "json", *args])
    assert proc.returncode == 3, proc.stderr
    assert "error: decision 1 is SAFE: inputs too stale to decide" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "safe" and "inputs too stale to decide" in doc["reason"]
    pools = {p["name"]: p for p in doc["pools"]}
    assert all(pools[n]["units_on"] == 0 for n in ("s19jpro", "s19xp", "s21", "m30s"))
    assert pools["h100"]["contract_on"] == 3072 and pools["h100"]["market_on"] == 0


def test_a_second_instance_is_refused_with_the_pid(server, tmp_path):
    args = site_args(server.url_for("/"), tmp_path)
    with InstanceLock(tmp_path / "store.sqlite"):
        proc = run(["tick", *args])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"another hashpivot run (PID {os.getpid()}) holds" in proc.stderr


def test_one_daemon_per_store_whatever_path_names_it(server, tmp_path):
    """A symlink to the store, or a relative path to it, is the same store: its lock is held."""
    (tmp_path / "alias.sqlite").symlink_to(tmp_path / "store.sqlite")
    args = site_args(server.url_for("/"), tmp_path)
    with InstanceLock(tmp_path / "alias.sqlite"):
        proc = run(["tick", *args])
        relative = subprocess.run(cli("tick", *[a if a != str(tmp_path / "store.sqlite") else "store.sqlite" for a in args]),
                                  cwd=tmp_path, capture_output=True, text=True, timeout=120)
    for p in (proc, relative):
        assert p.returncode == 1 and f"another hashpivot run (PID {os.getpid()}) holds" in p.stderr, p.stderr
    assert not (tmp_path / "alias.sqlite.lock").exists()


def _start_daemon(args, tmp_path, env=None):
    log = open(tmp_path / "daemon.log", "a")
    return subprocess.Popen(cli("run", *args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def test_daemon_runs_intervals_serves_metrics_and_stops_on_sigterm(server, tmp_path):
    port = free_port()
    args = site_args(server.url_for("/"), tmp_path, f"daemon.metrics_port={port}", "daemon.decision_cron.second='*/2'",
                     "daemon.feed_crons.btc.second='*'", "daemon.feed_crons.power_rt.second='*'",
                     "daemon.feed_crons.network.second='*/5'", "daemon.feed_crons.gpu.second='*/5'")
    proc = _start_daemon(args, tmp_path)
    try:
        assert wait_for(lambda: len(published(tmp_path)) >= 3), (tmp_path / "daemon.log").read_text()
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "hashpivot_decisions_total" in metrics and 'hashpivot_pool_power_kw{pool="s21"}' in metrics
        assert 'hashpivot_feed_fresh{series="btc_usd"} 1.0' in metrics
        values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("hashpivot_") and " " in line}
        decided = dt.datetime.fromtimestamp(values["hashpivot_last_decision_timestamp_seconds"], dt.timezone.utc)
        with Store(tmp_path / "store.sqlite") as store:
            docs = {json.loads(d)["decided_at_utc"]: json.loads(d) for d in store.decisions()["document"]}
        doc = docs[decided.strftime("%Y-%m-%dT%H:%M:%SZ")]  # the metrics describe a stored decision exactly
        assert values['hashpivot_pool_power_kw{pool="s21"}'] == pytest.approx(next(p["power_kw"] for p in doc["pools"] if p["name"] == "s21"))
        assert values["hashpivot_site_power_kw"] == pytest.approx(doc["site"]["site_power_kw"])
        assert values["hashpivot_objective_usd"] == pytest.approx(doc["objective_usd"])
        assert values["hashpivot_safe_allocation"] == 0.0
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
    docs = published(tmp_path)
    with Store(tmp_path / "store.sqlite") as store:
        stored = store.decisions()
    assert list(stored["seq"]) == list(range(1, len(stored) + 1))
    assert len(docs) == len(stored)
    assert "daemon stopped" in (tmp_path / "daemon.log").read_text()


def test_a_restarted_daemon_serves_the_last_stored_decision_before_its_first_new_one(server, tmp_path):
    """A drill restarted `run` and read hashpivot_last_decision_timestamp_seconds 0.0 and site power 0.0 until
    the first new decision: an alert on a stale decision would fire on every restart."""
    port = free_port()
    first = json.loads(run(["tick", "--format", "json", *site_args(server.url_for("/"), tmp_path)]).stdout)
    args = site_args(server.url_for("/"), tmp_path, f"daemon.metrics_port={port}", "daemon.decision_cron.year='2099'")
    proc = _start_daemon(args, tmp_path)
    try:
        def scrape():
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                return None
        assert wait_for(lambda: scrape() is not None), (tmp_path / "daemon.log").read_text()
        values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in scrape().splitlines()
                  if line.startswith("hashpivot_") and " " in line}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    decided = dt.datetime.fromisoformat(first["decided_at_utc"].replace("Z", "+00:00")).timestamp()
    assert values["hashpivot_last_decision_timestamp_seconds"] == pytest.approx(decided, abs=1.0)
    assert values["hashpivot_site_power_kw"] == pytest.approx(first["site"]["site_power_kw"]) and first["site"]["site_power_kw"] > 0
    assert values["hashpivot_objective_usd"] == pytest.approx(first["objective_usd"])
    assert not any(k.startswith("hashpivot_decisions_total") and v > 0 for k, v in values.items())  # nothing new decided


def test_kill_9_and_restart_loses_nothing_and_keeps_the_ramp(server, tmp_path):
    args = site_args(server.url_for("/"), tmp_path, "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*/3'",
                     "daemon.feed_crons.power_rt.second='*/3'", "daemon.feed_crons.network.second='*/3'",
                     "daemon.feed_crons.gpu.second='*/3'", "site.ramp_limit_kw_per_step=5000")
    proc = _start_daemon(args, tmp_path)
    assert wait_for(lambda: len(published(tmp_path)) >= 3), (tmp_path / "daemon.log").read_text()
    proc.kill()
    proc.wait()
    proc = _start_daemon(args, tmp_path)
    try:
        with Store(tmp_path / "store.sqlite") as store:
            before = len(store.decisions())
        assert wait_for(lambda: len(published(tmp_path)) >= before + 3), (tmp_path / "daemon.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    with Store(tmp_path / "store.sqlite") as store:
        stored = store.decisions()
    assert list(stored["seq"]) == list(range(1, len(stored) + 1))  # no duplicate, none lost
    docs = [json.loads(d) for d in stored["document"]]
    site = [d["site"]["site_power_kw"] for d in docs if d["status"] != "safe"]
    assert all(abs(b - a) <= 5000 + 1e-6 for a, b in zip(site, site[1:])), site  # ramp held across the restart
    for path in (tmp_path / "out").glob("*.json"):
        json.loads(path.read_text())  # no half-written file


def test_clock_moving_backwards_or_skipping_keeps_history_in_order(server, tmp_path):
    clock = tmp_path / "now.txt"
    env = dict(os.environ, HASHPIVOT_FAKE_NOW_FILE=str(clock))
    args = site_args(server.url_for("/"), tmp_path)
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    for shift in (0, -3600, 3600 * 2):
        clock.write_text((now + dt.timedelta(seconds=shift)).isoformat())
        proc = run(["tick", "--format", "json", *args], env=env)
        # the one clock reaches feed validation too: an hour back, the server's rows are "from the future" and
        # refused, so that decision may be the safe allocation (exit 3); the history stays in order either way
        assert proc.returncode in (0, 3), proc.stderr
    with Store(tmp_path / "store.sqlite") as store:
        stored = store.decisions()
    assert list(stored["seq"]) == [1, 2, 3]
    assert [json.loads(d)["decided_at_utc"][:13] for d in stored["document"]] == [
        (now + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H") for s in (0, -3600, 7200)]


@pytest.mark.parametrize("step_s", [-3 * 3600, -120])
def test_decisions_go_on_when_the_clock_the_daemon_sees_steps_back(server, tmp_path, step_s):
    """The fake clock file moves the daemon's "now" back by 3 h or 2 min while it runs: a decision is still
    taken every second (the schedule runs on the scheduler's clock and is re-armed on steps), and one that
    cannot use rows fetched "after" the new now says so instead of "no real-time prices"."""
    clock = tmp_path / "now.txt"
    clock.write_text("0")
    env = dict(os.environ, HASHPIVOT_FAKE_NOW_FILE=str(clock))
    args = site_args(server.url_for("/"), tmp_path, "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*/2'")

    def count() -> int:
        return len(published(tmp_path))

    proc = _start_daemon(args, tmp_path, env=env)
    try:
        assert wait_for(lambda: count() >= 2), (tmp_path / "daemon.log").read_text()
        tmp = clock.with_suffix(".tmp")
        tmp.write_text(str(step_s))
        tmp.replace(clock)
        n = count()
        assert wait_for(lambda: count() >= n + 3, timeout_s=10), "decisions stopped after the clock step"
        reasons = [d["reason"] for d in published(tmp_path)[n:]]
        assert not any("no real-time prices" in r and "fetched after" not in r for r in reasons), reasons
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_feed_outage_runs_on_last_good_values_then_safe_then_recovers(server, tmp_path):
    clock = tmp_path / "now.txt"
    env = dict(os.environ, HASHPIVOT_FAKE_NOW_FILE=str(clock))
    args = site_args(server.url_for("/"), tmp_path, "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*'",
                     "daemon.feed_crons.power_rt.second='*'", "daemon.feed_crons.network.second='*/2'",
                     "daemon.feed_crons.gpu.second='*/2'")

    def set_clock(shift_h: float = 0.0) -> None:
        tmp = clock.with_suffix(".tmp")
        tmp.write_text(str(shift_h * 3600))  # an offset from the real clock
        tmp.replace(clock)

    def statuses() -> list[str]:
        return [d["status"] for d in published(tmp_path)]

    set_clock()
    proc = _start_daemon(args, tmp_path, env=env)
    try:
        assert wait_for(lambda: len(statuses()) >= 2 and statuses()[-1] == "optimal"), (tmp_path / "daemon.log").read_text()
        with Store(tmp_path / "store.sqlite") as store:
            good = store.conn.execute("SELECT * FROM observations ORDER BY 1, 2, 3").fetchall()
        server.clear()  # the feed server now answers garbage everywhere
        server.expect_request("").respond_with_data("<html>maintenance</html>", content_type="text/html")
        n = len(statuses())
        assert wait_for(lambda: len(statuses()) >= n + 2)
        assert statuses()[-1] == "optimal"  # still deciding on the last good values
        set_clock(7)  # past the 6 h staleness limit of real-time prices
        assert wait_for(lambda: statuses()[-1] == "safe"), statuses()
        safe = published(tmp_path)[-1]
        assert "inputs too stale to decide" in safe["reason"]
        with Store(tmp_path / "store.sqlite") as store:
            after = store.conn.execute("SELECT * FROM observations ORDER BY 1, 2, 3").fetchall()
            assert set(good) <= set(after)  # nothing good overwritten
            assert len(store.quarantined()) > 0
        server.clear()
        serve_all(server)  # the server returns
        time.sleep(1.5)
        set_clock()
        assert wait_for(lambda: statuses()[-1] == "optimal"), statuses()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_misfires_coalesce_after_a_pause(server, tmp_path):
    args = site_args(server.url_for("/"), tmp_path, "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*/5'",
                     "daemon.feed_crons.power_rt.second='*/5'", "daemon.feed_crons.network.second='*/5'",
                     "daemon.feed_crons.gpu.second='*/5'", "daemon.misfire_grace_s=30")
    proc = _start_daemon(args, tmp_path)
    try:
        assert wait_for(lambda: len(published(tmp_path)) >= 2), (tmp_path / "daemon.log").read_text()
        proc.send_signal(signal.SIGSTOP)  # a 10 s pause: ten decision runs are missed
        time.sleep(10)
        before = len(published(tmp_path))
        proc.send_signal(signal.SIGCONT)
        time.sleep(1.5)
        after = len(published(tmp_path))
        # at most: one run in flight at the pause, the one coalesced run, one at the next second (a loaded machine
        # can show all three); without coalescing the ten missed runs follow
        assert after - before <= 3, f"{after - before} decisions right after the pause: misfires were not coalesced"
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def every_command() -> list[list[str]]:
    """Every command path of the `hashpivot` app, read from the app itself (a new command is covered)."""
    from typer.main import get_command

    from hashpivot.optimizer.cli import app

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            return [path]
        return [p for name, sub in sorted(subcommands.items()) for p in walk(sub, path + [name])]

    return walk(get_command(app), [])


@pytest.mark.parametrize("command", every_command(), ids=" ".join)
def test_every_command_has_help_with_examples(command):
    proc = run([*command, "--help"])
    assert proc.returncode == 0 and "Examples" in proc.stdout and "hashpivot " + " ".join(command) in proc.stdout


def test_metrics_port_in_use_and_unusable_store_are_clear_errors(server, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run(["run", *site_args(server.url_for("/"), tmp_path, f"daemon.metrics_port={port}")], timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in proc.stderr
    (tmp_path / "not-a-dir").write_text("x")
    args = site_args(server.url_for("/"), tmp_path)
    args[1] = str(tmp_path / "not-a-dir" / "store.sqlite")
    proc = run(["tick", *args])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "not-a-dir" in proc.stderr


@pytest.mark.parametrize("budget_s, at_least_s, at_most_s", [(3, 2.5, 12)])
def test_tick_against_silent_sources_ends_within_its_pass_budget_and_exits_3(tarpit, tmp_path, budget_s, at_least_s,
                                                                           at_most_s):
    """Every source accepts the connection and never answers: with a 2 s read timeout and 2 retries that is
    6 s per request and over a minute for the pass; feeds.pass_budget_s cuts it to the budget (the default
    config's is 30 s), the safe allocation is published and cron sees exit code 3."""
    args = site_args(tarpit, tmp_path, "feeds.retries=2", f"feeds.pass_budget_s={budget_s}")
    t0 = time.monotonic()
    proc = run(["tick", *args])
    took = time.monotonic() - t0
    assert proc.returncode == 3, proc.stderr
    assert at_least_s < took < at_most_s, f"tick took {took:.1f} s"
    assert "Traceback" not in proc.stderr and "Retrying" not in proc.stderr  # one line per failed source
    assert "feeds.pass_budget_s" in proc.stderr


def test_a_webhook_redirect_is_a_failed_delivery_not_a_bodiless_get(server, tmp_path):
    server.expect_request("/hook", method="POST").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    server.expect_request("/elsewhere").respond_with_data("ok")
    args = site_args(server.url_for("/"), tmp_path, f"daemon.webhook_url='{server.url_for('/hook')}'",
                     "daemon.webhook_retries=0")
    proc = run(["tick", "--format", "json", *args])
    assert proc.returncode == 1 and "webhook did not take decision 1 (HTTP 302)" in proc.stderr, proc.stderr
    assert not [req for req, _ in server.log if req.path == "/elsewhere"]
    assert published(tmp_path)  # the files were published; the webhook is retried by the next pass
    assert json.loads(proc.stdout)["status"] in ("optimal", "feasible")  # and tick still says what it decided



def test_a_signal_landing_while_a_job_is_being_submitted_still_stops_the_daemon():
    """A drill daemon was alive 30 min after its SIGTERM (py-spy: the handler ran inside the executor's submit(),
    which holds the pool's lock, and shutdown() waited on that lock forever). Here the handler is called the way
    the signal calls it: on the scheduler's loop thread while that lock is held (a real BlockingScheduler with the
    daemon's executor; the lock is private, but it is where the deadlock was)."""
    import threading

    from apscheduler.events import EVENT_JOB_SUBMITTED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    from hashpivot.optimizer.service.daemon import _stop_on_signal

    scheduler = BlockingScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(1)})
    scheduler.add_job(lambda: None, "interval", seconds=0.1)
    stop, stopping = _stop_on_signal(scheduler)
    handled = threading.Event()

    def signal_mid_submit(_event):
        with scheduler._executors["default"]._pool._shutdown_lock:
            stop(signal.SIGTERM, None)
        handled.set()

    scheduler.add_listener(signal_mid_submit, EVENT_JOB_SUBMITTED)
    loop = threading.Thread(target=scheduler.start, daemon=True)
    loop.start()
    assert handled.wait(5), "the signal handler blocked while the executor's lock was held"
    loop.join(10)
    assert not loop.is_alive() and len(stopping) == 1, "the scheduler did not stop after the signal"
    stopping[0].join(10)
