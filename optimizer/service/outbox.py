"""The outbox: a decision and its "publish to files / send to the webhook" marks are committed together
(`Store.add_decision`), and `drain` publishes whatever is stored but not yet published, oldest first, at
start-up and after every decision. Publishing is idempotent (the same seq gives the same bytes), so kill -9
anywhere between the commit and the last write loses nothing: the next pass publishes it (files exactly
once in content, the webhook at least once, with the seq as its delivery id)."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hashpivot.feeds.fleet.inventory import fleet_machines
from hashpivot.feeds.store import Store
from hashpivot.models.clock import now_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import PublishError
from hashpivot.optimizer.service.fleet_apply import apply_decision
from hashpivot.optimizer.service.publish import publish_files, send_webhook

log = logging.getLogger(__name__)

FILES, WEBHOOK, FLEET = "files", "webhook", "fleet"


def targets(cfg: SiteConfig) -> list[str]:
    """Where every new decision must be published (and applied to the fleet, with `fleet.apply` on or dry-run)."""
    return [FILES] + ([WEBHOOK] if cfg.daemon.webhook_url else []) + ([FLEET] if fleet_applies(cfg) else [])


def fleet_applies(cfg: SiteConfig) -> bool:
    """The daemon applies decisions to the fleet: `fleet.apply` on or dry-run, and machines (an inventory) or GPU
    actuators to drive."""
    return cfg.fleet.apply != "off" and (cfg.fleet.configured or bool(cfg.fleet.gpu_actuators))


@dataclass
class Drained:
    published: list[int] = field(default_factory=list)  # seqs written to publish_dir this pass
    sent: list[int] = field(default_factory=list)  # seqs the webhook accepted this pass
    failures: list[str] = field(default_factory=list)


def remove_stale_temp_files(directory: Path) -> int:
    """Temp files a killed write left behind (`.decision-….json.*`, `.latest.json.*`)."""
    stale = list(directory.glob(".decision-*.json.*")) + list(directory.glob(".latest.json.*")) if directory.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def drain(cfg: SiteConfig, store: Store, directory: Path, limit: int = 200, on_apply=None) -> Drained:
    """Publish every pending decision, oldest first: files, then the webhook. A failure stops that target
    for this pass (order is kept: latest.json never goes back in time), is recorded with the decision and
    raised as one PublishError after the other target had its turn. `on_apply(seconds)` hears how long a
    fleet apply took (the metrics' gauge)."""
    out = Drained()
    removed = remove_stale_temp_files(directory)
    if removed:
        log.info("publish removed_stale_temp_files=%d dir=%s", removed, directory)
    mode = int(cfg.daemon.publish_file_mode, 8)
    for seq, doc in store.pending(FILES, limit):
        try:
            publish_files(doc, seq, directory, cfg.daemon.keep_published, mode)
        except OSError as exc:
            free = shutil.disk_usage(directory).free / 1e6 if directory.exists() else 0.0
            reason = f"cannot write decision {seq} to {directory} ({exc.strerror}; {free:,.1f} MB free)"
            store.mark_failed(seq, FILES, reason)
            out.failures.append(reason)
            break
        store.mark_published(seq, FILES, now_utc())
        out.published.append(seq)
    if cfg.daemon.webhook_url:
        for seq, doc in store.pending(WEBHOOK, limit):
            reason = send_webhook(cfg.daemon.webhook_url, doc, seq, cfg.daemon.webhook_timeout_s, cfg.daemon.webhook_retries)
            if reason is not None:
                store.mark_failed(seq, WEBHOOK, reason)
                out.failures.append(f"webhook did not take decision {seq} ({reason}); it is sent again next pass")
                break
            store.mark_published(seq, WEBHOOK, now_utc())
            out.sent.append(seq)
    fleet_pending = store.pending(FLEET, limit) if fleet_applies(cfg) else []
    for seq, _ in fleet_pending[:-1]:  # only the newest decision is applied: an older one is superseded
        store.mark_published(seq, FLEET, now_utc())
    if fleet_pending:
        seq, doc = fleet_pending[-1]
        started = time.monotonic()
        machines = fleet_machines(cfg) if cfg.fleet.configured else []  # GPUs only
        entries, _ = apply_decision(cfg, store, machines, doc, seq,
                                    cfg.fleet.apply == "dry-run", now_utc())
        if on_apply is not None:
            on_apply(time.monotonic() - started)
        store.mark_published(seq, FLEET, now_utc())
        failed = [e for e in entries if e[3] == "failed"]
        if failed:
            out.failures.append(f"fleet: {len(failed)} of {len(entries)} commands for decision {seq} failed "
                                "(`hashpivot fleet log`); those machines show in the next scan")
    if out.published or out.sent:
        log.info("publish files=%s webhook=%s", _seqs(out.published), _seqs(out.sent))
    if out.failures:
        raise PublishError("; ".join(out.failures))
    return out


def _seqs(seqs: list[int]) -> str:
    return "-" if not seqs else (str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}")
