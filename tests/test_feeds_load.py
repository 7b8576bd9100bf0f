"""ERCOT load feeds (#13): the three MIS collectors on documented payloads and against a loopback server with
faults, the store's as-of view of load and forecast, and `feeds import` of the load and 4CP files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from hashpivot.feeds.base import FeedError, Observation
from hashpivot.feeds.collect import collect, status
from hashpivot.feeds.embedded import embedded_data_dir, read_four_cp, read_load
from hashpivot.feeds.ercot_load import ErcotActualLoad, ErcotLoadForecast, ErcotSystemDemand
from hashpivot.feeds.market_store import hourly_load, market_from_store
from hashpivot.feeds.registry import collectors_for
from hashpivot.feeds.store import Store
from hashpivot.models.config import load_config
from hashpivot.models.errors import DataError
from tests.feeds_support import (
    EXAMPLE,
    fixture_bytes,
    fresh_ercot_demand_zip,
    fresh_ercot_forecast_zip,
    fresh_ercot_load_zip,
    loopback_config,
    payload,
    serve_all,
    zipped,
)

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[1]
ACTUAL = "ercot_act_sys_load_np6-345-cd_20240819.documented-format.csv"
DEMAND = "ercot_sys_wide_demand_np6-235-cd_20240820_he17.documented-format.csv"
FORECAST = "ercot_load_fcst_np3-560-cd_20240819.documented-format.csv"
EMBEDDED_LOAD = read_load(embedded_data_dir() / "ercot_native_load_hourly.csv.gz")["system_load_mw"]


def parse(collector, name_or_text: str, csv_name: str = "x.csv"):
    if name_or_text.endswith(".csv"):
        body = zipped(name_or_text)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(csv_name, name_or_text)
        body = buffer.getvalue()
    return collector.parse([payload(body, content_type="application/zip")])


def text(name: str) -> str:
    return fixture_bytes(name).decode()


# ------------------------------------------------------------------ parsing (pure)

@pytest.mark.parametrize("name, hours", [(ACTUAL, 24), ("ercot_act_sys_load_np6-345-cd_20241103_dst.documented-format.csv", 25),
                                         ("ercot_act_sys_load_np6-345-cd_20240310_dst.documented-format.csv", 23)])
def test_actual_load_hour_ending_to_utc_matches_the_archive(name, hours):
    """Hour-ending Central labels (DSTFlag on the repeated hour) give the same UTC hour starts and values as
    ERCOT's native load archive, converted independently (the embedded file): on a summer day, the fall-back
    day (HE02 twice) and the spring-forward day (no HE03)."""
    rows = parse(ErcotActualLoad(), name)
    assert len(rows) == hours and {r.series for r in rows} == {"ercot_system_load_mw"} and rows[0].unit == "MW"
    starts = pd.DatetimeIndex([r.interval_start_utc for r in rows])
    assert (starts[1:] - starts[:-1] == pd.Timedelta(hours=1)).all()
    assert [r.value for r in rows] == EMBEDDED_LOAD.loc[starts].tolist()


def test_spring_forward_hour_labelled_03_00_starts_at_01_00_cst():
    """Whether ERCOT labels the hour after 01:00 CST "02:00" or "03:00" (its start does not exist on the
    wall clock), it is the hour from 07:00 UTC."""
    name = "ercot_act_sys_load_np6-345-cd_20240310_dst.documented-format.csv"
    relabelled = text(name).replace("03/10/2024,02:00,", "03/10/2024,03:00,")
    assert [r.interval_start_utc for r in parse(ErcotActualLoad(), relabelled)] == \
        [r.interval_start_utc for r in parse(ErcotActualLoad(), name)]


def test_15_minute_demand_labels_are_interval_ends():
    """NP6-235-CD's TimeEnding 17:00 CDT is the interval 16:45-17:00, the official August 2024 4CP interval."""
    rows = parse(ErcotSystemDemand(), DEMAND)
    assert [r.interval_start_utc for r in rows] == [datetime(2024, 8, 20, 21, 15 * k, tzinfo=UTC) for k in range(4)]
    four_cp = read_four_cp(embedded_data_dir() / "ercot_4cp_intervals.csv").set_index(["year", "month"])
    assert rows[-1].interval_start_utc == four_cp.loc[(2024, 8), "interval_start_utc"]
    assert rows[-1].value == four_cp.loc[(2024, 8), "cp_mw"] == 85357.6
    assert {r.series for r in rows} == {"ercot_system_load_15min_mw"}


