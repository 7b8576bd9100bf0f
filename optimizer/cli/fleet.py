"""`hashpivot fleet scan`, `fleet status` and `fleet simulate`: the machines behind the ASIC pools, read
through pyasic, and a simulated LuxOS / VNish farm on loopback to rehearse against."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.models.errors import ConfigError
from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    VerboseOpt,
    bad_choice,
    fleet_app,
    frame_out,
    load_site,
    open_store,
    operator_errors,
    setup_logging,
)

InventoryOpt = Annotated[Optional[Path], typer.Option(help="inventory CSV ip,pool[,hall,rack,firmware] (default: fleet.inventory)")]


def _machines(cfg, inventory: Optional[Path]):
    """The machines to read: `--inventory` or fleet.inventory, plus the addresses of [[fleet.ranges]]."""
    from hashpivot.feeds.fleet.inventory import fleet_machines

    if inventory is None and not cfg.fleet.configured:
        raise ConfigError("no fleet: give --inventory, or set fleet.inventory (a CSV ip,pool[,hall,rack,firmware]) "
                          "or [[fleet.ranges]] (cidr, pool)")
    return fleet_machines(cfg, inventory)


@fleet_app.command("scan", epilog=(
    "**Examples**\n\n    hashpivot fleet scan --inventory fleet.csv --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot fleet scan --set fleet.concurrency=200 --set fleet.timeout_s=3 --format json"))
@operator_errors
def fleet_scan(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, inventory: InventoryOpt = None,
               format: FormatOpt = OutputFormat.table, verbose: VerboseOpt = False) -> None:
    """Read every machine of the inventory once (pyasic, bounded concurrency) and store its telemetry;
    prints the per-pool status."""
    setup_logging(verbose)
    from hashpivot.feeds.fleet.scan import scan_into, use_password
    from hashpivot.feeds.fleet.status import pool_status
    from hashpivot.models.clock import now_utc

    cfg = load_site(config, set_)
    machines = _machines(cfg, inventory)
    use_password(cfg)
    with open_store(cfg, db) as store:
        rows = scan_into(store, machines, now_utc(), cfg.fleet.concurrency, cfg.fleet.timeout_s)
        telemetry = store.latest_telemetry()
    telemetry = telemetry[telemetry["ip"].isin({m.ip for m in machines})]  # what was scanned, not every address ever
    frame_out(pool_status(cfg, telemetry), format, f"fleet: {len(rows)} machines scanned")


@fleet_app.command("status", epilog=(
    "**Examples**\n\n    hashpivot fleet status --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot fleet status --pool s19xp --format csv"))
@operator_errors
def fleet_status(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                 pool: Annotated[Optional[str], typer.Option(help="one ASIC pool")] = None,
                 format: FormatOpt = OutputFormat.table) -> None:
    """Per pool, from the last scan: machines total / healthy / mining / sleeping / unreachable / erroring,
    measured kW and TH/s against the config's stock figures for the machines mining, and each mode's measured
    W and TH/s (median over fleet.learn_window_s) against the config's."""
    from datetime import timedelta

    import pandas as pd

    from hashpivot.feeds.fleet.inventory import in_fleet
    from hashpivot.feeds.fleet.status import learned_modes, pool_status

    cfg = load_site(config, set_)
    if pool is not None and pool not in {p.name for p in cfg.asic_pools}:
        raise bad_choice("hashpivot fleet status", "--pool", pool, tuple(p.name for p in cfg.asic_pools))
    with open_store(cfg, db, create=False) as store:
        telemetry = in_fleet(store.latest_telemetry(), cfg)
        last = pd.to_datetime(telemetry["at_utc"], utc=True).max() if not telemetry.empty else None
        learned = (learned_modes(cfg, store.telemetry_since(last - timedelta(seconds=cfg.fleet.learn_window_s)))
                   if last is not None else {})
    if pool is not None:
        telemetry = telemetry[telemetry["pool"] == pool]
    if telemetry.empty:
        typer.echo("no fleet telemetry" + (f" for pool {pool}" if pool else "") + " yet (run `hashpivot fleet scan`)", err=True)
    frame_out(pool_status(cfg, telemetry, learned), format, "fleet")


