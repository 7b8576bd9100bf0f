"""Published decision files: group-readable only (0640 unless configured), under the store's directory when
`daemon.publish_dir` is relative, written whole."""

from __future__ import annotations

import stat
from pathlib import Path

from hashpivot.models.config import load_config
from hashpivot.models.decision import Decision, SiteState
from hashpivot.optimizer.service.daemon import publish_dir
from hashpivot.optimizer.service.publish import publish_files

ROOT = Path(__file__).resolve().parents[1]


def doc() -> Decision:
    return Decision(schema_version=2, status="safe", site=SiteState(cap_kw=1, it_power_kw=0, site_power_kw=0),
                    interval_start_utc="2024-01-01T00:00:00Z", horizon_steps=1, step_minutes=60, pools=[])


def test_decision_files_are_group_readable_only(tmp_path):
    path = publish_files(doc(), 7, tmp_path / "out")
    for p in (path, tmp_path / "out" / "latest.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert not list((tmp_path / "out").glob(".*"))  # no temp file left behind
    assert stat.S_IMODE(publish_files(doc(), 8, tmp_path / "o2", mode=0o600).stat().st_mode) == 0o600


def test_a_relative_publish_dir_is_under_the_store_not_the_working_directory(tmp_path):
    cfg = load_config(ROOT / "configs" / "site.toml")
    assert publish_dir(cfg, tmp_path / "var" / "store.sqlite") == tmp_path / "var" / "decisions"
    absolute = load_config(ROOT / "configs" / "site.toml", [f"daemon.publish_dir='{tmp_path / 'pub'}'"])
    assert publish_dir(absolute, tmp_path / "var" / "store.sqlite") == tmp_path / "pub"


def test_the_lock_file_is_private_and_non_loopback_metrics_are_recognised(tmp_path):
    from hashpivot.optimizer.service.daemon import _loopback
    from hashpivot.optimizer.service.lock import InstanceLock

    with InstanceLock(tmp_path / "store.sqlite") as lock:
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and _loopback("127.0.3.9")
    assert not _loopback("0.0.0.0") and not _loopback("10.0.0.5") and not _loopback("metrics.example.org")
