"""Helpers for feed tests: fixture files, payloads for pure parsing, and a config pointing at a loopback server."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from hashpivot.feeds.base import Payload
from hashpivot.models.config import load_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
FETCHED = datetime(2024, 8, 5, 14, 7, 31, tzinfo=timezone.utc)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def payload(body: bytes | str, source: str = "test", content_type: str = "application/json", fetched=FETCHED) -> Payload:
    if isinstance(body, str):
        body = body.encode()
    return Payload(source, "http://test", 200, content_type, body, fetched)


def zipped(name: str) -> bytes:
    """The fixture CSV zipped as ERCOT's MIS download serves it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name.replace(".documented-format", ""), fixture_bytes(name))
    return buffer.getvalue()


def loopback_config(base_url: str, *extra: str, retries: int = 1, read_timeout_s: float = 2.0):
    """The example site with every source pointed at the loopback server and fast retries."""
    base = base_url.rstrip("/")
    sets = [f"feeds.sources.{s}.base_url='{base}'" for s in
            ("mempool", "coinbase", "kraken", "coingecko", "ercot_mis", "nyiso_mis", "open_meteo", "vast", "akash")]
    sets += [f"feeds.retries={retries}", "feeds.backoff_s=0", f"feeds.read_timeout_s={read_timeout_s}",
             "feeds.connect_timeout_s=2", "feeds.max_retry_after_s=2"]
    return load_config(EXAMPLE, sets + list(extra)), sets + list(extra)


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name, text)
    return buffer.getvalue()


def fresh_ercot_rt_zip(now: datetime | None = None) -> bytes:
    """The RT SPP fixture moved to the last eight 15-minute intervals before `now` (Central time), prices
    unchanged and in order (HB_WEST ends at 14.96). Live validation refuses years-old intervals, so the
    happy path serves recorded values under current timestamps."""
    import pandas as pd

    now = pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("America/Chicago")
    last = now.floor("15min") - pd.Timedelta(minutes=15)
    lines = fixture_bytes("ercot_spp_rt_np6-905-cd_20240805_0915.documented-format.csv").decode().splitlines()
    header, body = lines[0], lines[1:]
    out = [header]
    for k in range(8):
        start = last - pd.Timedelta(minutes=15 * (7 - k))
        hour_ending, interval = start.hour + 1, start.minute // 15 + 1
        # ERCOT marks the repeated (standard-time) hour of a fall-back day with DSTFlag=Y
        repeated = start.dst() == pd.Timedelta(0) and (start - pd.Timedelta(hours=1)).dst() != pd.Timedelta(0)
        flag = "Y" if repeated else "N"
        for row in body[2 * k: 2 * k + 2]:
            cols = row.split(",")
            cols[0], cols[1], cols[2], cols[6] = f"{start:%m/%d/%Y}", str(hour_ending), str(interval), flag
            out.append(",".join(cols))
    return _zip("SPPHLZNP6905.csv", "\n".join(out) + "\n")


def fresh_ercot_da_zip(now: datetime | None = None) -> bytes:
    """The DAM fixture moved to tomorrow's operating day (Central time)."""
    import pandas as pd

    day = (pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("America/Chicago") + pd.Timedelta(days=1)).strftime("%m/%d/%Y")
    text = fixture_bytes("ercot_dam_spp_np4-190-cd_20240806.documented-format.csv").decode().replace("08/06/2024", day)
    return _zip("DAMSPNP4190.csv", text)