@fleet_app.command("simulate", epilog=(
    "**Examples**\n\n    hashpivot fleet simulate --machines 200 --inventory sim-fleet.csv\n\n"
    "    hashpivot fleet simulate --machines 2000 --faulty 0.05 --pool s19xp --seconds 600\n\n"
    "    sudo hashpivot fleet simulate --machines 200 --vnish-fraction 0.5 --first-ip 127.0.2.1   # VNish needs port 80"))
@operator_errors
def fleet_simulate(
    machines: Annotated[int, typer.Option(help="how many simulated machines")] = 100,
    first_ip: Annotated[str, typer.Option(help="the first machine's loopback address; the others follow it")] = "127.0.1.1",
    inventory: Annotated[Path, typer.Option(help="write the farm's inventory CSV here")] = Path("sim-fleet.csv"),
    pool: Annotated[str, typer.Option(help="the ASIC pool the machines belong to")] = "s19xp",
    hall: Annotated[str, typer.Option(help="their hall")] = "hall-a",
    faulty: Annotated[float, typer.Option(help="share of machines with a fault (unreachable, slow, error, reboot, "
                                                   "refuse_profile)")] = 0.0,
    vnish_fraction: Annotated[float, typer.Option(help="share of machines running VNish (HTTP on port 80 and 4028; port 80 "
                                                       "needs root or CAP_NET_BIND_SERVICE); the rest run LuxOS")] = 0.0,
    seconds: Annotated[Optional[float], typer.Option(help="stop after this long (default: until Ctrl-C)")] = None,
    seed: Annotated[int, typer.Option(help="which machines get which fault")] = 0,
) -> None:
    """Run a simulated farm on loopback (each machine on its own 127.x.y.z: LuxOS on port 4028, VNish on
    ports 80 and 4028) to rehearse `fleet scan` and `fleet apply` against before pointing hashpivot at a
    real site. The inventory's firmware column says which machine runs which."""
    import asyncio

    from hashpivot.feeds.fleet.farm import Farm, write_inventory
    from hashpivot.feeds.fleet.farm_mix import LABELS, mixed_farm
    from hashpivot.models.errors import InputError

    if not 1 <= machines <= 60_000:
        raise InputError(f"--machines {machines}: must be between 1 and 60,000")
    if not 0 <= faulty <= 1:
        raise InputError(f"--faulty {faulty}: must be a share between 0 and 1")
    if not 0 <= vnish_fraction <= 1:
        raise InputError(f"--vnish-fraction {vnish_fraction}: must be a share between 0 and 1")
    if not first_ip.startswith("127."):
        raise InputError(f"--first-ip {first_ip}: the simulated farm listens on loopback only (127.x.y.z)")
    farm_machines = mixed_farm(machines, first_ip, vnish_fraction, faulty, seed)
    counts = {fw: sum(m.firmware == fw for m in farm_machines) for fw in LABELS}
    what = (f"{machines:,} LuxOS machines" if counts["vnish"] == 0 else
            f"{machines:,} machines ({', '.join(f'{n:,} {LABELS[fw]}' for fw, n in counts.items() if n)})")

    async def serve() -> None:
        try:
            farm = await Farm(farm_machines).start()
        except PermissionError as exc:
            raise InputError(f"cannot listen on {exc.strerror}: VNish machines need port 80 (run as root, grant "
                             "CAP_NET_BIND_SERVICE, or --vnish-fraction 0)") from None
        except OSError as exc:
            raise InputError(f"cannot listen on {exc.strerror}: another farm or miner API there? choose --first-ip") from None
        try:  # only once the farm listens: a farm that cannot start leaves an existing inventory as it was
            write_inventory(farm_machines, inventory, pool, hall)
        except OSError as exc:
            await farm.stop()
            raise InputError(f"--inventory {inventory}: cannot write ({exc.strerror})") from None
        ports = "port 4028" if counts["vnish"] == 0 else "ports 4028 (LuxOS) and 80 + 4028 (VNish)"
        typer.echo(f"simulating {what} on {farm_machines[0].ip} .. {farm_machines[-1].ip} {ports}; "
                   f"inventory {inventory}; Ctrl-C stops", err=True)
        try:
            await asyncio.sleep(seconds if seconds is not None else 10**9)
        finally:
            await farm.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


