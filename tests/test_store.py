"""The SQLite store and history import: idempotent upserts, WAL readers, migrations, as-of reads, validation."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from hashpivot.feeds.base import Observation
from hashpivot.feeds.embedded import embedded_data_dir, load_market_data
from hashpivot.feeds.importer import import_files
from hashpivot.feeds.market_store import market_from_store
from hashpivot.feeds.store import SCHEMA_VERSION, Store
from hashpivot.models.config import load_config
from hashpivot.models.errors import DataError, StoreError
from hashpivot.optimizer.forecast import build_forecast
from hashpivot.optimizer.milp.problem import make_problem
from hashpivot.optimizer.milp.solve import solve
from tests.feeds_support import EXAMPLE

T0 = datetime(2024, 8, 5, 14, tzinfo=timezone.utc)


def obs(value, start=T0, fetched=T0, source="coinbase"):
    return Observation("btc_usd", start, value, "USD/BTC", source, fetched)


def test_upsert_is_idempotent_and_keeps_sources_apart(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([obs(60_000.0), obs(60_000.0)])
        store.upsert([obs(60_001.0, fetched=T0 + timedelta(minutes=1))])  # a re-fetch of the same key updates it
        store.upsert([obs(60_050.0, source="kraken")])
        rows = store.conn.execute("SELECT source, value FROM observations ORDER BY source").fetchall()
        assert rows == [("coinbase", 60_001.0), ("kraken", 60_050.0)]


def test_wal_schema_version_and_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with Store(path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this hashpivot"):
        Store(path)


def test_readers_see_committed_data_while_a_writer_holds_a_transaction(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as writer, Store(path) as reader:
        writer.upsert([obs(60_000.0)])
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.conn.execute("UPDATE observations SET value = 1")
        assert reader.latest("btc_usd").value == 60_000.0  # WAL: the reader is not blocked and sees the last commit
        writer.conn.execute("ROLLBACK")


def test_as_of_reads_only_what_was_fetched_by_then(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([obs(60_000.0, start=T0, fetched=T0), obs(61_000.0, start=T0 + timedelta(hours=1), fetched=T0 + timedelta(hours=2))])
        assert store.latest("btc_usd", as_of=T0 + timedelta(hours=1)).value == 60_000.0
        assert len(store.history("btc_usd", as_of=T0 + timedelta(hours=1))) == 1
        assert store.latest("btc_usd").value == 61_000.0


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    with Store(path) as store:
        results = import_files(sorted(embedded_data_dir().glob("*.csv*")), store)
    return path, results


def test_import_recognises_every_embedded_file(imported):
    _, results = imported
    assert sorted(r.kind for r in results) == ["ancillary", "btc", "four_cp", "gpu", "load", "network", "power"]


@pytest.mark.parametrize("at", ["2024-08-05T14:00Z", "2025-01-15T08:00Z"])
def test_solve_from_the_imported_store_equals_solve_from_the_embedded_data(imported, at):
    path, _ = imported
    cfg = load_config(EXAMPLE)
    at = pd.Timestamp(at)
    with Store(path) as store:
        from_store = market_from_store(store, "HB_WEST", as_of=at.to_pydatetime())
    a = build_forecast(cfg, from_store, at)
    b = build_forecast(cfg, load_market_data(), at)
    for field in ("power_price_usd_per_mwh", "hashprice_usd_per_th_day", "btc_usd", "reserve_price_usd_per_mw_hour"):
        assert list(getattr(a, field)) == pytest.approx(list(getattr(b, field))), field
    assert solve(make_problem(cfg, a)).objective_usd == pytest.approx(solve(make_problem(cfg, b)).objective_usd)


def test_import_rejects_unknown_headers_and_absurd_values_whole(tmp_path):
    bad = tmp_path / "weird.csv"
    bad.write_text("when,price\n2024-01-01,3\n")
    absurd = tmp_path / "btc_usd_hourly.csv"
    absurd.write_text("interval_start_utc,btc_usd\n2024-01-01T00:00:00Z,42458.92\n2024-01-01T01:00:00Z,0.5\n")
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(DataError, match="weird.csv: unrecognised header 'when,price'"):
            import_files([bad], store)
        with pytest.raises(DataError, match="rejected, nothing imported: btc_usd at 2024-01-01T01:00Z: value 0.5"):
            import_files([absurd], store)
        assert store.latest("btc_usd") is None
        assert len(store.quarantined()) == 1


def test_series_fetched_only_after_the_as_of_time_read_as_missing_data(tmp_path):
    """A store whose GPU rates were all fetched after `as_of` (e.g. the clock moved back) gives a clear DataError."""
    from hashpivot.feeds.market_store import market_from_store

    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([
            Observation("power_rt_usd_per_mwh.HB_WEST", T0, 20.0, "USD/MWh", "ercot_mis", T0),
            Observation("btc_usd", T0, 60_000.0, "USD/BTC", "coinbase", T0),
            Observation("gpu_rate_usd_per_gpu_hour.H100", T0, 2.5, "USD/GPU-h", "vast", T0 + timedelta(hours=3)),
        ])
        market = market_from_store(store, "HB_WEST", as_of=T0 + timedelta(hours=1))
    assert market.gpu_rates["H100"].empty and isinstance(market.gpu_rates.index, pd.DatetimeIndex)
    cfg = load_config(EXAMPLE)
    with pytest.raises(DataError):
        build_forecast(cfg, market, pd.Timestamp(T0 + timedelta(hours=1)))


def test_decisions_read_a_bounded_window_that_covers_every_staleness_limit(tmp_path):
    from hashpivot.feeds.market_store import LOOKBACK, market_from_store
    from hashpivot.models.series import SPECS

    assert LOOKBACK >= max(s.staleness for s in SPECS.values()) + timedelta(days=3)
    with Store(tmp_path / "s.sqlite") as store:
        old = T0 - LOOKBACK - timedelta(hours=1)
        store.upsert([Observation("power_rt_usd_per_mwh.HB_WEST", old, 11.0, "USD/MWh", "ercot_mis", old),
                      Observation("power_rt_usd_per_mwh.HB_WEST", T0, 22.0, "USD/MWh", "ercot_mis", T0)])
        market = market_from_store(store, "HB_WEST", as_of=T0)
        assert list(market.power["rt_price_usd_per_mwh"]) == [22.0]
        assert len(market_from_store(store, "HB_WEST").power) == 2  # no as-of time (backtests): everything


def test_a_revised_value_replaces_the_old_one_and_the_old_one_is_kept(tmp_path):
    """ERCOT revises settlement prices: the revision wins, the value it replaced stays in `revisions`."""
    start = T0 - timedelta(hours=2)
    first = Observation("power_rt_usd_per_mwh.HB_WEST", start, 30.0, "USD/MWh", "ercot_mis", T0 - timedelta(hours=1))
    revised = Observation("power_rt_usd_per_mwh.HB_WEST", start, 31.5, "USD/MWh", "ercot_mis", T0)
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([first])
        store.upsert([first])  # the same value again is no revision
        store.upsert([revised])
        assert store.latest("power_rt_usd_per_mwh.HB_WEST").value == 31.5
        old = store.revisions("power_rt_usd_per_mwh.HB_WEST")
    from hashpivot.feeds.store import iso

    assert old[["value", "fetched_at_utc", "replaced_at_utc"]].values.tolist() == [
        [30.0, iso(first.fetched_at_utc), iso(revised.fetched_at_utc)]]


def test_the_default_store_time_waits_for_a_series_fetched_a_second_after_the_other(tmp_path):
    """A first fetch pass that crosses a second boundary (BTC at T0, real-time prices at T0 + 1 s): the default
    decision time is when both are known, so the store reads both (it read no real-time price: "the clock moved
    back"); a long-stale series still pulls the time back to its last fetch, as before."""
    from hashpivot.feeds.market_store import latest_covered_time

    rt, btc = "power_rt_usd_per_mwh.HB_WEST", "btc_usd"
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([Observation(btc, T0, 60_000.0, "USD/BTC", "coinbase", T0),
                      Observation(rt, T0, 20.0, "USD/MWh", "ercot_mis", T0 + timedelta(seconds=1))])
        at = latest_covered_time(store, [rt, btc], "HB_WEST")
        assert at == T0 + timedelta(seconds=1)
        assert not market_from_store(store, "HB_WEST", as_of=at).power.empty
        store.upsert([Observation(btc, T0 + timedelta(hours=5), 61_000.0, "USD/BTC", "coinbase", T0 + timedelta(hours=5)),
                      Observation(rt, T0 + timedelta(hours=2), 21.0, "USD/MWh", "ercot_mis", T0 + timedelta(hours=2))])
        assert latest_covered_time(store, [rt, btc], "HB_WEST") == T0 + timedelta(hours=2)


def test_the_default_store_time_waits_for_every_required_series_of_a_first_fetch_pass(tmp_path):
    """CI saw it: a first `feeds fetch` pass fetched BTC and real-time prices at T0 and the GPU rates a second
    later; `solve --source store` decided at T0 and read the GPU rate as 'no rows'."""
    from hashpivot.feeds.market_store import latest_covered_time

    rt, btc, gpu = "power_rt_usd_per_mwh.HB_WEST", "btc_usd", "gpu_rate_usd_per_gpu_hour.H100"
    later = T0 + timedelta(seconds=1)
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([Observation(btc, T0, 60_000.0, "USD/BTC", "coinbase", T0),
                      Observation(rt, T0, 20.0, "USD/MWh", "ercot_mis", T0),
                      Observation(gpu, T0.replace(minute=0), 2.1, "USD/GPU-h", "vast", later)])
        at = latest_covered_time(store, [rt, btc, gpu], "HB_WEST")
        assert at == later
        assert market_from_store(store, "HB_WEST", as_of=at).gpu_rates["H100"].notna().any()


def test_the_scan_and_the_apply_stored_last_win_after_the_clock_steps_back(tmp_path):
    """A drill stepped the clock back an hour: the scan just taken carried an earlier time than the one before,
    so fleet apply planned from the old scan (27 mining machines read as 0) and status named an old apply."""
    from hashpivot.feeds.fleet.scan import Telemetry

    with Store(tmp_path / "s.sqlite") as store:
        store.add_telemetry([Telemetry("127.0.10.1", "s19xp", T0, True, mining=False, watts=0.0)])
        store.log_commands(T0, 11, [("127.0.10.1", "s19xp", "sleep", "ok", "", 1)])
        stepped = T0 - timedelta(hours=1)
        store.add_telemetry([Telemetry("127.0.10.1", "s19xp", stepped, True, mining=True, watts=3_250.0)])
        store.log_commands(stepped, 13, [("127.0.10.1", "s19xp", "wake 3250 W", "ok", "", 1)])
        latest = store.latest_telemetry()
        assert len(latest) == 1 and bool(latest["mining"].iloc[0]) and latest["watts"].iloc[0] == 3_250.0
        assert list(store.last_apply()["decision_seq"]) == [13]


def test_a_store_from_before_the_latest_scan_table_keeps_each_machines_newest_scan(tmp_path):
    from hashpivot.feeds.fleet.scan import Telemetry

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add_telemetry([Telemetry(ip, "s19xp", T0 + timedelta(minutes=m), True, mining=bool(m), watts=float(m))
                             for ip in ("127.0.10.1", "127.0.10.2") for m in (0, 5)])
    conn = sqlite3.connect(path)  # as schema 8 left it: no telemetry_latest
    conn.executescript("DROP TABLE telemetry_latest; PRAGMA user_version = 8;")
    conn.close()
    with Store(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert list(store.latest_telemetry()["watts"]) == [5.0, 5.0]


def test_feed_status_after_the_clock_steps_back_reads_only_what_was_known_by_then(tmp_path):
    """A drill at a stepped-back 00:35Z saw a row fetched at 05:00Z as 'age 0, fresh': status must agree with
    the decision, which cannot see rows fetched after its now."""
    from hashpivot.feeds.collect import status

    cfg = load_config(EXAMPLE)
    with Store(tmp_path / "s.sqlite") as store:
        store.upsert([obs(60_000.0, start=T0, fetched=T0 + timedelta(hours=1)),
                      obs(61_000.0, start=T0 + timedelta(hours=4), fetched=T0 + timedelta(hours=5))])
        rows = {r.series: r for r in status(cfg, store, T0 + timedelta(hours=1, minutes=35))}
    btc = rows["btc_usd"]
    assert btc.value == 60_000.0 and btc.age_s == pytest.approx(95 * 60)