def test_15_minute_demand_at_midnight_labelled_24_00_or_00_00():
    header = "DeliveryDate,TimeEnding,Demand,DSTFlag\n"
    a = parse(ErcotSystemDemand(), header + "08/20/2024,23:45,70000,N\n08/20/2024,24:00,69000,N\n")
    b = parse(ErcotSystemDemand(), header + "08/20/2024,23:45,70000,N\n08/21/2024,00:00,69000,N\n")
    assert [r.interval_start_utc for r in a] == [r.interval_start_utc for r in b] == [
        datetime(2024, 8, 21, 4, 30, tzinfo=UTC), datetime(2024, 8, 21, 4, 45, tzinfo=UTC)]


def test_forecast_eight_operating_days_of_system_total():
    rows = parse(ErcotLoadForecast(), FORECAST)
    assert len(rows) == 8 * 24 and {r.series for r in rows} == {"ercot_load_forecast_mw"}
    assert rows[0].interval_start_utc == datetime(2024, 8, 19, 5, tzinfo=UTC)
    assert rows[-1].interval_start_utc == datetime(2024, 8, 27, 4, tzinfo=UTC)
    assert rows[0].value == 62377.74  # SystemTotal, not a zone


def test_forecast_with_several_models_keeps_the_one_in_use():
    lines = text(FORECAST).splitlines()
    out = [lines[0] + ",Model,InUseFlag"]
    for row in lines[1:]:
        cols = row.split(",")
        out.append(row + ",E,Y")
        cols[6] = "1.0e5"
        out.append(",".join(cols) + ",A3,N")
    rows = parse(ErcotLoadForecast(), "\n".join(out) + "\n")
    assert len(rows) == 192 and max(r.value for r in rows) < 1e5


@pytest.mark.parametrize("collector, body, reason", [
    (ErcotActualLoad(), text(ACTUAL).replace("TOTAL", "ALL"), "CSV lacks columns ['TOTAL']"),
    (ErcotActualLoad(), text(ACTUAL).rstrip("\n")[:-9], "is cut off"),
    (ErcotActualLoad(), "\n".join(text(ACTUAL).splitlines()[:-3]) + "\n", "21 hours on 2024-08-19 (24 expected)"),
    (ErcotActualLoad(), text(ACTUAL).replace("08/19/2024,05:00", "08/19/2024,29:00"), "HourEnding 29 outside 1..24"),
    (ErcotActualLoad(), text(ACTUAL).replace(",66790.31,", ",n/a,"), "TOTAL on line 25 is not a number"),
    (ErcotSystemDemand(), text(DEMAND).replace("Demand", "Load"), "CSV lacks columns ['Demand']"),
    (ErcotSystemDemand(), text(DEMAND).replace("16:30", "16:31"), "15-minute boundary"),
    (ErcotSystemDemand(), text(DEMAND).replace("85357.60", ""), "Demand on line 5 is not a number"),
    (ErcotLoadForecast(), text(FORECAST).replace("SystemTotal", "Total"), "CSV lacks columns ['SystemTotal']"),
    (ErcotLoadForecast(), "\n".join(text(FORECAST).splitlines()[:-1]) + "\n", "23 hours on 2024-08-26 (24 expected)"),
    (ErcotLoadForecast(), text(FORECAST).replace("08/19/2024", "2024-08-19"), "bad DeliveryDate/HourEnding"),
    (ErcotLoadForecast(), "DeliveryDate,HourEnding,SystemTotal\n", "no rows"),
])
def test_damaged_files_are_refused_with_a_reason(collector, body, reason):
    try:
        rows = parse(collector, body)
    except FeedError as exc:
        assert reason in exc.reason, exc.reason
    else:
        assert reason == "no rows" and rows == []  # an empty file parses to nothing: validation refuses it


