"""Collectors against a real HTTP server on loopback (pytest-httpserver) serving recorded payloads and faults."""

from __future__ import annotations

import json
import logging
import time

import pytest
from werkzeug import Response

from hashpivot.feeds.base import FeedError
from hashpivot.feeds.collect import collect, status
from hashpivot.feeds.http import HttpClient, HttpSettings
from hashpivot.feeds.store import Store
from hashpivot.models.hashprice import hashprice_usd_per_th_day
from tests.feeds_support import fixture_bytes, loopback_config, serve_all

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def by_group(results):
    return {r.group: r for r in results}


def test_full_pass_uses_primaries_stores_rows_and_derives_hashprice(httpserver, store):
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    results = by_group(collect(cfg, store, ["btc", "network", "power_rt", "power_da", "weather", "gpu"]))
    assert all(r.ok for r in results.values()), results
    assert results["btc"].source == "mempool" and not results["btc"].fallback
    assert results["gpu"].source == "vast"
    assert store.latest("power_rt_usd_per_mwh.HB_WEST").value == 14.96
    assert len(store.history("power_da_usd_per_mwh.HB_WEST")) == 24
    assert store.latest("btc_usd").value == 43753
    assert store.latest("ambient_temp_c").value in (5.5, 4.3)
    hp = store.latest("hashprice_usd_per_th_day")
    assert hp.source == "computed"
    assert hp.value == pytest.approx(hashprice_usd_per_th_day(31251101365711.12, 43753, 6.25, 0.1311748254))
    agents = {req.headers.get("User-Agent") for req, _ in httpserver.log}
    assert len(agents) == 1 and agents.pop().startswith("hashpivot/")


def test_server_error_falls_back_to_the_next_source_and_quarantines(httpserver, store):
    httpserver.expect_request("/api/v1/prices").respond_with_data("upstream broke", status=500)
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"), retries=1)
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.source == "coinbase" and result.fallback
    assert result.failures == [("mempool", f"HTTP 500 after 1 retries from {httpserver.url_for('/api/v1/prices')}")]
    q = store.quarantined()
    assert list(q["source"]) == ["mempool"] and "HTTP 500" in q["reason"][0]
    assert sum(1 for req, _ in httpserver.log if req.path == "/api/v1/prices") == 2  # first try + one retry


def test_429_with_retry_after_is_honoured_then_succeeds(httpserver, store):
    httpserver.expect_oneshot_request("/v2/prices/BTC-USD/spot").respond_with_response(
        Response(fixture_bytes("coingecko_429_rate_limit.json"), status=429, headers={"Retry-After": "1"}))
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"), "feeds.sources.mempool.enabled=false", retries=2)
    t0 = time.monotonic()
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.source == "coinbase" and not result.failures
    assert time.monotonic() - t0 >= 1.0


@pytest.fixture
def threaded_server():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)  # a slow handler must not block the fallback's request
    server.start()
    yield server
    server.clear()
    server.stop()


def test_timeout_is_a_clear_failure(threaded_server, store):
    httpserver = threaded_server
    def slow(_request):
        time.sleep(1.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/api/v1/prices").respond_with_handler(slow)
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"), retries=0, read_timeout_s=0.3)
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.failures[0][0] == "mempool" and "timed out after 0.3 s" in result.failures[0][1]
    assert result.source == "coinbase"


def test_no_retry_starts_once_the_pass_budget_is_spent(tarpit):
    """A silent source with 3 retries of 1 s reads (and 1-2-4 s backoffs) would hold one request ~10 s; with a
    1.5 s pass budget the retries stop at the budget, so the request ends within a read timeout of it."""
    settings = HttpSettings(connect_timeout_s=1.0, read_timeout_s=1.0, retries=3, backoff_s=1.0, budget_s=1.5)
    with HttpClient(settings) as client:
        t0 = time.monotonic()
        with pytest.raises(FeedError, match="timed out|gave up"):
            client.get("silent", f"{tarpit}/api")
        took = time.monotonic() - t0
        assert took < 2.8, f"one request took {took:.1f} s past a 1.5 s budget"
        with pytest.raises(FeedError, match=r"pass budget of 1\.5 s \(feeds.pass_budget_s\) is spent"):
            client.get("silent", f"{tarpit}/api")


def test_connection_refused(store):
    cfg, _ = loopback_config("http://127.0.0.1:9", "feeds.sources.coinbase.enabled=false", "feeds.sources.kraken.enabled=false",
                             "feeds.sources.coingecko.enabled=false", retries=0)
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert not result.ok and "cannot connect" in result.failures[0][1]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "HTML instead of JSON"),
        (b'{"time": 1703252411, "USD": NaN}', "application/json", "not a finite number"),
        (b'{"time": 1703252411, "USD": 7}', "application/json", "outside the plausible range"),
        (b"", "application/json", "not valid JSON"),
    ],
)
def test_garbage_from_the_primary_is_rejected_and_the_fallback_used(httpserver, store, body, content_type, reason):
    httpserver.expect_request("/api/v1/prices").respond_with_data(body, content_type=content_type)
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.source == "coinbase"
    assert reason in result.failures[0][1]
    assert reason in store.quarantined()["reason"][0]