def _operating_day(rows: list[str], day) -> list[str]:
    """24 hour-ending rows (date first, hour second, DSTFlag last) relabelled for the Central operating day
    `day`, with its 23 or 25 hours when the clock changes that day (no HE 03:00; HE 02:00 twice, DSTFlag Y)."""
    import pandas as pd

    midnight = pd.Timestamp(day).tz_localize("America/Chicago")
    hours = int(((pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize("America/Chicago") - midnight) / pd.Timedelta(hours=1))
    out = []
    for row in rows:
        cols = row.split(",")
        cols[0] = f"{pd.Timestamp(day):%m/%d/%Y}"
        if hours == 23 and cols[1] == "03:00":
            continue
        out.append(",".join(cols))
        if hours == 25 and cols[1] == "02:00":
            out.append(",".join(cols[:-1] + ["Y"]))
    return out


def fresh_ercot_load_zip(now: datetime | None = None) -> bytes:
    """The NP6-345-CD fixture moved to yesterday's operating day (Central time), as published this morning."""
    import pandas as pd

    day = (pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("America/Chicago") - pd.Timedelta(days=1)).date()
    lines = fixture_bytes("ercot_act_sys_load_np6-345-cd_20240819.documented-format.csv").decode().splitlines()
    return _zip("cdr.00013101.ACTUALSYSLOADWZNP6345.csv", "\n".join([lines[0], *_operating_day(lines[1:], day)]) + "\n")


def fresh_ercot_demand_zip(now: datetime | None = None) -> bytes:
    """The NP6-235-CD fixture's four values moved to the last hour that has ended (Central time)."""
    import pandas as pd

    end = pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("America/Chicago").floor("h")
    lines = fixture_bytes("ercot_sys_wide_demand_np6-235-cd_20240820_he17.documented-format.csv").decode().splitlines()
    out = [lines[0]]
    for k, row in enumerate(lines[1:]):
        t = end - pd.Timedelta(minutes=15 * (3 - k))
        cols = row.split(",")
        cols[0], cols[1] = f"{t:%m/%d/%Y}", f"{t:%H:%M}"
        out.append(",".join(cols))
    return _zip("cdr.00012340.SYSTEMWIDEDEMANDNP6235.csv", "\n".join(out) + "\n")


def fresh_ercot_forecast_zip(now: datetime | None = None) -> bytes:
    """The NP3-560-CD fixture's eight operating days moved to today and the next seven (Central time)."""
    import pandas as pd

    today = pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("America/Chicago").date()
    lines = fixture_bytes("ercot_load_fcst_np3-560-cd_20240819.documented-format.csv").decode().splitlines()
    out = [lines[0]]
    for k in range(8):
        out += _operating_day(lines[1 + 24 * k: 25 + 24 * k], today + pd.Timedelta(days=k))
    return _zip("cdr.00012311.SEVENDAYLOADFORECASTNP3560.csv", "\n".join(out) + "\n")


def fresh_mempool_prices(now: datetime | None = None) -> bytes:
    import json

    body = json.loads(fixture_bytes("v1_prices.SHAPE_ONLY.json"))
    body["time"] = int((now or datetime.now(timezone.utc)).timestamp())
    return json.dumps(body).encode()


def fresh_open_meteo(now: datetime | None = None) -> bytes:
    import json

    body = json.loads(fixture_bytes("open_meteo_forecast.documented-format.json"))
    hour = (now or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    body["hourly"]["time"] = [f"{hour:%Y-%m-%dT%H:%M}", f"{hour.replace(hour=(hour.hour + 1) % 24):%Y-%m-%dT%H:%M}"]
    if hour.hour == 23:
        body["hourly"]["time"] = body["hourly"]["time"][:1]
        body["hourly"]["temperature_2m"] = body["hourly"]["temperature_2m"][:1]
    return json.dumps(body, ensure_ascii=False).encode()


def good_responses() -> list[tuple[str, dict, bytes, str]]:
    """(path, request matchers, body, content type) of the happy path for every source: recorded payloads, with
    timestamps moved to now where they carry any."""
    j = "application/json"
    doclist = "/misapp/servlets/IceDocListJsonWS"
    download = "/misdownload/servlets/mirDownload"
    return [
        ("/api/v1/prices", {}, fresh_mempool_prices(), j),
        ("/v2/prices/BTC-USD/spot", {}, fixture_bytes("v2_prices_BTC-USD_spot.20260925.json"), j),
        ("/0/public/Ticker", {}, fixture_bytes("0_public_Ticker_pair-XBTUSD.20260925.json"), j),
        ("/api/v3/simple/price", {}, fixture_bytes("api_v3_simple_price_multi.20260925.json"), j),
        ("/api/v1/mining/hashrate/3d", {}, fixture_bytes("v1_mining_hashrate_3d.DOCS_EXAMPLE.json"), j),
        ("/api/blocks/tip/height", {}, fixture_bytes("blocks_tip_height.DOCS_EXAMPLE.txt"), "text/plain"),
        ("/api/v1/mining/reward-stats/144", {}, fixture_bytes("v1_mining_reward-stats_100.DOCS_EXAMPLE.json"), j),
        (doclist, {"query_string": "reportTypeId=12301"}, fixture_bytes("ercot_mis_doclist_12301.documented-format.json"), j),
        (doclist, {"query_string": "reportTypeId=12331"}, fixture_bytes("ercot_mis_doclist_12331.documented-format.json"), j),
        (download, {"query_string": "doclookupId=1024887614"}, fresh_ercot_rt_zip(), "application/zip"),
        (download, {"query_string": "doclookupId=1024901377"}, fresh_ercot_da_zip(), "application/zip"),
        (doclist, {"query_string": "reportTypeId=13101"}, fixture_bytes("ercot_mis_doclist_13101.documented-format.json"), j),
        (doclist, {"query_string": "reportTypeId=12340"}, fixture_bytes("ercot_mis_doclist_12340.documented-format.json"), j),
        (doclist, {"query_string": "reportTypeId=12311"}, fixture_bytes("ercot_mis_doclist_12311.documented-format.json"), j),
        (download, {"query_string": "doclookupId=1026000102"}, fresh_ercot_load_zip(), "application/zip"),
        (download, {"query_string": "doclookupId=1026100202"}, fresh_ercot_demand_zip(), "application/zip"),
        (download, {"query_string": "doclookupId=1025950302"}, fresh_ercot_forecast_zip(), "application/zip"),
        ("/v1/forecast", {}, fresh_open_meteo(), j),
        ("/api/v0/bundles/", {"method": "POST"}, fixture_bytes("vast_bundles_offers.documented-format.json"), j),
        ("/v1/gpu-prices", {}, fixture_bytes("akash_gpu_prices.documented-format.json"), j),
    ]


def serve_all(server) -> None:
    """The happy path for every source (`good_responses`)."""
    for path, match, body, content_type in good_responses():
        server.expect_request(path, **match).respond_with_data(body, content_type=content_type)