@fleet_app.command("apply", epilog=(
    "**Examples**\n\n    hashpivot fleet apply --dry-run --inventory fleet.csv --db store.sqlite   # the plan, nothing sent\n\n"
    "    hashpivot fleet apply decision.json --inventory fleet.csv --db store.sqlite"))
@operator_errors
def fleet_apply(
    decision: Annotated[Optional[Path], typer.Argument(help="a decision JSON (default: the store's last decision)")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, inventory: InventoryOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan and log the commands, send nothing")] = False,
    format: FormatOpt = OutputFormat.table, verbose: VerboseOpt = False,
) -> None:
    """Turn step 0 of a decision into commands to the machines: scan, plan (least churn, least efficient off
    first), reductions first, raises in waves under the interconnect cap and the ramp limit, every command read
    back; every command (or, in a dry run, every planned one) is written to the audit log (`fleet log`).
    Then the GPU pools' actuators (fleet.gpu_actuators: Vast.ai listings, an operator command), audited alike;
    with GPU actuators and no inventory, only they run."""
    setup_logging(verbose)
    import pandas as pd

    from hashpivot.models.clock import now_utc
    from hashpivot.models.decision import load_decision
    from hashpivot.models.errors import InputError
    from hashpivot.optimizer.service.fleet_apply import apply_decision

    cfg = load_site(config, set_)
    gpus_only = inventory is None and not cfg.fleet.configured and bool(cfg.fleet.gpu_actuators)
    machines = [] if gpus_only else _machines(cfg, inventory)
    with open_store(cfg, db, create=decision is not None) as store:  # the store's last decision: it must exist
        seq = None
        if decision is not None:
            try:
                doc = load_decision(decision.read_bytes(), str(decision))
            except OSError as exc:
                raise InputError(f"{decision}: cannot read ({exc.strerror})") from None
        else:
            last = store.last_decision()
            if last is None:
                raise InputError("no decision to apply: give a decision JSON or run `hashpivot tick` first")
            seq, doc = last
        results, n_waves = apply_decision(cfg, store, machines, doc, seq, dry_run, now_utc())
    df = pd.DataFrame(results, columns=["ip", "pool", "command", "result", "detail", "attempts"])
    frame_out(df, format, f"fleet apply{' (dry run: nothing sent)' if dry_run else ''}: {len(df)} commands in {n_waves} wave{'' if n_waves == 1 else 's'}")
    counts = df["result"].value_counts().to_dict() if not df.empty else {}
    problems = []
    if counts.get("failed"):
        problems.append(f"{counts['failed']} commands failed; those machines are left out of the next decision")
    if counts.get("unavailable"):
        problems.append(f"{counts['unavailable']} machines the decision needs cannot be commanded (unreachable or "
                        "erroring; the detail says why)")
    if counts.get("stopped"):
        problems.append(f"{counts['stopped']} planned commands not sent: the stop file {cfg.fleet.stop_file} exists")
    if counts.get("deferred"):
        typer.echo(f"note: {counts['deferred']} commands deferred to the next decision (the detail names the limit)",
                   err=True)
    if problems:
        typer.echo("\n".join(f"error: {p} (see `hashpivot fleet log`)" for p in problems), err=True)
        raise typer.Exit(1)


@fleet_app.command("log", epilog="**Examples**\n\n    hashpivot fleet log --db store.sqlite --limit 50 --format csv")
@operator_errors
def fleet_log(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
              limit: Annotated[int, typer.Option(min=1, help="latest N commands")] = 200, format: FormatOpt = OutputFormat.table) -> None:
    """The audit log: every command sent to a machine (time, decision, machine, command, result, detail)."""
    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        log = store.fleet_log(limit)
    frame_out(log.astype({"decision_seq": "Int64"}), format, "fleet log")  # 13, not 13.0 beside the console's rows
