"""`hashpivot hold add`, `hold list`, `hold remove`: an operator's holds on a pool or a machine."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    frame_out,
    hold_app,
    load_site,
    open_store,
    operator_errors,
    utc,
)


@hold_app.command("add", epilog=(
    "**Examples**\n\n    hashpivot hold add --pool s19xp --off --until 2026-12-03T06:00Z --reason \"hall-a cooling repair\"\n\n"
    "    hashpivot hold add --pool s21 --units 8000 --reason \"PDU 3 derated\"\n\n"
    "    hashpivot hold add --machine 10.20.3.17 --off --reason \"hashboard RMA\""))
@operator_errors
def hold_add(
    reason: Annotated[str, typer.Option(help="why (shown in every decision it changes)")],
    pool: Annotated[Optional[str], typer.Option(help="an ASIC pool")] = None,
    machine: Annotated[Optional[str], typer.Option(help="one machine's IP: with --off, fleet apply puts it to sleep if it "
                                                        "is mining and never wakes it; without, never commands it")] = None,
    units: Annotated[Optional[int], typer.Option(help="exactly this many units of the pool run (a cap and a must-run floor)")] = None,
    off: Annotated[bool, typer.Option("--off", help="the pool (or machine) stays off")] = False,
    mode: Annotated[Optional[str], typer.Option(help="the pool runs in this mode only")] = None,
    until: Annotated[Optional[str], typer.Option(help="UTC ISO 8601 time the hold ends (default: until removed)")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
) -> None:
    """Add a hold: the model honours a pool hold as a bound (at once, whatever the ramp limit), and so does
    `fleet apply`; a machine held --off is put to sleep and kept asleep, a machine held without it is never
    commanded."""
    import ipaddress

    from hashpivot.models.calendar import iso_utc
    from hashpivot.models.clock import now_utc
    from hashpivot.models.errors import InputError
    from hashpivot.optimizer.service.holds import check_hold

    if (pool is None) == (machine is None):
        raise InputError("give exactly one of --pool or --machine")
    if machine is not None:
        try:
            ipaddress.ip_address(machine)
        except ValueError:
            raise InputError(f"--machine {machine!r}: not an IP address") from None
    if sum([units is not None, off, mode is not None]) != 1 and pool is not None:
        raise InputError("a pool hold takes exactly one of --units N, --off or --mode M")
    if machine is not None and (units is not None or mode is not None):
        raise InputError("a machine hold takes --off (kept asleep) or nothing (never commanded); --units and --mode "
                         "are for pools")
    cfg = load_site(config, set_)
    hold = {"pool": pool, "ip": machine, "units": units, "off": off, "mode": mode,
            "until_utc": iso_utc(utc(until, "--until")) if until is not None else None, "reason": reason}
    check_hold(cfg, hold, now_utc())
    with open_store(cfg, db) as store:
        new = store.created  # a mistyped --db starts a store the daemon never reads: say so
        hold_id = store.add_hold(hold, now_utc())
    typer.echo(f"hold {hold_id} added")
    if new:
        typer.echo(f"note: {store.path} did not exist and was created: the daemon must use this store (--db or "
                   "feeds.db_path) for the hold to apply", err=True)


@hold_app.command("list", epilog="**Examples**\n\n    hashpivot hold list --db store.sqlite --format json")
@operator_errors
def hold_list(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
              format: FormatOpt = OutputFormat.table) -> None:
    """The holds in force now."""
    from hashpivot.models.clock import now_utc

    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        holds = store.active_holds(now_utc()).drop(columns=["removed_at_utc"])
    holds = holds.astype({"units": "Int64", "off": bool})  # 10 units, not 10.0; off true/false, not 1/0
    frame_out(holds, format, "holds")


@hold_app.command("remove", epilog="**Examples**\n\n    hashpivot hold remove 3 --db store.sqlite")
@operator_errors
def hold_remove(hold_id: Annotated[int, typer.Argument(help="the hold's id (hold list)")], config: ConfigOpt = DEFAULT_CONFIG,
                set_: SetOpt = None, db: DbOpt = None) -> None:
    """End a hold now."""
    from hashpivot.models.clock import now_utc
    from hashpivot.models.errors import InputError

    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        if not store.remove_hold(hold_id, now_utc()):
            raise InputError(f"no hold {hold_id} in force (hashpivot hold list shows them)")
    typer.echo(f"hold {hold_id} removed")
