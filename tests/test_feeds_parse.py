"""Parsing recorded real payloads (and documented-format fixtures) into observations: pure, no network."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hashpivot.feeds.base import FeedError
from hashpivot.feeds.btc import (
    CoinbaseSpot,
    CoinGeckoSimple,
    KrakenTicker,
    MempoolPrice,
)
from hashpivot.feeds.ercot import ErcotDayAhead, ErcotRealTime
from hashpivot.feeds.gpu import AkashGpuPrices, VastOffers, catalogue_key
from hashpivot.feeds.network import MempoolNetwork
from hashpivot.feeds.nyiso import NyisoRealTime
from hashpivot.feeds.validate import Rejected, validate
from hashpivot.feeds.weather import OpenMeteo
from tests.feeds_support import FETCHED, fixture_bytes, payload, zipped


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_coinbase_real_recording():
    (row,) = CoinbaseSpot().parse([payload(fixture_bytes("v2_prices_BTC-USD_spot.20260925.json"))])
    assert (row.series, row.value, row.unit, row.source) == ("btc_usd", 83894.035, "USD/BTC", "coinbase")
    assert row.interval_start_utc == utc(2024, 8, 5, 14, 7)
    validate([row])


def test_kraken_real_recording_reads_the_renamed_pair():
    (row,) = KrakenTicker().parse([payload(fixture_bytes("0_public_Ticker_pair-XBTUSD.20260925.json"))])
    assert row.value == 84036.0


def test_kraken_error_sent_with_http_200_is_rejected():
    with pytest.raises(FeedError, match="EGeneral:Too many requests"):
        KrakenTicker().parse([payload('{"error":["EGeneral:Too many requests"],"result":{}}')])


def test_coingecko_real_recording_and_its_429_body_sent_as_200():
    (row,) = CoinGeckoSimple().parse([payload(fixture_bytes("api_v3_simple_price_multi.20260925.json"))])
    assert row.value == 83822.0
    with pytest.raises(FeedError, match="API error 429"):
        CoinGeckoSimple().parse([payload(fixture_bytes("coingecko_429_rate_limit.json"))])


def test_mempool_prices_uses_the_quote_time():
    (row,) = MempoolPrice().parse([payload(fixture_bytes("v1_prices.SHAPE_ONLY.json"))])
    assert row.value == 43753 and row.interval_start_utc == utc(2023, 12, 22, 13, 40)


def test_mempool_network_docs_examples():
    rows = MempoolNetwork().parse([
        payload(fixture_bytes("v1_mining_hashrate_3d.DOCS_EXAMPLE.json")),
        payload(fixture_bytes("blocks_tip_height.DOCS_EXAMPLE.txt"), content_type="text/plain"),
        payload(fixture_bytes("v1_mining_reward-stats_100.DOCS_EXAMPLE.json")),
    ])
    values = {r.series: r.value for r in rows}
    assert values["difficulty"] == pytest.approx(31251101365711.12)
    assert values["hashrate_th_s"] == pytest.approx(252033247.3552123)
    assert values["block_height"] == 698767 and values["subsidy_btc"] == 6.25
    assert values["fees_btc_per_block"] == pytest.approx(0.1311748254)  # 1,311,748,254 sat = 13.117 BTC over 100 blocks
    validate(rows)


def test_bad_tip_height_is_rejected():
    with pytest.raises(FeedError, match="expected an integer"):
        MempoolNetwork().parse([
            payload(fixture_bytes("v1_mining_hashrate_3d.DOCS_EXAMPLE.json")),
            payload("<html>503</html>", content_type="text/html"),
            payload(fixture_bytes("v1_mining_reward-stats_100.DOCS_EXAMPLE.json")),
        ])


def test_ercot_real_time_csv_to_utc_intervals():
    doc = payload(zipped("ercot_spp_rt_np6-905-cd_20240805_0915.documented-format.csv"), content_type="application/zip")
    rows = ErcotRealTime(options={"settlement_points": ["HB_WEST"]}).parse([doc])
    assert [r.series for r in rows] == ["power_rt_usd_per_mwh.HB_WEST"] * 8
    # hour ending 8 CDT, interval 1 = 07:00 CDT = 12:00 UTC
    assert rows[0].interval_start_utc == utc(2024, 8, 5, 12, 0) and rows[0].value == 22.62
    assert rows[-1].interval_start_utc == utc(2024, 8, 5, 13, 45) and rows[-1].value == 14.96
    validate(rows)


def test_ercot_dst_fall_back_repeated_hour_is_two_distinct_utc_hours():
    doc = payload(zipped("ercot_spp_rt_np6-905-cd_20241103_dst.documented-format.csv"), content_type="application/zip")
    rows = ErcotRealTime().parse([doc])
    assert [r.interval_start_utc for r in rows] == [utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7), utc(2024, 11, 3, 8)]
    validate(rows)


def test_ercot_day_ahead_hour_ending_to_utc():
    doc = payload(zipped("ercot_dam_spp_np4-190-cd_20240806.documented-format.csv"), content_type="application/zip")
    rows = ErcotDayAhead().parse([doc])
    assert len(rows) == 24
    assert rows[0].interval_start_utc == utc(2024, 8, 6, 5) and rows[0].value == 23.6  # HE01 CDT
    assert rows[19].value == 867.9 and rows[19].interval_start_utc == utc(2024, 8, 7, 0)


def test_ercot_missing_settlement_point_and_non_zip():
    doc = payload(zipped("ercot_dam_spp_np4-190-cd_20240806.documented-format.csv"))
    with pytest.raises(FeedError, match="settlement point HB_PAN not in the file"):
        ErcotDayAhead(options={"settlement_points": ["HB_PAN"]}).parse([doc])
    with pytest.raises(FeedError, match="not a zip"):
        ErcotDayAhead().parse([payload("<html>Service Unavailable</html>", content_type="text/html")])


def test_nyiso_time_stamp_is_the_interval_end():
    rows = NyisoRealTime(options={"zones": ["N.Y.C."]}).parse(
        [payload(fixture_bytes("nyiso_realtime_zone_20240805.documented-format.csv"), content_type="text/csv")])
    assert [r.interval_start_utc for r in rows] == [utc(2024, 8, 5, 4, 0), utc(2024, 8, 5, 4, 5), utc(2024, 8, 5, 4, 10)]
    assert rows[0].series == "power_rt_usd_per_mwh.N.Y.C." and rows[0].value == 27.56


def test_open_meteo_hourly_temperatures():
    rows = OpenMeteo(options={"latitude": 43, "longitude": 41}).parse([payload(fixture_bytes("open_meteo_forecast.documented-format.json"))])
    assert [(r.interval_start_utc, r.value) for r in rows] == [(utc(2021, 1, 1, 0), 5.5), (utc(2021, 1, 1, 1), 4.3)]


def test_vast_offers_median_and_p25_per_gpu():
    rows = VastOffers().parse([payload(fixture_bytes("vast_bundles_offers.documented-format.json"))])
    v = {r.series: r.value for r in rows}
    assert v["gpu_rate_usd_per_gpu_hour.H100"] == pytest.approx(2.867)  # median of 2.080, 2.867, 3.028
    assert v["gpu_offers.H100"] == 3
    assert v["gpu_rate_usd_per_gpu_hour.A100"] == pytest.approx((1.689 + 1.893) / 2)
    assert "gpu_rate_usd_per_gpu_hour.RTX 3090" not in v  # not a catalogue GPU
    assert all(r.interval_start_utc == utc(2024, 8, 5, 14) for r in rows)


def test_akash_prices_per_model():
    rows = AkashGpuPrices().parse([payload(fixture_bytes("akash_gpu_prices.documented-format.json"))])
    v = {r.series: r.value for r in rows}
    assert v["gpu_rate_usd_per_gpu_hour.H100"] == pytest.approx(2.867)
    assert "gpu_rate_usd_per_gpu_hour.T4" not in v


@pytest.mark.parametrize(("name", "key"), [("H100 SXM", "H100"), ("H100 PCIE", "H100"), ("A100 SXM4", "A100"), ("A40", "A40"),
                                            ("RTX 4090", "RTX 4090"), ("RTX A4000", None), ("h100", "H100")])
def test_market_gpu_names_map_to_catalogue(name, key):
    assert catalogue_key(name) == key


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixture_bytes("bybit_cloudfront_403_geoblock.20260925.txt"), "not valid JSON"),
        (b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "HTML instead of JSON"),
        (b'{"data":{"amount":"NaN","base":"BTC","currency":"USD"}}', "not a finite number"),
        (b'{"data":{"amount":"83,894.03","base":"BTC","currency":"USD"}}', "not a number"),
        (b'{"data":{"amount":"83894","base":"BTC","currency":"EUR"}}', "currency: USD"),
        (b"[]", "expected data"),
    ],
)
def test_garbage_is_rejected_with_a_reason(body, reason):
    with pytest.raises(FeedError, match=reason):
        CoinbaseSpot().parse([payload(body)])


def test_validation_rules():
    (row,) = CoinbaseSpot().parse([payload(b'{"data":{"amount":"12","base":"BTC","currency":"USD"}}')])
    with pytest.raises(Rejected, match="outside the plausible range 1000..1e\\+07"):
        validate([row])
    (row,) = CoinbaseSpot().parse([payload(b'{"data":{"amount":"90000","base":"BTC","currency":"USD"}}')])
    with pytest.raises(Rejected, match="jumps 50% from the last good 60000"):
        validate([row], {"btc_usd": 60_000.0})
    validate([row], {"btc_usd": 60_000.0}, {"btc_usd": None})  # filter switched off by config
    with pytest.raises(Rejected, match="duplicate interval"):
        validate([row, row])
    with pytest.raises(Rejected, match="no rows"):
        validate([])
    assert FETCHED.tzinfo is timezone.utc


def test_ercot_day_ahead_with_hours_missing_or_a_cut_csv_is_refused():
    from tests.feeds_support import fixture_bytes

    text = fixture_bytes("ercot_dam_spp_np4-190-cd_20240806.documented-format.csv").decode()
    lines = text.splitlines(keepends=True)
    name = "ercot_dam_spp_np4-190-cd_20240806.csv"
    short = payload(_zip_text(name, "".join(lines[:-3])), content_type="application/zip")  # three hours gone
    with pytest.raises(FeedError, match=r"HB_WEST has 21 hours on 2024-08-06 \(23 to 25 expected\)"):
        ErcotDayAhead().parse([short])
    cut = payload(_zip_text(name, text[: text.rindex(",") - 2]), content_type="application/zip")  # cut in a number
    with pytest.raises(FeedError, match="cut off: its last line has no line end"):
        ErcotDayAhead().parse([cut])


def _zip_text(name: str, text: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name, text)
    return buffer.getvalue()