def test_a_download_that_is_not_a_zip():
    with pytest.raises(FeedError, match="download is not a zip"):
        ErcotLoadForecast().parse([payload(b"<html>busy</html>", content_type="text/html")])


# ------------------------------------------------------------------ registry, config

def test_registered_once_for_ercot_sites_with_a_schedule():
    cfg = load_config(EXAMPLE)
    assert cfg.site.market == "ERCOT"
    for group, cls in (("load", ErcotActualLoad), ("load_rt", ErcotSystemDemand), ("load_forecast", ErcotLoadForecast)):
        assert [type(c) for c in collectors_for(cfg, group)] == [cls]
        assert group in cfg.daemon.feed_crons  # the daemon collects it on its own schedule
    nyiso = load_config(EXAMPLE, ["site.market='NYISO'", "site.settlement_point='N.Y.C.'", "power.four_cp.enabled=false"])
    assert all(not collectors_for(nyiso, g) for g in ("load", "load_rt", "load_forecast"))
    off = load_config(EXAMPLE, ["feeds.sources.ercot_mis.enabled=false"])
    assert not collectors_for(off, "load_forecast")


# ------------------------------------------------------------------ loopback

@pytest.fixture
def server():
    s = HTTPServer(threaded=True)
    s.start()
    yield s
    s.clear()
    s.stop()


def snapshot(store: Store):
    return store.conn.execute("SELECT * FROM observations ORDER BY 1, 2, 3").fetchall()


def test_collect_stores_the_three_series_and_status_reports_them(server, tmp_path):
    serve_all(server)
    cfg, _ = loopback_config(server.url_for("/"))
    with Store(tmp_path / "s.sqlite") as store:
        results = {r.group: r for r in collect(cfg, store, ["load", "load_rt", "load_forecast"])}
        hours = {g: len(c().parse([payload(z(), content_type="application/zip")])) for g, c, z in (
            ("load", ErcotActualLoad, fresh_ercot_load_zip), ("load_rt", ErcotSystemDemand, fresh_ercot_demand_zip),
            ("load_forecast", ErcotLoadForecast, fresh_ercot_forecast_zip))}
        assert 23 <= hours["load"] <= 25 and hours["load_rt"] == 4 and 191 <= hours["load_forecast"] <= 193
        assert {g: (r.ok, r.source, r.rows) for g, r in results.items()} == {
            g: (True, "ercot_mis", n) for g, n in hours.items()}
        rows = {s.series: s for s in status(cfg, store)}
        for series in ("ercot_system_load_mw", "ercot_system_load_15min_mw", "ercot_load_forecast_mw"):
            assert rows[series].fresh and rows[series].unit == "MW" and not rows[series].required


DOWNLOADS = {  # group -> (doc list report id, the newest CSV's DocID, a good zip)
    "load": ("13101", "1026000102", fresh_ercot_load_zip),
    "load_rt": ("12340", "1026100202", fresh_ercot_demand_zip),
    "load_forecast": ("12311", "1025950302", fresh_ercot_forecast_zip),
}


