"""Every collector against every fault on a loopback server: a specific logged reason, the store's good rows
unchanged, and the fallback source used where one is configured."""

from __future__ import annotations

import json
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from hashpivot.feeds.collect import collect
from hashpivot.feeds.store import Store
from tests.feeds_support import (
    fixture_bytes,
    fresh_mempool_prices,
    loopback_config,
    serve_all,
)

ALL = ("mempool", "coinbase", "kraken", "coingecko", "ercot_mis", "nyiso_mis", "open_meteo", "vast", "akash")

# collector -> (group, path whose response is broken, query string, a valid body to corrupt)
COLLECTORS = {
    "mempool-price": ("btc", "mempool", "/api/v1/prices", None),
    "coinbase": ("btc", "coinbase", "/v2/prices/BTC-USD/spot", None),
    "kraken": ("btc", "kraken", "/0/public/Ticker", None),
    "coingecko": ("btc", "coingecko", "/api/v3/simple/price", None),
    "mempool-network": ("network", "mempool", "/api/v1/mining/hashrate/3d", None),
    "ercot-rt": ("power_rt", "ercot_mis", "/misapp/servlets/IceDocListJsonWS", "reportTypeId=12301"),
    "ercot-load": ("load", "ercot_mis", "/misapp/servlets/IceDocListJsonWS", "reportTypeId=13101"),
    "ercot-load-rt": ("load_rt", "ercot_mis", "/misapp/servlets/IceDocListJsonWS", "reportTypeId=12340"),
    "ercot-load-forecast": ("load_forecast", "ercot_mis", "/misapp/servlets/IceDocListJsonWS", "reportTypeId=12311"),
    "open-meteo": ("weather", "open_meteo", "/v1/forecast", None),
    "vast": ("gpu", "vast", "/api/v0/bundles/", None),
    "akash": ("gpu", "akash", "/v1/gpu-prices", None),
}

NUMBERS = {  # a body whose number is NaN / null / a string, per collector
    "mempool-price": (b'{"time": 1764000000, "USD": NaN}', "not a finite number"),
    "coinbase": (b'{"data": {"amount": null, "base": "BTC", "currency": "USD"}}', "not a number"),
    "kraken": (b'{"error": [], "result": {"XXBTZUSD": {"c": ["eighty thousand", "1"]}}}', "not a number"),
    "coingecko": (b'{"bitcoin": {"usd": "NaN"}}', "not a finite number"),
    "mempool-network": (b'{"currentDifficulty": null, "currentHashrate": 1e20}', "not a number"),
    "ercot-rt": (b'{"ListDocsByRptTypeRes": {"DocumentList": [{"Document": {"FriendlyName": "x_csv", "DocID": "1", "PublishDate": "not a date"}}]}}', "bad PublishDate"),
    **{name: (b'{"ListDocsByRptTypeRes": {"DocumentList": [{"Document": {"FriendlyName": "x_csv", "DocID": "1", "PublishDate": "not a date"}}]}}', "bad PublishDate")
       for name in ("ercot-load", "ercot-load-rt", "ercot-load-forecast")},
    "open-meteo": (b'{"hourly_units": {"temperature_2m": "\xc2\xb0C"}, "hourly": {"time": ["2026-01-01T00:00"], "temperature_2m": [null]}}', "not a number"),
    "vast": (b'{"offers": [{"gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": "cheap"}]}', "not a number"),
    "akash": (b'{"models": [{"model": "h100", "price": {"med": NaN}}]}', "not a finite number"),
}
EMPTY = {
    "mempool-price": b"{}", "coinbase": b"{}", "kraken": b'{"error": [], "result": {}}', "coingecko": b"{}",
    "mempool-network": b"{}", "ercot-rt": b'{"ListDocsByRptTypeRes": {"DocumentList": []}}',
    **{name: b'{"ListDocsByRptTypeRes": {"DocumentList": []}}' for name in ("ercot-load", "ercot-load-rt", "ercot-load-forecast")},
    "open-meteo": b'{"hourly": {"time": [], "temperature_2m": []}}', "vast": b'{"offers": []}', "akash": b'{"models": []}',
}


@pytest.fixture
def server():
    s = HTTPServer(threaded=True)
    s.start()
    yield s
    s.clear()
    s.stop()


