"""`hashpivot feeds …`: collect, show, check and import market data in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    VerboseOpt,
    feeds_app,
    frame_out,
    load_site,
    open_store,
    operator_errors,
    setup_logging,
    utc,
)


@feeds_app.command("fetch", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds fetch\n\n"
    "    hashpivot feeds fetch --series btc --series network --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot feeds fetch --set feeds.sources.coinbase.enabled=false --format json"))
@operator_errors
def feeds_fetch(
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    db: DbOpt = None,
    series: Annotated[Optional[list[str]], typer.Option(help="feed groups: btc, network, power_rt, power_da, power_rt_nyiso, weather, gpu, load, load_rt, load_forecast")] = None,
    format: FormatOpt = OutputFormat.table,
    verbose: VerboseOpt = False,
) -> None:
    """One collection pass: every source of each group in fallback order, validated, stored.

    Exits 1 only if a required series (BTC, network, hashprice, the site's real-time price, GPU rates the
    config uses) has no fresh value afterwards.
    """
    setup_logging(verbose)
    import pandas as pd

    from hashpivot.feeds.collect import check_groups, collect, status
    cfg = load_site(config, set_)
    groups = check_groups(series)  # before the store is opened: a typo creates nothing
    with open_store(cfg, db) as store:
        results = collect(cfg, store, list(groups))
        stale = [s for s in status(cfg, store) if s.required and not s.fresh]
    df = pd.DataFrame([
        {"group": r.group, "ok": r.ok, "source": r.source, "rows": r.rows, "fallback": r.fallback,
         "failures": "; ".join(f"{src}: {why}" for src, why in r.failures), "duration_s": round(r.duration_s, 3)}
        for r in results
    ])
    frame_out(df, format, "feeds fetch")
    if stale:
        typer.echo("error: no fresh value for required series: " + ", ".join(s.series for s in stale), err=True)
        raise typer.Exit(1)


@feeds_app.command("show", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds show --series btc_usd --since 2024-08-01\n\n"
    "    hashpivot feeds show --series power_rt_usd_per_mwh.HB_WEST --format csv > prices.csv"))
@operator_errors
def feeds_show(
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    db: DbOpt = None,
    series: Annotated[Optional[list[str]], typer.Option(help="series name or family (repeatable; default: all)")] = None,
    since: Annotated[Optional[str], typer.Option(help="first interval start, UTC ISO 8601")] = None,
    limit: Annotated[int, typer.Option(help="at most this many rows per series (latest)")] = 50,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Stored observations: interval, value, unit, which source supplied it and when it was fetched."""
    import pandas as pd

    from hashpivot.models.errors import InputError

    cfg = load_site(config, set_)
    since_ts = utc(since, "--since") if since else None
    with open_store(cfg, db, create=False) as store:
        stored = sorted(store.series_names())
        for name in series or []:  # a typo is an error, not an empty table
            if not any(s == name or s.startswith(name + ".") for s in stored):
                raise InputError(f"--series {name!r}: no such series or family in the store; stored: {', '.join(stored) or 'none'}")
        frames = [store.history(s, since=since_ts) for s in (series or [None])]
    df = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) else pd.DataFrame(
        columns=["series", "interval_start_utc", "value", "unit", "source", "fetched_at_utc"])
    if not df.empty:
        df = df.groupby("series", group_keys=False).tail(limit)
        for col in ("interval_start_utc", "fetched_at_utc"):
            df[col] = df[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame_out(df, format, "stored observations")


@feeds_app.command("status", epilog="**Examples**\n\n    hashpivot feeds status\n\n    hashpivot feeds status --format json")
@operator_errors
def feeds_status(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                 format: FormatOpt = OutputFormat.table) -> None:
    """Per series: last good value, its interval, age, source and whether it is within its staleness limit."""
    import pandas as pd

    from hashpivot.feeds.collect import status
    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        rows = status(cfg, store)
    df = pd.DataFrame([
        {"series": s.series, "value": s.value, "unit": s.unit,
         "interval_start_utc": s.interval_start_utc.strftime("%Y-%m-%dT%H:%M:%SZ") if s.interval_start_utc else None,
         "source": s.source, "age_h": None if s.age_s is None else round(s.age_s / 3600, 2),
         "limit_h": round(s.staleness_s / 3600, 2), "fresh": s.fresh, "required": s.required}
        for s in rows
    ])
    frame_out(df, format, "feeds status")


@feeds_app.command("import", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds import data/ercot_hub_prices_hourly.csv data/btc_usd_hourly.csv --db store.sqlite\n\n"
    "    hashpivot feeds import history/\\*.csv history/\\*.csv.gz   # plain or gzipped, recognised by their header"))
@operator_errors
def feeds_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV files (.csv or .csv.gz) in the format of the project's data files")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    db: DbOpt = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Load history (recognised by header) through the same validation as live data."""
    import pandas as pd

    from hashpivot.feeds.importer import parse_files, store_files

    cfg = load_site(config, set_)
    parsed = parse_files(paths)  # every file read and parsed before the store is opened
    with open_store(cfg, db) as store:
        results = store_files(parsed, store)
    df = pd.DataFrame([{"file": str(r.path), "kind": r.kind, "rows": r.rows, "series": len(r.series)} for r in results])
    frame_out(df, format, f"imported into {db or cfg.feeds.db_path or 'default store'}")