def _zip_of(body: bytes) -> tuple[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        name = z.namelist()[0]
        return name, z.read(name).decode()


def _rezip(name: str, content: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name, content)
    return buffer.getvalue()


def _slow(_):
    time.sleep(1.2)
    return Response(b"", content_type="application/zip")


FAULTS = {  # fault -> (respond to the download request, expected reason)
    "http-503": (lambda r, good: r.respond_with_data("busy", status=503), "HTTP 503 after 0 retries"),
    "timeout": (lambda r, good: r.respond_with_handler(_slow), "timed out after 0.5 s"),
    "damaged-zip": (lambda r, good: r.respond_with_data(good[: len(good) // 2], content_type="application/zip"),
                    "download is not a zip"),
    "cut-csv": (lambda r, good: r.respond_with_data(_rezip(_zip_of(good)[0], _zip_of(good)[1][:-30]),
                                                    content_type="application/zip"), "cut off"),
    "wrong-columns": (lambda r, good: r.respond_with_data(
        _rezip(_zip_of(good)[0], _zip_of(good)[1].replace("TOTAL", "Total").replace("Demand", "MW").replace(
            "SystemTotal", "System")), content_type="application/zip"), "CSV lacks columns"),
    "html-200": (lambda r, good: r.respond_with_data("<html>maintenance</html>", content_type="text/html"),
                 "download is not a zip"),
}


@pytest.mark.parametrize("group", DOWNLOADS)
@pytest.mark.parametrize("fault", FAULTS)
def test_download_faults_are_quarantined_and_good_rows_kept(server, tmp_path, group, fault):
    """After a good pass, a broken download of the newest document fails the group with its reason, is
    quarantined, and leaves every stored row as it was."""
    cfg, _ = loopback_config(server.url_for("/"), retries=0, read_timeout_s=0.5)
    _, doc_id, good = DOWNLOADS[group]
    with Store(tmp_path / "s.sqlite") as store:
        serve_all(server)
        assert collect(cfg, store, [group])[0].ok
        before = snapshot(store)
        server.clear()
        respond, expected = FAULTS[fault]
        respond(server.expect_request("/misdownload/servlets/mirDownload", query_string=f"doclookupId={doc_id}"), good())
        serve_all(server)
        (result,) = collect(cfg, store, [group])
        assert not result.ok
        reason = result.failures[0][1]
        assert expected in reason, reason
        assert snapshot(store) == before, "good rows changed"
        assert reason in store.quarantined()["reason"].tolist()


def test_a_forecast_with_a_stale_date_is_refused_whole(server, tmp_path):
    """A forecast file whose days are a year old (a stuck ERCOT posting) is refused by live validation."""
    cfg, _ = loopback_config(server.url_for("/"))
    old = fresh_ercot_forecast_zip(datetime.now(UTC) - timedelta(days=365))
    server.expect_request("/misdownload/servlets/mirDownload", query_string="doclookupId=1025950302").respond_with_data(
        old, content_type="application/zip")
    serve_all(server)
    with Store(tmp_path / "s.sqlite") as store:
        (result,) = collect(cfg, store, ["load_forecast"])
        assert not result.ok and "days old" in result.failures[0][1]
        assert "ercot_load_forecast_mw" not in store.series_names()


# ------------------------------------------------------------------ the store, as of a time

T0 = datetime(2024, 8, 20, 12, tzinfo=UTC)


def obs(series: str, start: datetime, value: float, fetched: datetime, unit: str = "MW") -> Observation:
    return Observation(series, start, value, unit, "test", fetched)


def _prices(store: Store) -> None:
    store.upsert([obs("power_rt_usd_per_mwh.HB_WEST", T0 - timedelta(hours=h), 30.0, T0 - timedelta(hours=h), "USD/MWh")
                  for h in range(1, 4)])


def test_forecast_as_of_is_the_issue_known_then(tmp_path):
    """Two issues of the forecast, fetched at 12:00 and 13:00: as of 12:30 the 12:00 issue (its values were
    overwritten at 13:00 but kept as revisions), as of 13:00 the new one, before 12:00 none. No look-ahead."""
    hours = [T0 + timedelta(hours=h) for h in range(2, 8)]
    first, second = T0, T0 + timedelta(hours=1)
    with Store(tmp_path / "s.sqlite") as store:
        _prices(store)
        store.upsert([obs("ercot_load_forecast_mw", h, 70_000 + k, first) for k, h in enumerate(hours)])
        store.upsert([obs("ercot_load_forecast_mw", h, 80_000 + k, second) for k, h in enumerate(hours)])
        before = market_from_store(store, "HB_WEST", as_of=first - timedelta(minutes=1))
        between = market_from_store(store, "HB_WEST", as_of=first + timedelta(minutes=30))
        after = market_from_store(store, "HB_WEST", as_of=second)
    assert before.load_forecast_mw is None
    assert between.load_forecast_mw.tolist() == [70_000 + k for k in range(6)]
    assert after.load_forecast_mw.tolist() == [80_000 + k for k in range(6)]
    assert list(after.load_forecast_mw.index) == hours and str(after.load_forecast_mw.index.tz) == "UTC"


def test_a_forecast_issue_older_than_its_staleness_limit_is_not_used(tmp_path, caplog):
    """The forecast feed died: 6 h after its last issue the store still serves it, after that no forecast
    (its rows lie days ahead, so their timestamps alone would look fresh for a week)."""
    hours = [T0 + timedelta(hours=h) for h in range(24)]
    with Store(tmp_path / "s.sqlite") as store:
        _prices(store)
        store.upsert([obs("ercot_load_forecast_mw", h, 70_000.0, T0) for h in hours])
        assert len(market_from_store(store, "HB_WEST", as_of=T0 + timedelta(hours=6)).load_forecast_mw) == 24
        assert market_from_store(store, "HB_WEST", as_of=T0 + timedelta(hours=6, minutes=1)).load_forecast_mw is None
    assert "load forecast not used: the newest issue was fetched at 2024-08-20T12:00Z" in caplog.text


def test_load_is_hourly_actuals_filled_with_complete_15_minute_hours(tmp_path):
    """Hourly rows where ERCOT's daily file has them; after that the mean of an hour's four 15-minute values;
    an hour with three quarters known is left out; nothing fetched after `as_of` is seen."""
    h = [T0 - timedelta(hours=k) for k in (6, 5, 4, 3, 2)]
    with Store(tmp_path / "s.sqlite") as store:
        _prices(store)
        store.upsert([obs("ercot_system_load_mw", t, 60_000 + i, t + timedelta(hours=1)) for i, t in enumerate(h[:2])])
        quarters = [(h[1], [1.0, 1.0, 1.0, 1.0]), (h[2], [70_000, 70_100, 70_200, 70_300]), (h[3], [71_000, 71_000, 71_000])]
        for hour, values in quarters:
            store.upsert([obs("ercot_system_load_15min_mw", hour + timedelta(minutes=15 * q), v, hour + timedelta(hours=1))
                          for q, v in enumerate(values)])
        store.upsert([obs("ercot_system_load_15min_mw", h[4] + timedelta(minutes=15 * q), 72_000, T0 + timedelta(minutes=5))
                      for q in range(4)])  # fetched after the decision time
        market = market_from_store(store, "HB_WEST", as_of=T0)
    assert market.load.index.tolist() == h[:3]
    assert market.load["system_load_mw"].tolist() == [60_000, 60_001, 70_150]  # hourly wins over 15-minute
    assert market.load_interval == pd.Timedelta(0)


def test_hourly_load_pure_with_nothing_known():
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    df = hourly_load(empty, empty)
    assert df.empty and list(df.columns) == ["system_load_mw"]


# ------------------------------------------------------------------ import

def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


def test_import_load_and_4cp_files_gives_the_store_what_the_embedded_data_gives(tmp_path):
    """`feeds import` recognises ercot_native_load_hourly.csv and ercot_4cp_intervals.csv by their header; the
    store then returns as of a time the load of every hour that has ended and the 4CP intervals of months
    that have ended, equal to the embedded data's."""
    db = tmp_path / "s.sqlite"
    data = embedded_data_dir()
    files = [str(_summer_2024(data / "ercot_native_load_hourly.csv.gz", tmp_path)), str(data / "ercot_4cp_intervals.csv"),
             str(_summer_2024(data / "ercot_hub_prices_hourly.csv.gz", tmp_path))]
    proc = run("feeds", "import", *files, "--db", str(db), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    kinds = {Path(r["file"]).name: (r["kind"], r["rows"]) for r in json.loads(proc.stdout)}
    assert kinds["ercot_native_load_hourly.csv"] == ("load", 24 * (31 + 30 + 31 + 31))
    assert kinds["ercot_4cp_intervals.csv"] == ("four_cp", 16)
    as_of = datetime(2024, 8, 21, 0, 30, tzinfo=UTC)
    with Store(db) as store:
        market = market_from_store(store, "HB_WEST", as_of=as_of)
    embedded = read_load(data / "ercot_native_load_hourly.csv.gz")
    expected = embedded[(embedded.index >= market.load.index[0]) & (embedded.index <= as_of - timedelta(hours=1))]
    pd.testing.assert_frame_equal(market.load, expected, check_freq=False)
    assert market.load.index[-1] == datetime(2024, 8, 20, 23, tzinfo=UTC)
    official = read_four_cp(data / "ercot_4cp_intervals.csv")
    known = official[official["interval_start_utc"] < pd.Timestamp("2024-08-01T05:00Z")].reset_index(drop=True)
    pd.testing.assert_frame_equal(market.four_cp_intervals, known)
    assert len(known) == 14  # 2021-2023, and June and July 2024; August 2024's is not known until September


def _summer_2024(path: Path, tmp_path: Path) -> Path:
    """The embedded file's header and its rows from 2024-05 to 2024-08 (UTC), byte for byte (a quick import)."""
    import gzip

    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    out = tmp_path / path.name.removesuffix(".gz")
    out.write_text(lines[0] + "".join(x for x in lines[1:] if x.startswith(("2024-05", "2024-06", "2024-07", "2024-08"))))
    return out


def test_import_a_4cp_file_with_a_bad_time_exits_1(tmp_path):
    bad = tmp_path / "ercot_4cp_intervals.csv"
    bad.write_text(text_of_4cp().replace("2024-08-20 16:45", "2024-08-20 4:45 PM"))
    proc = run("feeds", "import", str(bad), "--db", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 1 and "interval_start_local" in proc.stderr and "Traceback" not in proc.stderr


def text_of_4cp() -> str:
    return (embedded_data_dir() / "ercot_4cp_intervals.csv").read_text()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("76803.5", "", 1), "line 6, column cp_mw_15min: empty"),  # was dropped: 15 of 16 imported
    (lambda t: t.replace(",official_NP9-83-M\n", "\n", 1), "line 6 has 6 of 7 columns"),  # was filled with blanks
])
def test_a_4cp_file_with_a_blank_cell_or_a_short_row_is_refused_naming_the_line(tmp_path, edit, message):
    from hashpivot.feeds.importer import rows_from_file

    line_6 = text_of_4cp().splitlines()[5]
    assert "76803.5" in line_6 and line_6.endswith(",official_NP9-83-M")  # the first such row: mid-file
    bad = tmp_path / "ercot_4cp_intervals.csv"
    bad.write_text(edit(text_of_4cp()))
    with pytest.raises(DataError, match=message):
        rows_from_file(bad)


def test_a_4cp_file_with_its_header_alone_imports_nothing_without_a_traceback(tmp_path):
    from hashpivot.feeds.importer import rows_from_file

    header = tmp_path / "ercot_4cp_intervals.csv"
    header.write_text(text_of_4cp().splitlines(keepends=True)[0])
    assert rows_from_file(header) == ("four_cp", [])
