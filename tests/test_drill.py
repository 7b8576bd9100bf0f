"""The reliability drill, in CI: the daemon against the loopback feed server with random faults switched on
(HTTP 500, HTML with 200, bodies cut in half, empty bodies) and eight random kill -9s (half during start-up's
first collection pass, half 0.5-5 s after the daemon logs its start), then a run that must decide and store a
price before its SIGTERM. Then: the store passes SQLite's integrity check, every decision is published exactly
(file = stored document), the webhook got every seq, no stored observation came from a faulty payload, and no
log has a traceback. Prints the figures the README's Reliability section quotes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from hashpivot.feeds.store import Store
from tests.daemon_support import starts_logged, wait_for, wait_started
from tests.feeds_support import good_responses, loopback_config
from tests.test_outbox import check_published_exactly, deliveries, stored

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.e2e]
FAULTS = ("http_500", "html_200", "cut_in_half", "empty")


def faulty(body: bytes, content_type: str, rng: random.Random, rate: float, counts: Counter, lock: threading.Lock):
    """A handler answering the good body, or with probability `rate` one of FAULTS (counted)."""

    def handler(_request):
        with lock:
            kind = rng.choice(FAULTS) if rng.random() < rate else "good"
            counts[kind] += 1
        if kind == "http_500":
            return Response("boom", status=500)
        if kind == "html_200":
            return Response("<html><body>maintenance</body></html>", status=200, content_type="text/html")
        if kind == "cut_in_half":
            return Response(body[: len(body) // 2], status=200, content_type=content_type)
        if kind == "empty":
            return Response(b"", status=200, content_type=content_type)
        return Response(body, status=200, content_type=content_type)

    return handler


def test_random_faults_and_kills_lose_nothing_and_store_nothing_bad(tmp_path):
    rng, counts, lock = random.Random(11), Counter(), threading.Lock()
    server = HTTPServer(threaded=True)
    server.start()
    good = good_responses()
    for path, match, body, content_type in good:
        server.expect_request(path, **match).respond_with_handler(faulty(body, content_type, rng, 0.3, counts, lock))
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    out = tmp_path / "out"
    _, sets = loopback_config(server.url_for("/"), retries=0)
    sets += [f"daemon.publish_dir='{out}'", 'daemon.metrics_port="off"', f"daemon.webhook_url='{server.url_for('/hook')}'",
             "daemon.webhook_retries=0", "daemon.decision_cron.second='*'", "daemon.feed_crons.btc.second='*/2'",
             "daemon.feed_crons.power_rt.second='*/2'", "daemon.feed_crons.network.second='*/3'",
             "daemon.feed_crons.gpu.second='*/3'", "daemon.feed_crons.power_da.second='*/5'"]
    args = ["run", "--db", str(tmp_path / "store.sqlite")] + [x for s in sets for x in ("--set", s)]
    log_path = tmp_path / "daemon.log"
    log = open(log_path, "a")
    kills, start_up_s = 8, 0.0
    try:
        for run in range(kills + 1):
            t0, decided_before = time.monotonic(), len(stored(tmp_path)) if run == kills else 0
            proc = subprocess.Popen([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT)
            if run == kills:  # the last run decides at least once itself and a price is stored, however slow start-up is
                wait_started(log_path, starts_logged(log_path) + 1, proc)
                wait_for(lambda: len(stored(tmp_path)) > decided_before and len(rt_prices(tmp_path)) > 0, timeout_s=90)
                proc.send_signal(signal.SIGTERM)
            elif run % 2:  # odd runs die during start-up's first collection pass (start-up is timed, not guessed)
                with lock:
                    pause_s = rng.uniform(0.3, 1.0) * start_up_s
                time.sleep(pause_s)
                proc.send_signal(signal.SIGKILL)
            else:  # even runs once running: mid-fetch, mid-decision or mid-publish
                wait_started(log_path, starts_logged(log_path) + 1, proc)
                start_up_s = max(start_up_s, time.monotonic() - t0)
                with lock:
                    pause_s = rng.uniform(0.5, 5.0)
                time.sleep(pause_s)
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
    finally:
        server.stop()
        log.close()

    with Store(tmp_path / "store.sqlite") as store:
        assert store.check(quick=False) == []
        quarantined = len(store.quarantined(limit=100_000))
        btc = store.history("btc_usd")["value"].tolist()
    prices = rt_prices(tmp_path)
    docs = stored(tmp_path)
    assert docs, (tmp_path / "daemon.log").read_text()[-3000:]
    check_published_exactly(tmp_path, out)  # every decision published, and only what was stored
    assert set(deliveries(server)) == set(docs)
    served_btc = good_btc_values(good)
    assert btc and all(any(abs(v - s) <= 1e-6 * s for s in served_btc) for v in btc), (btc[:5], served_btc)
    assert prices and all(-300 <= v <= 5500 for v in prices)
    text = (tmp_path / "daemon.log").read_text()
    assert "Traceback" not in text
    faults = sum(counts[k] for k in FAULTS)
    print(f"\ndrill: {sum(counts.values())} feed requests, {faults} faults injected "
          f"({', '.join(f'{k} {counts[k]}' for k in FAULTS)}), {quarantined} payloads quarantined, {kills} kill -9, "
          f"{len(docs)} decisions, all published (files = store), {len(deliveries(server))} webhook deliveries "
          f"for {len(docs)} seqs, 0 bad observations stored, 0 tracebacks")


def rt_prices(tmp_path: Path) -> list[float]:
    with Store(tmp_path / "store.sqlite") as store:
        return store.history("power_rt_usd_per_mwh.HB_WEST")["value"].tolist()


def good_btc_values(good) -> list[float]:
    """The BTC prices the good payloads carry (one per source)."""
    bodies = {path: json.loads(body) for path, _, body, _ in good
              if path in ("/api/v1/prices", "/v2/prices/BTC-USD/spot", "/0/public/Ticker", "/api/v3/simple/price")}
    return [float(bodies["/api/v1/prices"]["USD"]), float(bodies["/v2/prices/BTC-USD/spot"]["data"]["amount"]),
            float(bodies["/0/public/Ticker"]["result"]["XXBTZUSD"]["c"][0]),
            float(bodies["/api/v3/simple/price"]["bitcoin"]["usd"])]
