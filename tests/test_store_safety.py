"""A damaged store is noticed and contained; backups are consistent copies; files are private.

The damage is real: pages in the middle of a store with a year of prices are overwritten with garbage."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hashpivot.feeds.importer import import_files
from hashpivot.feeds.store import Store

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT / "feeds" / "data" / "btc_usd_hourly.csv.gz"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def damaged(tmp_path) -> Path:
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        import_files([BTC], store)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # overwrite four pages in the middle
        fh.seek(size // 2 - size // 2 % 4096)
        fh.write(os.urandom(4 * 4096))
    return path


def test_a_store_damaged_in_its_middle_is_refused_by_tick_and_check_and_never_tracebacks(damaged, tmp_path):
    with Store(damaged) as store:
        assert store.check(quick=True) != []
    before = damaged.read_bytes()
    for args, expected in ((["tick", 'daemon.metrics_port="off"'], "is damaged"),
                           (["store", "check"], "is damaged"),
                           (["feeds", "show", "--series", "btc_usd"], "cannot read"),
                           (["decisions", "show"], None)):
        command = [a for a in args if "=" not in a]
        sets = [x for a in args if "=" in a for x in ("--set", a)]
        proc = cli(*command, *sets, "--db", str(damaged), cwd=tmp_path)
        assert "Traceback" not in proc.stderr, proc.stderr
        if expected is not None:
            assert proc.returncode == 1 and expected in proc.stderr and str(damaged) in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
    assert damaged.read_bytes() == before  # nothing written into the damaged store


def test_a_backup_is_a_sound_private_copy_and_old_backups_are_pruned(tmp_path):
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        import_files([BTC], store)
        rows = store.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for _ in range(3):
        proc = cli("store", "backup", "--db", str(path), "--set", "daemon.keep_backups=2", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    backups = sorted((tmp_path / "backups").glob("store-*.sqlite"))
    assert 1 <= len(backups) <= 2  # at most keep_backups (two taken in one second share a name)
    copy = sqlite3.connect(backups[-1])
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == rows
    copy.close()
    assert stat.S_IMODE(backups[-1].stat().st_mode) == 0o600
    assert cli("store", "check", "--full", "--db", str(path), cwd=tmp_path).stdout.startswith(f"store {path}: ok")


def test_a_backup_never_overwrites_a_file_or_the_store(tmp_path):
    """A drill: `store backup --to notes.txt` replaced the file, and `--db s.sqlite --to s.sqlite` said 'wrote'."""
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        import_files([BTC], store)
    before = path.read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    proc = cli("store", "backup", "--db", str(path), "--to", str(notes), cwd=tmp_path)
    assert proc.returncode == 1 and "exists; give a new file name" in proc.stderr and notes.read_text() == "keep me\n"
    proc = cli("store", "backup", "--db", str(path), "--to", str(path), cwd=tmp_path)
    assert proc.returncode == 1 and "is the store itself" in proc.stderr and path.read_bytes() == before
    assert cli("store", "backup", "--db", str(path), "--to", str(tmp_path / "b.sqlite"), cwd=tmp_path).returncode == 0
