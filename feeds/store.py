"""The local store: SQLite in WAL mode, one writer and any number of readers.

Tables: `observations` keyed by (series, interval_start_utc, source) with idempotent upserts; `quarantine` for
rejected payloads (reason and the raw body); `fetch_log` for every attempt. The schema is versioned with
`PRAGMA user_version` and migrated forward on open. Timestamps are stored as ISO 8601 UTC text ('...Z'),
which sorts chronologically.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from platformdirs import user_data_dir

from hashpivot.feeds.base import Observation
from hashpivot.models.calendar import ISO_FORMAT, to_utc
from hashpivot.models.decision import Decision, load_decision
from hashpivot.models.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: observations, quarantine, fetch log
    """
    CREATE TABLE observations (
        series TEXT NOT NULL,
        interval_start_utc TEXT NOT NULL,
        source TEXT NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        fetched_at_utc TEXT NOT NULL,
        PRIMARY KEY (series, interval_start_utc, source)
    ) WITHOUT ROWID;
    CREATE INDEX observations_by_fetch ON observations (series, fetched_at_utc);
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL,
        source TEXT NOT NULL,
        fetched_at_utc TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload BLOB
    );
    CREATE TABLE fetch_log (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL,
        source TEXT NOT NULL,
        fetched_at_utc TEXT NOT NULL,
        ok INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        reason TEXT
    );
    """,
    # 2: decisions taken by `hashpivot tick` / `hashpivot run` (the rolling horizon's applied step 0)
    """
    CREATE TABLE decisions (
        seq INTEGER PRIMARY KEY,
        interval_start_utc TEXT NOT NULL,
        decided_at_utc TEXT NOT NULL,
        status TEXT NOT NULL,
        safe INTEGER NOT NULL,
        objective_usd REAL,
        duration_s REAL NOT NULL,
        document TEXT NOT NULL
    );
    CREATE INDEX decisions_by_interval ON decisions (interval_start_utc);
    """,
    # 3: the outbox: what each decision still has to be published to, committed with the decision itself
    """
    CREATE TABLE outbox (
        seq INTEGER NOT NULL REFERENCES decisions (seq),
        target TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        done_at_utc TEXT,
        last_error TEXT,
        PRIMARY KEY (seq, target)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox (target, done_at_utc, seq);
    """,
    # 4: revisions: a value a source later revised (ERCOT does) is kept, not lost, when the new one replaces it
    """
    CREATE TABLE revisions (
        series TEXT NOT NULL,
        interval_start_utc TEXT NOT NULL,
        source TEXT NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        fetched_at_utc TEXT NOT NULL,
        replaced_at_utc TEXT NOT NULL
    );
    CREATE INDEX revisions_by_series ON revisions (series, interval_start_utc);
    CREATE TRIGGER keep_revised_values BEFORE UPDATE OF value ON observations
    WHEN old.value IS NOT new.value
    BEGIN
        INSERT INTO revisions (series, interval_start_utc, source, value, unit, fetched_at_utc, replaced_at_utc)
        VALUES (old.series, old.interval_start_utc, old.source, old.value, old.unit, old.fetched_at_utc,
                new.fetched_at_utc);
    END;
    """,
    # 5: fleet telemetry: one row per machine and scan
    """
    CREATE TABLE telemetry (
        ip TEXT NOT NULL,
        pool TEXT NOT NULL,
        at_utc TEXT NOT NULL,
        reachable INTEGER NOT NULL,
        mining INTEGER,
        watts REAL,
        hashrate_th REAL,
        temp_c REAL,
        error TEXT,
        PRIMARY KEY (ip, at_utc)
    ) WITHOUT ROWID;
    CREATE INDEX telemetry_by_time ON telemetry (at_utc);
    """,
    # 6: the fleet audit: every command sent to a machine (or planned, in a dry run), with its result
    """
    CREATE TABLE fleet_log (
        id INTEGER PRIMARY KEY,
        at_utc TEXT NOT NULL,
        decision_seq INTEGER,
        ip TEXT NOT NULL,
        pool TEXT NOT NULL,
        command TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT,
        attempts INTEGER NOT NULL
    );
    CREATE INDEX fleet_log_by_time ON fleet_log (at_utc);
    """,
    # 7: operator holds on a pool or a machine
    """
    CREATE TABLE holds (
        id INTEGER PRIMARY KEY,
        pool TEXT,
        ip TEXT,
        units INTEGER,
        off INTEGER NOT NULL DEFAULT 0,
        mode TEXT,
        until_utc TEXT,
        reason TEXT NOT NULL,
        created_at_utc TEXT NOT NULL,
        removed_at_utc TEXT
    );
    """,
    # 8: the power target (W) each machine's firmware reports, beside what it draws
    """
    ALTER TABLE telemetry ADD COLUMN power_target_w REAL;
    """,
    # 9: each machine's newest *stored* scan, whatever its time: after the clock steps back, the scan just taken
    # carries an earlier time than the one before it and must still be the one read
    """
    CREATE TABLE telemetry_latest (ip TEXT PRIMARY KEY, at_utc TEXT NOT NULL);
    INSERT INTO telemetry_latest (ip, at_utc) SELECT ip, MAX(at_utc) FROM telemetry GROUP BY ip;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    return Path(user_data_dir("hashpivot", appauthor=False)) / "hashpivot.sqlite"


def iso(ts: datetime | pd.Timestamp) -> str:
    """Stored time text; refuses naive times (every stored time is a known UTC instant)."""
    if pd.Timestamp(ts).tzinfo is None:
        raise StoreError(f"timestamp must be tz-aware: {ts!r}")
    return to_utc(ts).strftime(ISO_FORMAT)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=timezone.utc)


