"""The operator console in a real browser (Debian's chromium, driven by playwright) against stores filled by real
daemon passes (`tick`: the loopback feed server with recorded payloads, a simulated LuxOS farm read through
pyasic, HiGHS): what a person sees must be what the decision document says. Plus the security rules: no
non-loopback bind without a token, the token checked, actions only with allow_actions, CSRF field and origin.

Screenshots go to a temp folder; HASHPIVOT_CONSOLE_SHOTS=docs writes docs/console-normal.png and console-safe.png.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from hashpivot.feeds.collect import SeriesStatus
from hashpivot.feeds.fleet.farm import SimMachine, farm_ips, write_inventory
from hashpivot.feeds.fleet.inventory import read_inventory
from hashpivot.feeds.fleet.scan import scan_into
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.models.decision import Decision, SiteState
from hashpivot.models.errors import ConfigError
from hashpivot.optimizer.console.app import derived
from hashpivot.optimizer.console.server import prepare, serve_in_thread
from hashpivot.optimizer.console.state import banners, feed_rows
from hashpivot.optimizer.service.daemon import tick
from hashpivot.optimizer.service.overrides import override_path, with_override, write_override
from tests.feeds_support import loopback_config, serve_all
from tests.test_fleet import RunningFarm

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "console-test-token-0123456789abcdef"


def number(text: str) -> float | None:
    text = text.strip()
    return None if text in ("–", "") else float(text.replace(",", ""))


@pytest.fixture(scope="module")
def feed_server():
    server = HTTPServer(threaded=True)
    server.start()
    serve_all(server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def farm():
    """Six S19 XPs on loopback: one unreachable, one asleep."""
    machines = [SimMachine(ip, noise=0.0, fault="unreachable" if i == 0 else None) for i, ip in enumerate(farm_ips(6, "127.0.31.1"))]
    machines[1].sleeping = True
    with RunningFarm(machines):
        yield machines


def site_sets(url: str, tmp: Path, *extra: str) -> list[str]:
    _, sets = loopback_config(url, retries=0)
    return sets + [f"daemon.publish_dir='{tmp / 'out'}'", 'daemon.metrics_port="off"', *extra]


@pytest.fixture(scope="module")
def normal(feed_server, farm, tmp_path_factory):
    """A store after a fleet scan and two daemon passes with fleet.apply = dry-run (plans audited)."""
    tmp = tmp_path_factory.mktemp("normal")
    inventory = write_inventory(farm, tmp / "fleet.csv", "s19xp", "hall-a")
    cfg = load_config(ROOT / "configs" / "site.toml", site_sets(feed_server.url_for("/"), tmp, f"fleet.inventory='{inventory}'",
                                                                 "fleet.timeout_s=2"))
    cfg = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"apply": "dry-run"})})  # as if in the file
    db = tmp / "store.sqlite"

    def fill():  # in a thread: pyasic runs its own event loop, playwright may have one running here
        with Store(db) as store:
            scan_into(store, read_inventory(inventory, cfg), datetime.now(timezone.utc), 10, 2.0)
        tick(cfg, db)
        time.sleep(1.1)  # the audit's times have whole seconds: the last apply is every row of the newest second
        tick(cfg, db)

    in_thread(fill)
    return cfg, db


@pytest.fixture(scope="module")
def safe(tmp_path_factory):
    """A store whose only decision is the safe allocation: nothing answers the feeds."""
    tmp = tmp_path_factory.mktemp("safe")
    cfg = load_config(ROOT / "configs" / "site.toml", site_sets("http://127.0.0.1:9", tmp))
    db = tmp / "store.sqlite"
    seq, doc = in_thread(lambda: tick(cfg, db))
    assert doc.status == "safe"
    return cfg, db


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install '.[test]')")
    if CHROMIUM is None:
        print("SKIP reason: Debian's chromium is not installed (.ci/run installs it with apt-get when run as root)")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get when run as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def console():
    """Start consoles on loopback (port 0); all are stopped after the test."""
    started = []

    def start(cfg, db):
        served = serve_in_thread(prepare(cfg, db, "127.0.0.1", 0))
        started.append(served)
        return served.url

    yield start
    for s in started:
        s.stop()


def shots_dir(tmp_path: Path) -> Path:
    return ROOT / "docs" if os.environ.get("HASHPIVOT_CONSOLE_SHOTS") == "docs" else tmp_path


def in_thread(job):
    """`job()` run in a thread of its own; its result (or its exception, raised here)."""
    out = {}

    def run():
        try:
            out["value"] = job()
        except BaseException as exc:  # handed to the test's thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    if "error" in out:
        raise out["error"]
    return out["value"]


def last(db: Path) -> tuple[int, Decision]:
    with Store(db) as store:
        return store.last_decision()


def test_the_pool_table_shows_what_the_decision_document_says(normal, browser, console, tmp_path):
    cfg, db = normal
    url = console(cfg, db)
    seq, doc = last(db)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    assert page.locator("#decision h2").first.inner_text() == f"Last decision #{seq}"
    assert page.locator('[data-field="status"]').inner_text() == doc.status
    assert number(page.locator('#decision [data-field="site_power_kw"]').inner_text()) == pytest.approx(doc.site.site_power_kw, abs=0.05)
    assert number(page.locator('[data-field="shadow_price"]').inner_text()) == pytest.approx(doc.shadow_price_usd_per_mw_hour, abs=0.005)
    rows = page.locator("#pools tbody tr")
    assert rows.count() == len(doc.pools)
    for pool in doc.pools:
        row = page.locator(f'#pools tr[data-pool="{pool.name}"]')
        cell = lambda f: row.locator(f'[data-field="{f}"]').inner_text()  # noqa: E731
        assert number(cell("units_on")) == pool.units_on
        assert number(cell("units_available")) == pool.units_available
        assert number(cell("power_kw")) == pytest.approx(pool.power_kw, abs=0.05)
        assert number(cell("revenue_usd_per_hour")) == pytest.approx(pool.revenue_usd_per_hour, abs=0.005)
        assert number(cell("breakeven_usd_per_mwh")) == pytest.approx(pool.breakeven_usd_per_mwh, abs=0.005)
        assert number(cell("margin_usd_per_mwh")) == pytest.approx(pool.margin_usd_per_mwh, abs=0.005)
        assert number(cell("price_usd_per_mwh")) == pytest.approx(doc.inputs.marginal_power_price_usd_per_mwh, abs=0.005)
        assert cell("reason") == pool.reason
        for mode, n in pool.units_by_mode.items():
            if n:
                assert f"{n:,} {mode}" in cell("units_by_mode")
    assert pool.name and doc.pool("s19xp").units_available == 5  # the fleet's healthy machines, not the config's 6,500
    # no banner on a fresh optimal decision with fresh feeds
    assert page.locator("[data-banner]").count() == 0, page.locator("#banners").inner_text()
    # the fleet as the scan and the dry-run audit left it
    fleet = page.locator('tr[data-fleet-pool="s19xp"] td')
    assert [fleet.nth(i).inner_text() for i in range(7)] == ["s19xp", "6", "5", "4", "1", "1", "0"]
    with Store(db) as store:
        applied = store.last_apply()
    assert set(applied["decision_seq"]) == {seq} and set(applied["result"]) == {"planned"}
    assert page.locator('[data-field="last_apply"]').inner_text().endswith(f"(decision {seq}): {len(applied):,} planned, 0 applied, 0 failed")
    assert page.locator('[data-field="fleet_apply"]').inner_text() == "dry-run"
    assert page.locator("meta[http-equiv=refresh]").get_attribute("content") == str(cfg.console.refresh_s)  # reloads itself
    page.screenshot(path=str(shots_dir(tmp_path) / "console-normal.png"), full_page=True)
    page.close()


def test_the_chart_is_drawn_with_its_axes(normal, browser, console):
    cfg, db = normal
    url = console(cfg, db)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    svg = page.locator("#chart svg")
    box = svg.bounding_box()
    assert box["width"] > 800 and box["height"] > 300
    chart_text = page.locator("#chart").inner_text()
    for label in ("USD/MWh", "site kW by pool", "interconnect cap", "s21", "h100", "now"):
        assert label in chart_text
    # the stacked areas: one filled shape per pool for the decisions and one per pool for the planned horizon
    filled = page.locator("#chart svg g[id^='FillBetweenPolyCollection'], #chart svg g[id^='PolyCollection']").count()
    assert filled >= 2 * len(last(db)[1].pools)
    page.close()
    response = requests.get(url + "api/chart.svg", timeout=10)
    assert response.headers["content-type"].startswith("image/svg+xml") and response.text.startswith("<svg")


def test_the_safe_allocation_shows_a_banner_and_the_pools_it_switched_off(safe, browser, console, tmp_path):
    cfg, db = safe
    url = console(cfg, db)
    seq, doc = last(db)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    banner = page.locator('[data-banner="safe"]')
    assert banner.is_visible()
    assert banner.inner_text().startswith(f"SAFE ALLOCATION for {doc.interval_start_utc}: inputs too stale to decide")
    stale = page.locator('[data-banner="stale"]')
    assert stale.is_visible() and "btc_usd (never received" in stale.inner_text()
    for pool in doc.pools:
        row = page.locator(f'#pools tr[data-pool="{pool.name}"]')
        assert number(row.locator('[data-field="units_on"]').inner_text()) == pool.units_on
    assert number(page.locator('#pools tr[data-pool="s21"] [data-field="units_on"]').inner_text()) == 0
    assert page.locator('tr[data-series="btc_usd"] [data-field="fresh"]').inner_text() == "STALE"
    assert page.locator("#errors tbody tr").count() >= 1  # the connection refusals, as quarantined
    page.screenshot(path=str(shots_dir(tmp_path) / "console-safe.png"), full_page=True)
    page.close()


def test_hashpivot_status_shows_the_same_banners(normal, safe):
    from typer.testing import CliRunner

    from hashpivot.optimizer.cli import app

    def status(db):
        result = CliRunner().invoke(app, ["status", "--db", str(db), "--format", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert status(normal[1])["banners"] == []
    banners_seen = status(safe[1])["banners"]
    assert [b["kind"] for b in banners_seen] == ["safe", "stale"] and "btc_usd (never received, limit 2.0 h)" in banners_seen[1]["text"]


def _status(series: str, age_s: float | None, required: bool = True) -> SeriesStatus:
    return SeriesStatus(series, 1.0, "x", None, "mempool", age_s, 7200.0, required)


def test_banners_for_an_old_decision_and_stale_required_feeds():
    doc = Decision(status="optimal", site=SiteState(cap_kw=1, it_power_kw=0, site_power_kw=0), interval_start_utc="2026-12-02T17:00:00Z",
                   horizon_steps=1, step_minutes=60, pools=[])
    assert banners(doc, 600.0, 300.0, [_status("btc_usd", 60.0)]) == []
    old = banners(doc, 601.0, 300.0, [_status("btc_usd", 60.0), _status("gpu_offers.A100", 1e6, required=False)])
    assert [b["kind"] for b in old] == ["old"] and "10 min old" in old[0]["text"]
    stale = banners(doc, 10.0, 300.0, [_status("btc_usd", 7201.0)])
    assert [b["kind"] for b in stale] == ["stale"] and "btc_usd (2.0 h old, limit 2.0 h)" in stale[0]["text"]
    assert [b["kind"] for b in banners(doc.model_copy(update={"status": "safe"}), 10.0, 300.0, [])] == ["safe"]
    kept = banners(doc.model_copy(update={"status": "kept", "reason": "previous decision kept: infeasible"}), 10.0, 300.0, [])
    assert kept == [{"kind": "kept", "text": "Previous decision kept for 2026-12-02T17:00:00Z: previous decision kept: infeasible"}]
    assert banners(None, None, 300.0, [])[0]["text"].startswith("No decision stored yet")


def test_feed_rows_say_which_source_is_a_fallback():
    cfg = load_config(ROOT / "configs" / "site.toml")
    rows = {r["series"]: r for r in feed_rows(cfg, [
        SeriesStatus("btc_usd", 1.0, "USD/BTC", None, "coinbase", 60.0, 7200.0, True),
        SeriesStatus("difficulty", 1.0, "1", None, "mempool", 60.0, 7200.0, True),
        SeriesStatus("hashprice_usd_per_th_day", 1.0, "USD/TH/day", None, "computed", 60.0, 7200.0, True),
        SeriesStatus("subsidy_btc", None, "BTC", None, None, None, 7200.0, True)])}
    assert rows["btc_usd"]["fallback"] and rows["btc_usd"]["source_kind"] == "live"  # mempool is the btc group's first
    assert not rows["difficulty"]["fallback"]
    assert rows["hashprice_usd_per_th_day"]["source_kind"] == "derived" and not rows["hashprice_usd_per_th_day"]["fallback"]
    assert rows["subsidy_btc"]["source_kind"] == "none" and not rows["subsidy_btc"]["fresh"]
    no_mempool = cfg.model_copy(update={"feeds": cfg.feeds.model_copy(update={"sources": {
        **cfg.feeds.sources, "mempool": cfg.feeds.source("mempool").model_copy(update={"enabled": False})}})})
    assert not feed_rows(no_mempool, [SeriesStatus("btc_usd", 1.0, "USD/BTC", None, "coinbase", 60.0, 7200.0, True)])[0]["fallback"]


@pytest.mark.e2e
def test_a_bind_beyond_loopback_without_a_token_is_refused_at_start(safe):
    cfg, db = safe
    env = {k: v for k, v in os.environ.items() if k != "HASHPIVOT_CONSOLE_TOKEN"}
    serve = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "serve", "--db", str(db), "--host", "0.0.0.0",
                            "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    line = ("error: console: refusing to serve on 0.0.0.0 (beyond this machine) without a token: set console.token_file, "
            "or the environment variable HASHPIVOT_CONSOLE_TOKEN, or bind console.host = \"127.0.0.1\"")
    assert serve.returncode == 1 and serve.stderr.strip().splitlines() == [line], serve.stderr
    daemon = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "run", "--db", str(db), "--set", "console.enabled=true",
                             "--set", "console.host='0.0.0.0'", "--set", "console.port=0", "--set", 'daemon.metrics_port="off"'],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert daemon.returncode == 1 and daemon.stderr.strip().splitlines()[-1] == line, daemon.stderr


@pytest.mark.e2e
def test_hashpivot_run_serves_the_console_beside_the_daemon(feed_server, tmp_path):
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sets = site_sets(feed_server.url_for("/"), tmp_path, "console.enabled=true", f"console.port={port}",
                     "daemon.decision_cron.second='*/2'")
    args = ["run", "--db", str(tmp_path / "store.sqlite")] + [x for s in sets for x in ("--set", s)]
    log = open(tmp_path / "daemon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, seen = time.monotonic() + 90, None
        while time.monotonic() < deadline and seen is None:
            try:
                overview = requests.get(f"http://127.0.0.1:{port}/api/overview", timeout=5)
                seen = overview.json() if overview.status_code == 200 and overview.json()["decision"] else None
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert seen is not None, (tmp_path / "daemon.log").read_text()
        with Store(tmp_path / "store.sqlite") as store:
            stored = {int(r.seq): json.loads(r.document) for r in store.decisions().itertuples()}
        shown = seen["decision"]
        assert shown["status"] in ("optimal", "feasible") and seen["banners"] == []
        assert {p["name"]: p["power_kw"] for p in shown["pools"]} == {p["name"]: p["power_kw"] for p in stored[shown["seq"]]["pools"]}
        assert "Last decision #" in requests.get(f"http://127.0.0.1:{port}/", timeout=10).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"console listening on http://127.0.0.1:{port}/" in (tmp_path / "daemon.log").read_text()


def test_a_decision_older_than_two_intervals_shows_its_banner_in_the_page(normal, browser, console, tmp_path, monkeypatch):
    """The project's one clock, half an hour ahead (HASHPIVOT_FAKE_NOW_FILE): decisions are due every 5 min."""
    cfg, db = normal
    (tmp_path / "now").write_text("1800")
    monkeypatch.setenv("HASHPIVOT_FAKE_NOW_FILE", str(tmp_path / "now"))
    url = console(cfg, db)
    page = browser.new_page()
    page.goto(url)
    old = page.locator('[data-banner="old"]')
    shown = re.match(r"Last decision is (\d+) min old \(decisions are due every 5 min\)", old.inner_text())
    assert old.is_visible() and shown, old.inner_text()
    assert 30 <= int(shown.group(1)) <= 45  # the module's decision was made up to minutes before this test ran
    assert page.locator('[data-banner="safe"]').count() == 0 and page.locator('[data-banner="stale"]').count() == 0
    page.close()


