"""`hashpivot store check` and `hashpivot store backup`: is the store sound, and a consistent copy of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DbOpt,
    SetOpt,
    load_site,
    open_store,
    operator_errors,
    store_app,
)


@store_app.command("check", epilog=(
    "**Examples**\n\n    hashpivot store check --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot store check --full   # every page and index (slower)"))
@operator_errors
def store_check(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                full: Annotated[bool, typer.Option("--full", help="SQLite's integrity_check instead of quick_check")] = False) -> None:
    """Check the store's pages with SQLite's own check; exit 1 and name the damage if it is not sound."""
    from hashpivot.models.errors import StoreError

    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        problems = store.check(quick=not full)
        where = store.path
    if problems:
        raise StoreError(f"store {where} is damaged: {'; '.join(problems[:5])}"
                         f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}; restore the last good "
                         "backup (README: Reliability)")
    typer.echo(f"store {where}: ok ({'integrity_check' if full else 'quick_check'})")


@store_app.command("backup", epilog=(
    "**Examples**\n\n    hashpivot store backup --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot store backup --to /mnt/backups/hashpivot-$(date +%F).sqlite"))
@operator_errors
def store_backup(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                 to: Annotated[Optional[Path], typer.Option(help="backup file (default: daemon.backup_dir/store-<UTC time>.sqlite)")] = None) -> None:
    """A consistent online copy of the store (SQLite's backup API; the daemon may keep running), mode 0600."""
    from hashpivot.models.errors import InputError
    from hashpivot.optimizer.service.daemon import backup_job, store_path

    cfg = load_site(config, set_)
    path = store_path(cfg, db)
    if to is None:
        with open_store(cfg, db, create=False):
            pass
        target = backup_job(cfg, path)
    else:  # like solve --output: an explicit file goes into a folder that exists (a typo must not make one)
        if to.is_dir():
            raise InputError(f"--to {to}: is a directory; give the backup file's name")
        if not to.parent.is_dir():
            raise InputError(f"--to {to}: the directory {to.parent} does not exist")
        if to.exists():  # an earlier backup, another file or the store itself: never overwritten
            same = Path(path).exists() and to.resolve() == Path(path).resolve()
            raise InputError(f"--to {to}: {'is the store itself' if same else 'exists'}; give a new file name (a "
                             "backup never overwrites a file)")
        with open_store(cfg, db, create=False) as store:
            target = store.backup(to)
    typer.echo(f"wrote {target}")
