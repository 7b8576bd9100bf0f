"""Run-time switch of `fleet.apply` (off / dry-run / on) without editing the site config: the console writes
`<store>.fleet-apply` (JSON: apply, at_utc, by, reason; temp file and rename), and every decision of `run` and
`tick` reads it, so a switch takes effect at the next decision and survives a restart. Deleting the file goes
back to the config's value. `--set fleet.apply=…` on the daemon's command line pins the value: the switch file is
then ignored (with a warning naming it) and the console refuses to switch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import InputError
from hashpivot.optimizer.service.publish import write_atomic

log = logging.getLogger(__name__)

APPLY_MODES = ("off", "dry-run", "on")


def override_path(db: Path) -> Path:
    db = Path(db)
    return db.with_name(db.name + ".fleet-apply")


def read_override(db: Path) -> dict | None:
    """The switch file's content, or None when there is none (or it is unreadable: logged, the config holds)."""
    path = override_path(db)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("fleet.apply override %s unreadable (%s); the config's fleet.apply holds", path, exc)
        return None
    if not isinstance(data, dict) or data.get("apply") not in APPLY_MODES:
        log.warning("fleet.apply override %s: 'apply' must be one of %s; the config's fleet.apply holds", path, APPLY_MODES)
        return None
    return data


def _in_force(cfg: SiteConfig, data: dict | None) -> tuple[str, dict | None]:
    """The fleet.apply in force given the switch file's content, and that content as it counts (None when there is
    none or `--set fleet.apply` pinned the config's value)."""
    if data and cfg.fleet.apply_pinned:
        return cfg.fleet.apply, None
    return (data["apply"] if data else cfg.fleet.apply), data


def effective_apply(cfg: SiteConfig, db: Path) -> tuple[str, dict | None]:
    """The fleet.apply in force (the switch file's, else the config's) and the switch file's content (None
    when there is none or `--set fleet.apply` pinned the config's value). Logs nothing: the console calls it
    on every page."""
    return _in_force(cfg, read_override(db))


def with_override(cfg: SiteConfig, db: Path) -> SiteConfig:
    """The config a decision is taken and applied with: fleet.apply as switched, if it was; logged once per
    decision when the switch file and the config disagree."""
    data = read_override(db)
    mode, used = _in_force(cfg, data)
    if data and data["apply"] != cfg.fleet.apply:
        who = (override_path(db), data.get("by", "?"), data.get("at_utc", "?"))
        if used is None:
            log.warning("fleet.apply %r from --set holds: the console's switch to %r in %s (by %s at %s) is ignored "
                        "while the command line sets fleet.apply", cfg.fleet.apply, data["apply"], *who)
        else:
            log.info("fleet.apply %r from the console's switch in %s (by %s at %s); the config says %r", mode, *who,
                     cfg.fleet.apply)
    if mode == cfg.fleet.apply:
        return cfg
    return cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"apply": mode})})


def write_override(db: Path, mode: str, at_utc: str, by: str, reason: str) -> dict:
    if mode not in APPLY_MODES:
        raise InputError(f"fleet.apply {mode!r}: must be one of {', '.join(APPLY_MODES)}")
    data = {"apply": mode, "at_utc": at_utc, "by": by, "reason": reason}
    write_atomic(override_path(db), json.dumps(data) + "\n", mode=0o640)
    return data