def only(source: str) -> list[str]:
    return [f"feeds.sources.{s}.enabled=false" for s in ALL if s != source]


def snapshot(store: Store):
    return store.conn.execute("SELECT * FROM observations ORDER BY 1, 2, 3").fetchall()


def run_fault(server, tmp_path, name, respond, retries=0, extra=(), also=None):
    group, source, path, query = COLLECTORS[name]
    cfg, _ = loopback_config(server.url_for("/"), *only(source), *extra, retries=retries, read_timeout_s=0.5)
    store = Store(tmp_path / "s.sqlite")
    serve_all(server)
    assert collect(cfg, store, [group])[0].ok  # good data first
    before = snapshot(store)
    server.clear()
    kwargs = {"query_string": query} if query else {}
    respond(server.expect_request(path, **kwargs))
    if also is not None:
        also(server)
    serve_all(server)  # other paths of the same source stay healthy
    (result,) = collect(cfg, store, [group])
    assert not result.ok
    reason = result.failures[0][1]
    assert snapshot(store) == before, "good rows changed"
    assert reason in store.quarantined()["reason"].tolist()
    store.close()
    return reason


@pytest.mark.parametrize("name", COLLECTORS)
def test_500(server, tmp_path, name):
    reason = run_fault(server, tmp_path, name, lambda r: r.respond_with_data("boom", status=500), retries=1)
    assert "HTTP 500 after 1 retries" in reason


@pytest.mark.parametrize("name", COLLECTORS)
def test_429_retry_after_honoured_then_reported(server, tmp_path, name):
    t0 = time.monotonic()
    reason = run_fault(server, tmp_path, name, lambda r: r.respond_with_response(Response("slow down", status=429, headers={"Retry-After": "1"})), retries=1)
    assert "HTTP 429" in reason and time.monotonic() - t0 >= 1.0


@pytest.mark.parametrize("name", COLLECTORS)
def test_timeout(server, tmp_path, name):
    def slow(_):
        time.sleep(1.2)
        return Response("{}", content_type="application/json")

    assert "timed out after 0.5 s" in run_fault(server, tmp_path, name, lambda r: r.respond_with_handler(slow))


@pytest.mark.parametrize("name", COLLECTORS)
def test_html_error_page_with_status_200(server, tmp_path, name):
    reason = run_fault(server, tmp_path, name, lambda r: r.respond_with_data("<html><body>Maintenance</body></html>", content_type="text/html"))
    assert "HTML instead of JSON" in reason


@pytest.mark.parametrize("name", COLLECTORS)
def test_truncated_json(server, tmp_path, name):
    assert "not valid JSON" in run_fault(server, tmp_path, name, lambda r: r.respond_with_data(b'{"data": {"amount": "83', content_type="application/json"))


@pytest.mark.parametrize("name", COLLECTORS)
def test_empty(server, tmp_path, name):
    reason = run_fault(server, tmp_path, name, lambda r: r.respond_with_data(EMPTY[name], content_type="application/json"))
    assert any(s in reason for s in ("no rows", "expected", "empty", "no CSV document")), reason


@pytest.mark.parametrize("name", COLLECTORS)
def test_nan_null_or_string_where_a_number_belongs(server, tmp_path, name):
    body, expected = NUMBERS[name]
    reason = run_fault(server, tmp_path, name, lambda r: r.respond_with_data(body, content_type="application/json"))
    assert expected in reason


def test_connection_refused(tmp_path):
    cfg, _ = loopback_config("http://127.0.0.1:9", retries=0)
    with Store(tmp_path / "s.sqlite") as store:
        results = collect(cfg, store, ["btc", "network", "power_rt", "gpu"])
        assert all(not r.ok for r in results)
        assert all("cannot connect" in why for r in results for _, why in r.failures)


def test_price_100x_the_last_good_value(server, tmp_path):
    body = json.loads(fresh_mempool_prices())
    body["USD"] *= 100
    reason = run_fault(server, tmp_path, "mempool-price", lambda r: r.respond_with_json(body))
    assert "jumps 9900% from the last good 43753" in reason


def test_gpu_rate_100x(server, tmp_path):
    body = json.loads(fixture_bytes("akash_gpu_prices.documented-format.json"))
    body["models"][0]["price"]["med"] *= 100
    assert "outside the plausible range" in run_fault(server, tmp_path, "akash", lambda r: r.respond_with_json(body))