def test_empty_offer_list_falls_back_to_akash(httpserver, store):
    httpserver.expect_request("/api/v0/bundles/", method="POST").respond_with_json({"offers": []})
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    result = by_group(collect(cfg, store, ["gpu"]))["gpu"]
    assert result.source == "akash" and result.failures == [("vast", "no rows in the payload")]
    body = json.loads(next(req for req, _ in httpserver.log if req.path == "/api/v0/bundles/").get_data())
    assert "H100 SXM" in body["gpu_name"]["in"] and body["rentable"] == {"eq": True}


def test_bad_data_never_overwrites_good_data(httpserver, store):
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    collect(cfg, store, ["btc"])
    good = store.latest("btc_usd")
    httpserver.clear()
    for path in ("/api/v1/prices", "/v2/prices/BTC-USD/spot", "/0/public/Ticker", "/api/v3/simple/price"):
        httpserver.expect_request(path).respond_with_data(b'{"time": 1703252411, "USD": 5, "data": {"amount": "5", "base": "BTC", "currency": "USD"}}',
                                                          content_type="application/json")
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert not result.ok and len(result.failures) == 4
    assert store.latest("btc_usd") == good
    assert len(store.history("btc_usd")) == 1


def test_jump_filter_against_the_last_good_value(httpserver, store):
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"), "feeds.sources.mempool.enabled=false")
    collect(cfg, store, ["btc"])  # coinbase 83,894
    httpserver.clear()
    httpserver.expect_request("/v2/prices/BTC-USD/spot").respond_with_json({"data": {"amount": "41000", "base": "BTC", "currency": "USD"}})
    httpserver.expect_request("/0/public/Ticker").respond_with_data(fixture_bytes("0_public_Ticker_pair-XBTUSD.20260925.json"), content_type="application/json")
    result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.source == "kraken" and "jumps 51% from the last good 83894" in result.failures[0][1]


def test_ercot_list_then_zip_download(httpserver, store):
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    result = by_group(collect(cfg, store, ["power_rt"]))["power_rt"]
    assert result.ok and result.rows == 8
    downloads = [req for req, _ in httpserver.log if req.path == "/misdownload/servlets/mirDownload"]
    assert downloads[0].args["doclookupId"] == "1024887614"  # the newest CSV, not the XML twin nor the older CSV


def test_status_reports_age_source_and_staleness(httpserver, store):
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"))
    collect(cfg, store, ["btc", "power_rt"])
    rows = {s.series: s for s in status(cfg, store)}
    assert rows["btc_usd"].source == "mempool" and rows["btc_usd"].required
    assert rows["power_rt_usd_per_mwh.HB_WEST"].fresh and rows["power_rt_usd_per_mwh.HB_WEST"].source == "ercot_mis"
    assert rows["gpu_rate_usd_per_gpu_hour.H100"].value is None and not rows["gpu_rate_usd_per_gpu_hour.H100"].fresh


def test_api_key_is_sent_but_never_logged(httpserver, store, monkeypatch, caplog):
    monkeypatch.setenv("COINGECKO_DEMO_API_KEY", "secret-demo-key-123")
    serve_all(httpserver)
    cfg, _ = loopback_config(httpserver.url_for("/"), "feeds.sources.mempool.enabled=false", "feeds.sources.coinbase.enabled=false",
                             "feeds.sources.kraken.enabled=false")
    with caplog.at_level(logging.DEBUG):
        result = by_group(collect(cfg, store, ["btc"]))["btc"]
    assert result.source == "coingecko"
    request = next(req for req, _ in httpserver.log if req.path == "/api/v3/simple/price")
    assert request.headers["x-cg-demo-api-key"] == "secret-demo-key-123"
    assert "secret-demo-key-123" not in caplog.text


def test_a_keyed_request_is_never_forwarded_on_a_redirect(httpserver, store, monkeypatch):
    """CoinGecko answers 302 to another origin (a second loopback server): the request carrying the API key
    is not followed, the failure says why, and the other origin never sees the key."""
    from pytest_httpserver import HTTPServer

    monkeypatch.setenv("COINGECKO_DEMO_API_KEY", "secret-demo-key-123")
    other = HTTPServer(threaded=True)
    other.start()
    try:
        other.expect_request("/api/v3/simple/price").respond_with_data(fixture_bytes("api_v3_simple_price_multi.20260925.json"),
                                                                       content_type="application/json")
        httpserver.expect_request("/api/v3/simple/price").respond_with_data(
            "", status=302, headers={"Location": other.url_for("/api/v3/simple/price")})
        cfg, _ = loopback_config(httpserver.url_for("/"), *[f"feeds.sources.{s}.enabled=false" for s in ("mempool", "coinbase", "kraken")],
                                 retries=0)
        (result,) = collect(cfg, store, ["btc"])
        assert not result.ok and "redirect refused: HTTP 302" in result.failures[0][1]
        assert not any("x-cg-demo-api-key" in {k.lower() for k in req.headers.keys()} for req, _ in other.log)
    finally:
        other.stop()