def test_a_token_file_others_can_read_is_refused(safe, tmp_path):
    cfg, db = safe
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "token").chmod(0o644)
    with pytest.raises(ConfigError, match=r"console.token_file .*token: readable by others \(mode 0644\); chmod 600"):
        prepare(_with_token_file(cfg, tmp_path / "token"), db, "0.0.0.0", 0)


def _with_token_file(cfg, path: Path):
    return cfg.model_copy(update={"console": cfg.console.model_copy(update={"token_file": str(path)})})


def _with_token(cfg, tmp_path: Path, *, actions: bool):
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "token").chmod(0o600)
    console = cfg.console.model_copy(update={"token_file": str(tmp_path / "token"), "allow_actions": actions})
    return cfg.model_copy(update={"console": console})


def test_the_token_is_required_compared_and_never_logged(safe, browser, console, tmp_path, caplog):
    cfg, db = safe
    with caplog.at_level(logging.DEBUG):
        url = console(_with_token(cfg, tmp_path, actions=False), db)
        refused = requests.get(url + "api/overview", timeout=10)
        wrong = requests.get(url + "api/overview", headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"}, timeout=10)
        good = requests.get(url + "api/overview", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        health = requests.get(url + "healthz", timeout=10)
        foreign_login = requests.post(url + "login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"},
                                      allow_redirects=False, timeout=10)
        page = browser.new_page()
        page.goto(url)
        assert page.locator("input[name=token]").is_visible()  # a browser without the header gets the sign-in form
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        assert page.locator('[data-banner="safe"]').is_visible()
        page.close()
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and health.status_code == 200
    assert foreign_login.status_code == 403 and "set-cookie" not in foreign_login.headers  # no login CSRF
    assert good.status_code == 200 and good.json()["decision"]["status"] == "safe"
    for header, value in (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")):
        assert refused.headers[header] == value and good.headers[header] == value
    assert "script-src" not in good.headers["content-security-policy"] and "default-src 'none'" in good.headers["content-security-policy"]
    assert TOKEN not in caplog.text


def test_actions_need_allow_actions_the_csrf_field_and_this_origin_and_are_audited(normal, browser, console, tmp_path):
    cfg, db = normal
    copy = tmp_path / "store.sqlite"
    with Store(db) as store:
        store.backup(copy)
    read_only = console(_with_token(cfg, tmp_path, actions=False), copy)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    off = requests.post(read_only + "actions/holds", data={"pool": "s21", "what": "off", "reason": "x"}, headers=bearer,
                        allow_redirects=False, timeout=10)
    assert off.status_code == 403 and "allow_actions" in off.json()["error"]
    url = console(_with_token(cfg, tmp_path, actions=True), copy)
    no_csrf = requests.post(url + "actions/holds", data={"pool": "s21", "what": "off", "reason": "x"}, headers=bearer,
                            allow_redirects=False, timeout=10)
    assert no_csrf.status_code == 403 and "csrf" in no_csrf.json()["error"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    foreign = requests.post(url + "actions/holds", data={"pool": "s21", "what": "off", "reason": "x", "csrf": csrf},
                            headers={**bearer, "Origin": "http://evil.example"}, allow_redirects=False, timeout=10)
    assert foreign.status_code == 403
    # a hold added and removed from the page
    form = page.locator("form[action='/actions/holds']")
    form.locator("select[name=pool]").select_option("s21")
    form.locator("select[name=what]").select_option("units")
    form.locator("input[name=units]").fill("8000")
    form.locator("input[name=reason]").fill("PDU 3 derated")
    form.locator("button").click()
    assert "hold 1 added on s21" in page.locator('[data-banner="flash"]').inner_text()
    assert "exactly 8,000 units" in page.locator('#holds tr[data-hold="1"]').inner_text()
    with Store(copy) as store:
        holds = store.active_holds(datetime.now(timezone.utc))
        assert list(holds["pool"]) == ["s21"] and list(holds["units"]) == [8000] and list(holds["reason"]) == ["PDU 3 derated"]
    page.locator('#holds tr[data-hold="1"] button').click()
    assert page.locator('#holds tr[data-hold="1"]').count() == 0
    # fleet.apply switched to on from the page: the next daemon pass commands the farm
    switch = page.locator("form[action='/actions/fleet-apply']")
    switch.locator("select[name=apply]").select_option("on")
    switch.locator("input[name=reason]").fill("dry runs looked right")
    switch.locator("button").click()
    assert page.locator('[data-field="fleet_apply"]').inner_text() == "on"
    page.close()
    assert with_override(cfg, copy).fleet.apply == "on" and cfg.fleet.apply == "dry-run"
    with Store(copy) as store:  # the console's audited actions are not the fleet's last apply
        assert set(store.last_apply()["result"]) == {"planned"}
    seq = in_thread(lambda: tick(cfg, copy))[0]  # as the daemon's scheduler does (and off playwright's event loop)
    with Store(copy) as store:
        audit = store.fleet_log()
        applied = store.last_apply()
    console_rows = audit[audit["command"].str.startswith("console: ")]
    assert list(console_rows["command"]) == ["console: hold add", "console: hold remove", "console: fleet.apply on"]
    assert set(console_rows["result"]) == {"ok"} and all(d.startswith("from 127.0.0.1: ") for d in console_rows["detail"])
    assert set(applied["decision_seq"]) == {seq} and set(applied["result"]) == {"ok"}  # commanded, not planned
    assert timedelta(0) <= datetime.now(timezone.utc) - datetime.fromisoformat(applied["at_utc"].iloc[0].replace("Z", "+00:00")) < timedelta(minutes=5)


def test_fleet_apply_set_on_the_command_line_holds_over_the_console_switch(normal, console, tmp_path, caplog):
    """An operator who runs `tick --set fleet.apply=off` after someone switched the console to on gets off, a
    warning naming the switch file, and a console that refuses to switch while the command line pins it."""
    site = ROOT / "configs" / "site.toml"
    assert load_config(site, ["fleet.apply='off'"]).fleet.apply_pinned
    assert not load_config(site, ["fleet.retries=2"]).fleet.apply_pinned and not load_config(site).fleet.apply_pinned
    cfg, db = normal
    copy = tmp_path / "store.sqlite"
    with Store(db) as store:
        store.backup(copy)
    write_override(copy, "on", "2026-12-03T00:00:00Z", "console 127.0.0.1", "dry runs looked right")
    assert with_override(cfg, copy).fleet.apply == "on"  # the switch holds over the config file
    pinned = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"apply": "off"})})
    pinned.fleet._apply_pinned = True  # what load_config sets for --set fleet.apply=...
    with caplog.at_level(logging.WARNING, logger="hashpivot"):
        seq = in_thread(lambda: tick(pinned, copy))[0]
    assert str(override_path(copy)) in caplog.text and "is ignored" in caplog.text
    with Store(copy) as store:
        commanded = store.fleet_log()
    assert not (commanded["decision_seq"] == seq).any(), commanded.tail()  # off: nothing planned, nothing sent
    url = console(_with_token(pinned, tmp_path, actions=True), copy)
    refused = requests.post(url + "actions/fleet-apply", data={"apply": "on", "reason": "x", "csrf": derived(TOKEN, "csrf")},
                            headers={"Authorization": f"Bearer {TOKEN}"}, allow_redirects=False, timeout=10)
    assert refused.status_code == 409 and "pinned to off by --set" in refused.text, refused.text