def test_gpu_rate_jump_within_range(server, tmp_path):
    body = json.loads(fixture_bytes("akash_gpu_prices.documented-format.json"))
    body["models"][0]["price"]["med"] *= 4
    assert "jumps 300% from the last good 2.867" in run_fault(server, tmp_path, "akash", lambda r: r.respond_with_json(body))


def test_power_price_100x_is_rejected_when_a_jump_limit_is_configured(server, tmp_path):
    """ERCOT real-time prices do jump 100x in scarcity (20 -> 2,000 USD/MWh), so power has no jump filter by
    default; a site that wants one sets feeds.jump_limits.power_rt_usd_per_mwh."""
    import io
    import zipfile

    from tests.feeds_support import fresh_ercot_rt_zip

    text = zipfile.ZipFile(io.BytesIO(fresh_ercot_rt_zip())).read("SPPHLZNP6905.csv").decode().replace(",14.96,", ",1496.00,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("SPPHLZNP6905.csv", text)
    reason = run_fault(
        server, tmp_path, "ercot-rt",
        lambda r: r.respond_with_data(fixture_bytes("ercot_mis_doclist_12301.documented-format.json"), content_type="application/json"),
        extra=("feeds.jump_limits.power_rt_usd_per_mwh=10",),
        also=lambda s: s.expect_request("/misdownload/servlets/mirDownload").respond_with_data(buffer.getvalue(), content_type="application/zip"),
    )
    assert "jumps 9900% from the last good 14.96" in reason


@pytest.mark.parametrize(("shift", "expected"), [(86_400 * 800, "days old"), (-86_400 * 2, "in the future")])
def test_timestamps_years_old_or_in_the_future(server, tmp_path, shift, expected):
    body = json.loads(fresh_mempool_prices())
    body["time"] -= shift
    assert expected in run_fault(server, tmp_path, "mempool-price", lambda r: r.respond_with_json(body))


def test_fallback_is_used_after_a_fault(server, tmp_path):
    server.expect_request("/api/v1/prices").respond_with_data("<html>busy</html>", content_type="text/html")
    serve_all(server)
    cfg, _ = loopback_config(server.url_for("/"), retries=0)
    with Store(tmp_path / "s.sqlite") as store:
        (result,) = collect(cfg, store, ["btc"])
    assert result.source == "coinbase" and result.fallback and "HTML" in result.failures[0][1]


def fresh_nyiso_csv(shift_minutes: int = 0) -> bytes:
    """The NYISO fixture's real rows moved to the three 5-minute intervals ending now (Eastern time)."""
    import pandas as pd

    end = pd.Timestamp.now(tz="America/New_York").floor("5min") + pd.Timedelta(minutes=shift_minutes)
    lines = fixture_bytes("nyiso_realtime_zone_20240805.documented-format.csv").decode().splitlines()
    out = [lines[0]]
    for k, row in enumerate(lines[1:]):
        stamp = end - pd.Timedelta(minutes=5 * (2 - k // 2))
        out.append(f'"{stamp:%m/%d/%Y %H:%M:%S}"' + row[row.index(","):])
    return ("\n".join(out) + "\n").encode()


def nyiso_path() -> str:
    import pandas as pd

    return f"/public/csv/realtime/{pd.Timestamp.now(tz='America/New_York'):%Y%m%d}realtime_zone.csv"


@pytest.mark.parametrize(
    ("respond", "reason"),
    [
        (lambda r: r.respond_with_data("boom", status=500), "HTTP 500"),
        (lambda r: r.respond_with_data("<html><body>down for maintenance</body></html>", content_type="text/html"), "HTML instead of CSV"),
        (lambda r: r.respond_with_data(b'"Time Stamp","Name","PTID","LBMP ($/MWHr)"\n', content_type="text/csv"), "zone N.Y.C. not in the file"),
        (lambda r: r.respond_with_data(fresh_nyiso_csv().replace(b",27.56,", b",NaN,"), content_type="text/csv"), "not a finite number"),
        (lambda r: r.respond_with_data(fresh_nyiso_csv(-60 * 24 * 800), content_type="text/csv"), "days old"),
        (lambda r: r.respond_with_data(fresh_nyiso_csv(60 * 24 * 2), content_type="text/csv"), "in the future"),
        (lambda r: r.respond_with_data(fresh_nyiso_csv() + fresh_nyiso_csv().split(b"\n", 1)[1], content_type="text/csv"),
         "duplicate interval"),
        # the body cut inside a number: `…,"N.Y.C.",61761,2` instead of `…,23.79`: it still parses
        (lambda r: r.respond_with_data(fresh_nyiso_csv()[: fresh_nyiso_csv().rindex(b",23.79,") + 2], content_type="text/csv"),
         "cut off: its last line has no line end"),
        # a whole last line missing (every zone should have every interval)
        (lambda r: r.respond_with_data(fresh_nyiso_csv().rsplit(b"\n", 2)[0] + b"\n", content_type="text/csv"),
         "zones have 2..3 rows (WEST short): the file is incomplete"),
    ],
)
def test_nyiso_faults(server, tmp_path, respond, reason):
    cfg, _ = loopback_config(server.url_for("/"), *only("nyiso_mis"), "feeds.nyiso_zones=['N.Y.C.']", retries=0)
    with Store(tmp_path / "s.sqlite") as store:
        server.expect_request(nyiso_path()).respond_with_data(fresh_nyiso_csv(), content_type="text/csv")
        (good,) = collect(cfg, store, ["power_rt_nyiso"])
        assert good.ok and good.rows == 3
        before = snapshot(store)
        server.clear()
        respond(server.expect_request(nyiso_path()))
        (result,) = collect(cfg, store, ["power_rt_nyiso"])
        assert not result.ok and reason in result.failures[0][1], result.failures
        assert snapshot(store) == before


def _stale_btc(store: Store, hours_old: float, value: float = 43_753.0) -> None:
    from datetime import datetime, timedelta, timezone

    from hashpivot.feeds.base import Observation

    when = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=hours_old)
    store.upsert([Observation("btc_usd", when, value, "USD/BTC", "coinbase", when)])


@pytest.mark.parametrize("hours_old, enabled, accepted, source", [
    (30, ("coinbase", "kraken"), True, "coinbase"),  # two sources agree within 2 %: re-anchored
    (30, ("coinbase",), True, "coinbase"),  # the group's only source: re-anchored, logged
    (1, ("coinbase", "kraken"), False, None),  # the last good value is still fresh: a 92 % jump is refused
    (30, ("mempool", "coinbase"), False, None),  # mempool's 43,753 and Coinbase's 83,894 disagree: refused
])
def test_the_jump_filter_compares_only_with_a_fresh_value(server, tmp_path, caplog, hours_old, enabled, accepted, source):
    """A BTC price last stored at 43,753 while every source now says ~84,000 (a 92 % jump, limit 25 %): within
    the 2 h staleness limit the jump is refused; past it, the series re-anchors when two sources agree."""
    import logging

    cfg, _ = loopback_config(server.url_for("/"), *[f"feeds.sources.{s}.enabled=false" for s in ALL if s not in enabled],
                             retries=0)
    serve_all(server)
    with Store(tmp_path / "s.sqlite") as store:
        _stale_btc(store, hours_old)
        with caplog.at_level(logging.WARNING):
            (result,) = collect(cfg, store, ["btc"])
        assert result.ok is accepted and result.source == source
        latest = store.latest("btc_usd").value
    if accepted:
        assert latest == pytest.approx(83_894, rel=0.01) and "feed re-anchored group=btc series=btc_usd" in caplog.text
    else:
        assert latest == 43_753.0


def test_an_offer_listed_twice_is_counted_once():
    from datetime import datetime, timezone

    from hashpivot.feeds.base import Payload
    from hashpivot.feeds.gpu import VastOffers

    offers = [{"id": 1, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 2.0},
              {"id": 2, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 3.0},
              {"id": 3, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 4.0}]
    now = datetime.now(timezone.utc)

    def parse(items):
        body = json.dumps({"offers": items}).encode()
        rows = VastOffers().parse([Payload("vast", "u", 200, "application/json", body, now)])
        return {r.series: r.value for r in rows}

    once, twice = parse(offers), parse(offers + offers[:1] * 5)
    assert twice == once and once["gpu_offers.H100"] == 3 and once["gpu_rate_p25_usd_per_gpu_hour.H100"] == 2.5