def _reading(method):
    """A read whose SQLite error (a damaged file, an I/O error) becomes one StoreError naming the file."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise StoreError(f"store {self.path}: cannot read ({exc}); check it with `hashpivot store check` "
                             "and restore the last good backup (README: Reliability)") from None

    return wrapper


class Store:
    """Open (creating and migrating) the store at `path`."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.created = not self.path.exists()  # this open makes a new, empty store
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # a new store is readable by its owner only (SQLite's -wal/-shm follow)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store {self.path}: cannot open ({exc})") from None

    def close(self) -> None:
        self.conn.close()

    def check(self, quick: bool = True) -> list[str]:
        """SQLite's own check of every page (`quick_check`, or the slower full `integrity_check`): the
        problems found, [] when the store is sound."""
        pragma = "quick_check" if quick else "integrity_check"
        try:
            rows = [r[0] for r in self.conn.execute(f"PRAGMA {pragma}")]
        except sqlite3.Error as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def require_sound(self) -> None:
        """StoreError naming the file and how to recover when the quick check finds damage (run at start-up of
        `run` and `tick`, so nothing more is written into a damaged store)."""
        problems = self.check(quick=True)
        if problems:
            raise StoreError(f"store {self.path} is damaged ({problems[0]}{'; …' if len(problems) > 1 else ''}): "
                             "stop the daemon, restore the last good backup (`hashpivot store backup` writes them; "
                             "README: Reliability), or move the file away to start a new store")

    def backup(self, target: Path) -> Path:
        """A consistent copy of the live store (SQLite's online backup API: readers and the writer go on),
        written to a temp file and renamed, created 0600."""
        target = Path(target)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))  # created 0600 before SQLite writes it
            copy = sqlite3.connect(tmp)
            try:
                self.conn.backup(copy)
            finally:
                copy.close()
            os.replace(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"store {self.path}: backup to {target} failed ({exc})") from None
        return target

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {version} is newer than this hashpivot ({SCHEMA_VERSION}); upgrade hashpivot")
        for number in range(version, SCHEMA_VERSION):
            try:  # one script, one transaction: a migration is applied whole or not at all
                self.conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            log.info("store=%s migrated to schema %d", self.path, number + 1)

    # ------------------------------------------------------------------ writes

    def upsert(self, rows: Iterable[Observation]) -> int:
        """Insert or update rows (idempotent: the same row twice leaves one). Returns the number written."""
        data = [(r.series, iso(r.interval_start_utc), r.source, r.value, r.unit, iso(r.fetched_at_utc)) for r in rows]
        with self._transaction():
            self.conn.executemany(
                """INSERT INTO observations (series, interval_start_utc, source, value, unit, fetched_at_utc)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (series, interval_start_utc, source)
                   DO UPDATE SET value = excluded.value, unit = excluded.unit, fetched_at_utc = excluded.fetched_at_utc""",
                data,
            )
        return len(data)

    def quarantine(self, group: str, source: str, fetched_at: datetime, reason: str, payload: bytes | None) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT INTO quarantine (group_name, source, fetched_at_utc, reason, payload) VALUES (?, ?, ?, ?, ?)",
                (group, source, iso(fetched_at), reason, payload),
            )

    def log_fetch(self, group: str, source: str, fetched_at: datetime, ok: bool, rows: int, reason: str | None) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT INTO fetch_log (group_name, source, fetched_at_utc, ok, rows, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (group, source, iso(fetched_at), int(ok), rows, reason),
            )

    @contextmanager
    def _transaction(self):
        """One write transaction: committed whole or rolled back; SQLite's errors (read-only file, disk full,
        locked past the busy timeout) become one StoreError naming the file and the free space left."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            free = shutil.disk_usage(self.path.parent).free if self.path.parent.exists() else 0
            raise StoreError(f"store {self.path}: cannot write ({exc}; {free / 1e6:,.1f} MB free on its disk)") from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Roll back what is left of a failed transaction (SQLite may already have: a full disk ends it)."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def add_decision(self, doc: Decision, decided_at: datetime, duration_s: float, targets: Iterable[str] = ()) -> int:
        """Store one decision document and its outbox marks (what it must still be published to) in one
        transaction; returns its sequence number (the order decisions were taken in)."""
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO decisions (interval_start_utc, decided_at_utc, status, safe, objective_usd, duration_s, document)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc.interval_start_utc, iso(decided_at), doc.status, int(doc.status == "safe"),
                 doc.objective_usd, duration_s, doc.model_dump_json()),
            )
            seq = int(cur.lastrowid)
            self.conn.executemany("INSERT INTO outbox (seq, target) VALUES (?, ?)", [(seq, t) for t in targets])
        return seq

    @_reading
    def pending(self, target: str, limit: int = 100) -> list[tuple[int, Decision]]:
        """Decisions not yet published to `target`, oldest first."""
        rows = self.conn.execute(
            "SELECT d.seq, d.document FROM outbox o JOIN decisions d ON d.seq = o.seq "
            "WHERE o.target = ? AND o.done_at_utc IS NULL ORDER BY o.seq LIMIT ?", (target, limit)).fetchall()
        return [(int(seq), load_decision(doc, f"{self.path}: decision {seq}")) for seq, doc in rows]

    def mark_published(self, seq: int, target: str, when: datetime) -> None:
        with self._transaction():
            self.conn.execute("UPDATE outbox SET done_at_utc = ?, attempts = attempts + 1, last_error = NULL "
                              "WHERE seq = ? AND target = ?", (iso(when), seq, target))

    def mark_failed(self, seq: int, target: str, error: str) -> None:
        with self._transaction():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ? AND target = ?",
                              (error, seq, target))


    @_reading
    def last_decision(self) -> tuple[int, Decision] | None:
        row = self.conn.execute("SELECT seq, document FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), load_decision(row[1], f"{self.path}: decision {row[0]}"))

    @_reading
    def fetch_failures(self) -> dict[str, int]:
        """Failed fetches per source, over the whole log."""
        rows = self.conn.execute("SELECT source, COUNT(*) FROM fetch_log WHERE ok = 0 GROUP BY source ORDER BY source")
        return {source: int(n) for source, n in rows}

    @_reading
    def decisions(self, since: datetime | None = None, limit: int = 1000) -> pd.DataFrame:
        sql = ("SELECT seq, interval_start_utc, decided_at_utc, status, safe, objective_usd, duration_s, document "
               "FROM decisions")
        args: list = []
        if since is not None:
            sql += " WHERE decided_at_utc >= ?"
            args.append(iso(since))
        return pd.read_sql_query(sql + " ORDER BY seq DESC LIMIT ?", self.conn, params=args + [limit]).iloc[::-1].reset_index(drop=True)

    # ------------------------------------------------------------------ reads

    @_reading
    def series_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT series FROM observations ORDER BY series")]

    @_reading
    def latest(self, series: str, as_of: datetime | None = None) -> Observation | None:
        """The latest row (by interval start, then fetch time) fetched no later than `as_of`."""
        sql = "SELECT series, interval_start_utc, value, unit, source, fetched_at_utc FROM observations WHERE series = ?"
        args: list = [series]
        if as_of is not None:
            sql += " AND fetched_at_utc <= ?"
            args.append(iso(as_of))
        row = self.conn.execute(sql + " ORDER BY interval_start_utc DESC, fetched_at_utc DESC LIMIT 1", args).fetchone()
        return None if row is None else _obs(row)

    @_reading
    def last_known(self, series: str) -> tuple[datetime, datetime] | None:
        """(latest interval start, when it became known) of `series`, or None if nothing is stored."""
        row = self.conn.execute("SELECT MAX(interval_start_utc), MAX(fetched_at_utc) FROM observations WHERE series = ?",
                                (series,)).fetchone()
        return None if row[0] is None else (parse_iso(row[0]), parse_iso(row[1]))

    @_reading
    def first_known_at(self, series: str) -> datetime | None:
        """When the first value of `series` became known (its earliest fetch), or None if nothing is stored."""
        row = self.conn.execute("SELECT MIN(fetched_at_utc) FROM observations WHERE series = ?", (series,)).fetchone()
        return None if row[0] is None else parse_iso(row[0])

    def latest_values(self, series: Iterable[str]) -> dict[str, float]:
        out = {}
        for s in series:
            o = self.latest(s)
            if o is not None:
                out[s] = o.value
        return out

    @_reading
    def history(self, series: str | None = None, since: datetime | None = None, until: datetime | None = None,
                as_of: datetime | None = None) -> pd.DataFrame:
        """Rows as a DataFrame (series, interval_start_utc, value, unit, source, fetched_at_utc).

        `since`/`until` bound interval starts; `as_of` keeps only rows fetched by then (no look-ahead). Where
        several sources supplied one interval, the most recently fetched row is kept.
        """
        sql = "SELECT series, interval_start_utc, value, unit, source, fetched_at_utc FROM observations WHERE 1=1"
        args: list = []
        if series is not None:
            sql += " AND (series = ? OR series LIKE ?)"
            args += [series, series + ".%"]
        if since is not None:
            sql += " AND interval_start_utc >= ?"
            args.append(iso(since))
        if until is not None:
            sql += " AND interval_start_utc <= ?"
            args.append(iso(until))
        if as_of is not None:
            sql += " AND fetched_at_utc <= ?"
            args.append(iso(as_of))
        df = pd.read_sql_query(sql + " ORDER BY series, interval_start_utc, fetched_at_utc", self.conn, params=args)
        if df.empty:
            return df
        df = df.drop_duplicates(["series", "interval_start_utc"], keep="last")
        for col in ("interval_start_utc", "fetched_at_utc"):
            df[col] = pd.to_datetime(df[col], utc=True)
        return df.reset_index(drop=True)

    @_reading
    def as_known(self, series: str, as_of: datetime | None = None, since: datetime | None = None) -> pd.DataFrame:
        """Per interval start of `series` (the index, UTC), the `value` last fetched by `as_of` and its
        `fetched_at_utc`, counting values a later fetch replaced (kept in `revisions`): what was known then,
        e.g. the load forecast issue current at `as_of` rather than nothing once a newer issue overwrote the
        row. A value fetched again unchanged keeps no revision, so it is known from its latest fetch only."""
        where, args = "series = ?", [series]
        if as_of is not None:
            where += " AND fetched_at_utc <= ?"
            args.append(iso(as_of))
        if since is not None:
            where += " AND interval_start_utc >= ?"
            args.append(iso(since))
        rows = self.conn.execute(
            f"SELECT interval_start_utc, value, fetched_at_utc FROM observations WHERE {where} UNION ALL "
            f"SELECT interval_start_utc, value, fetched_at_utc FROM revisions WHERE {where} "
            "ORDER BY interval_start_utc, fetched_at_utc", args + args).fetchall()
        latest = {start: (value, fetched) for start, value, fetched in rows}  # by fetch time: the last one wins
        index = pd.DatetimeIndex([parse_iso(s) for s in latest], name="interval_start_utc")
        if index.tz is None:
            index = index.tz_localize("UTC")
        return pd.DataFrame({"value": [v for v, _ in latest.values()],
                             "fetched_at_utc": pd.to_datetime([f for _, f in latest.values()], utc=True)},
                            index=index).astype({"value": float})

    def add_telemetry(self, rows) -> int:
        """Store one scan's telemetry rows (feeds.fleet.scan.Telemetry)."""
        data = [(r.ip, r.pool, iso(r.at_utc), int(r.reachable), None if r.mining is None else int(r.mining), r.watts,
                 r.hashrate_th, r.temp_c, r.error, r.power_target_w) for r in rows]
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO telemetry (ip, pool, at_utc, reachable, mining, watts, hashrate_th, "
                                  "temp_c, error, power_target_w) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data)
            self.conn.executemany("INSERT OR REPLACE INTO telemetry_latest (ip, at_utc) VALUES (?, ?)",
                                  [(d[0], d[2]) for d in data])
        return len(data)

    def log_commands(self, at: datetime, decision_seq: int | None, entries: list[tuple]) -> None:
        """Audit rows (ip, pool, command, result, detail, attempts) for one apply."""
        with self._transaction():
            self.conn.executemany(
                "INSERT INTO fleet_log (at_utc, decision_seq, ip, pool, command, result, detail, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(iso(at), decision_seq, *e) for e in entries])

    def add_hold(self, hold: dict, at: datetime) -> int:
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO holds (pool, ip, units, off, mode, until_utc, reason, created_at_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (hold.get("pool"), hold.get("ip"), hold.get("units"), int(bool(hold.get("off"))), hold.get("mode"),
                 hold.get("until_utc"), hold["reason"], iso(at)))
        return int(cur.lastrowid)

    def remove_hold(self, hold_id: int, at: datetime) -> bool:
        with self._transaction():
            cur = self.conn.execute("UPDATE holds SET removed_at_utc = ? WHERE id = ? AND removed_at_utc IS NULL",
                                    (iso(at), hold_id))
        return cur.rowcount == 1

    @_reading
    def active_holds(self, at: datetime) -> pd.DataFrame:
        """Holds not removed and not expired at `at`."""
        return pd.read_sql_query("SELECT * FROM holds WHERE removed_at_utc IS NULL AND (until_utc IS NULL OR until_utc > ?) "
                                 "ORDER BY id", self.conn, params=[iso(at)])

    @_reading
    def last_apply(self) -> pd.DataFrame:
        """The audit rows of the apply stored last (the rows sharing its time and decision); the console's audited
        actions (command 'console: …') are not applies. Last stored, not latest time: the clock may step back."""
        apply = "command NOT LIKE 'console:%'"
        last = self.conn.execute(f"SELECT at_utc, decision_seq FROM fleet_log WHERE {apply} ORDER BY id DESC LIMIT 1").fetchone()
        if last is None:
            return pd.read_sql_query("SELECT * FROM fleet_log WHERE 0", self.conn)
        return pd.read_sql_query(f"SELECT * FROM fleet_log WHERE {apply} AND at_utc = ? AND decision_seq IS ? ORDER BY id",
                                 self.conn, params=list(last))

    @_reading
    def fleet_log(self, limit: int = 200) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM fleet_log ORDER BY id DESC LIMIT ?", self.conn, params=[limit]).iloc[::-1]

    @_reading
    def last_ok_commands(self) -> pd.DataFrame:
        """Every machine's newest successful command in the audit (what it was last set to)."""
        return pd.read_sql_query(
            "SELECT f.* FROM fleet_log f JOIN (SELECT ip, MAX(id) AS id FROM fleet_log WHERE result = 'ok' GROUP BY ip) l "
            "ON f.id = l.id ORDER BY f.ip", self.conn)

    @_reading
    def telemetry_ips(self) -> set[str]:
        """Every machine that has telemetry stored."""
        return {row[0] for row in self.conn.execute("SELECT DISTINCT ip FROM telemetry")}

    @_reading
    def telemetry_since(self, since: datetime) -> pd.DataFrame:
        """Every telemetry row at or after `since` (for the modes' measured figures)."""
        return pd.read_sql_query("SELECT * FROM telemetry WHERE at_utc >= ? ORDER BY at_utc, ip", self.conn,
                                 params=[iso(since)])

    @_reading
    def latest_telemetry(self) -> pd.DataFrame:
        """Every machine's telemetry row of the scan stored last (not the latest time: the clock may step back)."""
        return pd.read_sql_query(
            "SELECT t.* FROM telemetry t JOIN telemetry_latest l ON t.ip = l.ip AND t.at_utc = l.at_utc "
            "ORDER BY t.pool, t.ip", self.conn)

    @_reading
    def revisions(self, series: str) -> pd.DataFrame:
        """Values of `series` that a later revision replaced (oldest first), with when each was replaced."""
        return pd.read_sql_query("SELECT * FROM revisions WHERE series = ? ORDER BY interval_start_utc, fetched_at_utc",
                                 self.conn, params=[series])

    @_reading
    def quarantined(self, limit: int = 50) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT id, group_name, source, fetched_at_utc, reason, length(payload) AS payload_bytes FROM quarantine "
            "ORDER BY id DESC LIMIT ?", self.conn, params=[limit])



def _obs(row: tuple) -> Observation:
    series, start, value, unit, source, fetched = row
    return Observation(series, parse_iso(start), float(value), unit, source, parse_iso(fetched))
