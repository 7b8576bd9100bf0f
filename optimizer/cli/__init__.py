"""The `hashpivot` command: a thin layer that parses options, calls the library and prints.

Known errors (HashpivotError) become one clear line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.models.errors import ConfigError, HashpivotError

app = typer.Typer(
    name="hashpivot",
    help="Decide, interval by interval, how much power each ASIC and GPU pool of a mining site gets.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)

DEFAULT_CONFIG = Path("configs/site.toml")


def _utc(text: str, option: str):
    """A command-line time as a tz-aware UTC pandas Timestamp (naive times are UTC); ConfigError if not a time."""
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: not a date/time (use ISO 8601, e.g. 2024-08-05T14:00Z)") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _config_path(path: Path) -> Path:
    """The given config; the default falls back to the example site shipped with the package."""
    if path == DEFAULT_CONFIG and not path.exists():
        from importlib.resources import files

        return Path(str(files("hashpivot.configs") / "site.toml"))
    return path


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _operator_errors(func):
    """Turn hashpivot's own errors into `error: …` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HashpivotError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pyomo").setLevel(logging.WARNING)


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


# options several commands share
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="site config TOML")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a config key: key.path=value (repeatable)")]
DbOpt = Annotated[Optional[Path], typer.Option(help="SQLite store (default: feeds.db_path, else the user data dir)")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv")]
AtOpt = Annotated[Optional[str], typer.Option(help="decision time, UTC ISO 8601 (default: latest in the data)")]
DataOpt = Annotated[Optional[Path], typer.Option(help="directory of market CSVs (default: the embedded data)")]


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot solve\n\n"
        "    hashpivot solve --at 2024-08-05T14:00Z --format json --output decision.json\n\n"
        "    hashpivot solve --set site.interconnect_cap_kw=80000 --set asic_pools.s21.units_available=5000\n\n"
        "    hashpivot solve --initial decision.json --at 2024-08-05T15:00Z   # continue from the last decision\n\n"
        "    hashpivot solve --source store --db ~/hashpivot.sqlite          # latest values collected by `feeds fetch`"
    )
)
@_operator_errors
def solve(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config TOML (default: ./configs/site.toml, else the bundled example site)")] = DEFAULT_CONFIG,
    at: AtOpt = None,
    set_: SetOpt = None,
    data: DataOpt = None,
    source: Annotated[str, typer.Option(help="embedded (offline default) or store (latest values from `feeds fetch`)")] = "embedded",
    db: Annotated[Optional[Path], typer.Option(help="store path for --source store (default: feeds.db_path, else the user data dir)")] = None,
    initial: Annotated[Optional[Path], typer.Option(help="what runs now: a previous decision JSON (default: free start)")] = None,
    strategy: Annotated[str, typer.Option(help="auto (LP rounding certified by the LP bound, else MIP) or mip")] = "auto",
    format: FormatOpt = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log timings and solver steps to stderr")] = False,
) -> None:
    """Solve one interval: how many units of each pool run, in which mode, at what power, earning what, and why."""
    _setup_logging(verbose)
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.milp.explain import explain
    from hashpivot.optimizer.forecast import build_forecast
    from hashpivot.optimizer.milp.problem import initial_state_from_decision, make_problem
    from hashpivot.optimizer.pipeline.document import decision_document, to_csv, to_json, to_table
    from hashpivot.optimizer.milp.solve import SolveSettings
    from hashpivot.optimizer.milp.solve import solve as run_solve

    if strategy not in ("auto", "mip"):
        raise ConfigError(f"--strategy {strategy!r}: must be auto or mip")
    if source not in ("embedded", "store"):
        raise ConfigError(f"--source {source!r}: must be embedded or store")
    cfg = load_config(_config_path(config), set_ or [])
    if source == "store":
        import pandas as pd

        from hashpivot.feeds.market_store import market_from_store

        at_ts = _utc(at, "--at") if at else pd.Timestamp.now(tz="UTC")
        with _open_store(cfg, db) as store:
            market = market_from_store(store, cfg.site.settlement_point, as_of=at_ts.to_pydatetime())
        forecast = build_forecast(cfg, market, at_ts)
    else:
        market = load_market_data(data, cfg.site.settlement_point)
        forecast = build_forecast(cfg, market, at)
    state = None
    if initial is not None:
        try:
            state = initial_state_from_decision(json.loads(initial.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{initial}: not a hashpivot decision JSON ({exc})") from None
    problem = make_problem(cfg, forecast, state)
    settings = SolveSettings.from_config(cfg, strategy)  # type: ignore[arg-type]
    solution = run_solve(problem, settings)
    doc = decision_document(solution, explain(solution), forecast, cfg.site.name)
    render = {OutputFormat.table: to_table, OutputFormat.json: to_json, OutputFormat.csv: to_csv}[format]
    _emit(render(doc), output)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot hashprice --difficulty 8.9e13 --btc-usd 58000 --height 856000 --fees-btc-per-block 0.05\n\n"
        "    hashpivot hashprice --difficulty 20082460130795 --btc-usd 60865.45 --subsidy-btc 6.25 --format json"
    )
)
@_operator_errors
def hashprice(
    difficulty: Annotated[float, typer.Option(help="network difficulty")],
    btc_usd: Annotated[float, typer.Option(help="BTC price, USD")],
    fees_btc_per_block: Annotated[float, typer.Option(help="average fees per block, BTC (e.g. last 144 blocks)")] = 0.0,
    subsidy_btc: Annotated[Optional[float], typer.Option(help="block subsidy, BTC (or give --height)")] = None,
    height: Annotated[Optional[int], typer.Option(help="block height, to derive the subsidy from the halving schedule")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Hashprice (USD per TH/s per day and per PH/s per day) from difficulty, subsidy, fees and BTC price."""
    from hashpivot.models.hashprice import block_subsidy_btc, hashprice_usd_per_th_day

    if (subsidy_btc is None) == (height is None):
        raise ConfigError("give exactly one of --subsidy-btc or --height")
    if height is not None and height < 0:
        raise ConfigError(f"--height {height}: must be >= 0")
    if not difficulty > 0:
        raise ConfigError(f"--difficulty {difficulty}: must be > 0")
    if btc_usd < 0 or fees_btc_per_block < 0 or (subsidy_btc is not None and subsidy_btc < 0):
        raise ConfigError("--btc-usd, --fees-btc-per-block and --subsidy-btc must be >= 0")
    subsidy = subsidy_btc if subsidy_btc is not None else block_subsidy_btc(height)
    th = hashprice_usd_per_th_day(difficulty, btc_usd, subsidy, fees_btc_per_block)
    row = {
        "difficulty": difficulty,
        "btc_usd": btc_usd,
        "subsidy_btc": subsidy,
        "fees_btc_per_block": fees_btc_per_block,
        "hashprice_usd_per_th_day": th,
        "hashprice_usd_per_ph_day": th * 1000,
    }
    if format is OutputFormat.json:
        typer.echo(json.dumps(row, indent=2))
    elif format is OutputFormat.csv:
        typer.echo(",".join(row))
        typer.echo(",".join(repr(v) for v in row.values()))
    else:
        typer.echo(f"hashprice {th:.6f} USD/TH/day = {th * 1000:.3f} USD/PH/day")
        typer.echo(f"(difficulty {difficulty:.6g}, subsidy {subsidy:g} BTC, fees {fees_btc_per_block:g} BTC/block, BTC {btc_usd:,.2f} USD)")


# --------------------------------------------------------------------------- feeds

feeds_app = typer.Typer(help="Collect, import and inspect market data in the local store.", no_args_is_help=True,
                        rich_markup_mode="markdown")
app.add_typer(feeds_app, name="feeds")


def _open_store(cfg, db: Optional[Path]):
    from hashpivot.feeds.store import Store

    path = db or (Path(cfg.feeds.db_path).expanduser() if cfg.feeds.db_path else None)
    try:
        return Store(path)
    except Exception as exc:  # sqlite3 errors: unreadable path, not a database, newer schema
        raise ConfigError(f"store {path or 'default'}: cannot open ({exc})") from None


def _frame_out(df, format: OutputFormat, title: str) -> None:
    import pandas as pd

    if format is OutputFormat.json:
        typer.echo(df.to_json(orient="records", date_format="iso", indent=2))
    elif format is OutputFormat.csv:
        typer.echo(df.to_csv(index=False), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for col in df.columns:
            table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left")
        for row in df.itertuples(index=False):
            table.add_row(*["" if v is None or (isinstance(v, float) and v != v) else (f"{v:,.6g}" if isinstance(v, float) else str(v)) for v in row])
        Console(width=160).print(table)


@feeds_app.command("fetch", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds fetch\n\n"
    "    hashpivot feeds fetch --series btc --series network --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot feeds fetch --set feeds.sources.coinbase.enabled=false --format json"))
@_operator_errors
def feeds_fetch(
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    db: DbOpt = None,
    series: Annotated[Optional[list[str]], typer.Option(help="feed groups: btc, network, power_rt, power_da, power_rt_nyiso, weather, gpu")] = None,
    format: FormatOpt = OutputFormat.table,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """One collection pass: every source of each group in fallback order, validated, stored.

    Exits 1 only if a required series (BTC, network, hashprice, the site's real-time price, GPU rates the
    config uses) has no fresh value afterwards.
    """
    _setup_logging(verbose)
    import pandas as pd

    from hashpivot.feeds.collect import collect, status
    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    with _open_store(cfg, db) as store:
        try:
            results = collect(cfg, store, series)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        stale = [s for s in status(cfg, store) if s.required and not s.fresh]
    df = pd.DataFrame([
        {"group": r.group, "ok": r.ok, "source": r.source, "rows": r.rows, "fallback": r.fallback,
         "failures": "; ".join(f"{src}: {why}" for src, why in r.failures), "duration_s": round(r.duration_s, 3)}
        for r in results
    ])
    _frame_out(df, format, "feeds fetch")
    if stale:
        typer.echo("error: no fresh value for required series: " + ", ".join(s.series for s in stale), err=True)
        raise typer.Exit(1)


@feeds_app.command("show", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds show --series btc_usd --since 2024-08-01\n\n"
    "    hashpivot feeds show --series power_rt_usd_per_mwh.HB_WEST --format csv > prices.csv"))
@_operator_errors
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

    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    since_ts = _utc(since, "--since") if since else None
    with _open_store(cfg, db) as store:
        frames = [store.history(s, since=since_ts) for s in (series or [None])]
    df = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) else pd.DataFrame(
        columns=["series", "interval_start_utc", "value", "unit", "source", "fetched_at_utc"])
    if not df.empty:
        df = df.groupby("series", group_keys=False).tail(limit)
        for col in ("interval_start_utc", "fetched_at_utc"):
            df[col] = df[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    _frame_out(df, format, "stored observations")


@feeds_app.command("status", epilog="**Examples**\n\n    hashpivot feeds status\n\n    hashpivot feeds status --format json")
@_operator_errors
def feeds_status(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                 format: FormatOpt = OutputFormat.table) -> None:
    """Per series: last good value, its interval, age, source and whether it is within its staleness limit."""
    import pandas as pd

    from hashpivot.feeds.collect import status
    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    with _open_store(cfg, db) as store:
        rows = status(cfg, store)
    df = pd.DataFrame([
        {"series": s.series, "value": s.value, "unit": s.unit,
         "interval_start_utc": s.interval_start_utc.strftime("%Y-%m-%dT%H:%M:%SZ") if s.interval_start_utc else None,
         "source": s.source, "age_h": None if s.age_s is None else round(s.age_s / 3600, 2),
         "limit_h": round(s.staleness_s / 3600, 2), "fresh": s.fresh, "required": s.required}
        for s in rows
    ])
    _frame_out(df, format, "feeds status")


@feeds_app.command("import", epilog=(
    "**Examples**\n\n"
    "    hashpivot feeds import data/ercot_hub_prices_hourly.csv data/btc_usd_hourly.csv --db store.sqlite\n\n"
    "    hashpivot feeds import data/*.csv"))
@_operator_errors
def feeds_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV files (.csv or .csv.gz) in the format of the project's data files")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    db: DbOpt = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Load history (recognised by header) through the same validation as live data."""
    import pandas as pd

    from hashpivot.feeds.importer import import_files
    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    with _open_store(cfg, db) as store:
        results = import_files(paths, store)
    df = pd.DataFrame([{"file": str(r.path), "kind": r.kind, "rows": r.rows, "series": len(r.series)} for r in results])
    _frame_out(df, format, f"imported into {db or cfg.feeds.db_path or 'default store'}")


# --------------------------------------------------------------------------- daemon

decisions_app = typer.Typer(help="Decisions taken by `run` / `tick`.", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(decisions_app, name="decisions")


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot run --config /etc/hashpivot/site.toml --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot run --set 'daemon.decision_cron.minute=\"*/15\"' --set daemon.metrics_port=9200"))
@_operator_errors
def run(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = True) -> None:
    """Run unattended: collect feeds and re-solve the rolling horizon on the [daemon] cron schedules.

    Publishes each decision to daemon.publish_dir (and the webhook), serves Prometheus metrics on
    daemon.metrics_host:metrics_port. SIGTERM/SIGINT finish the running job and exit 0.
    """
    _setup_logging(verbose)
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.service.daemon import run as run_daemon
    from hashpivot.optimizer.service.daemon import store_path

    cfg = load_config(_config_path(config), set_ or [])
    run_daemon(cfg, store_path(cfg, db))


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot tick --db /var/lib/hashpivot/store.sqlite\n\n"
    "    */5 * * * * cd /srv/hashpivot && hashpivot tick --db store.sqlite >> tick.log 2>&1   # crontab"))
@_operator_errors
def tick(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, format: FormatOpt = OutputFormat.table,
         verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Exactly one pass: collect every feed, decide, store and publish; then exit (for cron / systemd timers)."""
    _setup_logging(verbose)
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.service.daemon import store_path
    from hashpivot.optimizer.service.daemon import tick as run_tick
    from hashpivot.optimizer.pipeline.document import to_csv, to_json, to_table

    cfg = load_config(_config_path(config), set_ or [])
    seq, doc = run_tick(cfg, store_path(cfg, db))
    if format is OutputFormat.json:
        typer.echo(to_json(doc), nl=False)
    elif format is OutputFormat.csv:
        typer.echo(to_csv(doc), nl=False)
    elif doc["status"] in ("safe", "kept"):
        typer.echo(f"decision {seq}: {doc['status'].upper()} allocation for {doc['interval_start_utc']}: {doc['reason']}")
        for pool in doc["pools"]:
            typer.echo(f"  {pool['name']}: {pool['units_on']} on, {pool['power_kw']:,.0f} kW")
    else:
        typer.echo(f"decision {seq}")
        typer.echo(to_table(doc), nl=False)


@decisions_app.command("show", epilog=(
    "**Examples**\n\n    hashpivot decisions show --since 2026-11-25T00:00Z\n\n    hashpivot decisions show --format csv > decisions.csv"))
@_operator_errors
def decisions_show(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                   since: Annotated[Optional[str], typer.Option(help="decided at or after, UTC ISO 8601")] = None,
                   limit: Annotated[int, typer.Option(help="latest N decisions")] = 50,
                   format: FormatOpt = OutputFormat.table) -> None:
    """The decisions history: when, for which interval, status, objective, site power and power per pool."""
    import pandas as pd

    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    with _open_store(cfg, db) as store:
        df = store.decisions(_utc(since, "--since") if since else None, limit)
    rows = []
    for r in df.itertuples(index=False):
        doc = json.loads(r.document)
        row = {"seq": r.seq, "decided_at_utc": r.decided_at_utc, "interval_start_utc": r.interval_start_utc, "status": r.status,
               "objective_usd": r.objective_usd, "site_power_kw": doc["site"]["site_power_kw"], "duration_s": round(r.duration_s, 3)}
        row.update({f"{p['name']}_kw": p["power_kw"] for p in doc["pools"]})
        rows.append(row)
    _frame_out(pd.DataFrame(rows), format, "decisions")


@app.command(epilog="**Examples**\n\n    hashpivot status --db /var/lib/hashpivot/store.sqlite\n\n    hashpivot status --format json")
@_operator_errors
def status(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, format: FormatOpt = OutputFormat.table) -> None:
    """For a human: the last decision (when, status, objective, power per pool) and every feed's age and freshness."""
    import pandas as pd

    from hashpivot.feeds.collect import status as feed_status
    from hashpivot.models.config import load_config

    cfg = load_config(_config_path(config), set_ or [])
    with _open_store(cfg, db) as store:
        last = store.last_decision()
        feeds = feed_status(cfg, store)
        fails = store.conn.execute(
            "SELECT source, COUNT(*) FROM fetch_log WHERE ok = 0 GROUP BY source ORDER BY source").fetchall()
    summary = {
        "last_decision_seq": last[0] if last else None,
        "last_decision": None if not last else {k: last[1].get(k) for k in ("decided_at_utc", "interval_start_utc", "status", "objective_usd", "reason")},
        "site_power_kw": last[1]["site"]["site_power_kw"] if last else None,
        "pools_power_kw": {p["name"]: p["power_kw"] for p in last[1]["pools"]} if last else {},
        "safe_allocation": bool(last and last[1]["status"] == "safe"),
        "feed_failures": dict(fails),
        "feeds": [{"series": s.series, "age_h": None if s.age_s is None else round(s.age_s / 3600, 2), "fresh": s.fresh,
                   "source": s.source} for s in feeds],
    }
    if format is OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    if last:
        d = summary["last_decision"]
        typer.echo(f"last decision #{last[0]} at {d['decided_at_utc']} for {d['interval_start_utc']}: {d['status']}"
                   f" (objective {d['objective_usd']}, site {summary['site_power_kw']:,} kW){' SAFE ALLOCATION' if summary['safe_allocation'] else ''}")
        typer.echo("  " + ", ".join(f"{k} {v:,.0f} kW" for k, v in summary["pools_power_kw"].items()))
    else:
        typer.echo("no decision yet")
    if summary["feed_failures"]:
        typer.echo("feed failures: " + ", ".join(f"{k} {v}" for k, v in summary["feed_failures"].items()))
    _frame_out(pd.DataFrame(summary["feeds"]), OutputFormat.csv if format is OutputFormat.csv else OutputFormat.table, "feeds")


# --------------------------------------------------------------------------- backtest


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot backtest --from 2024-08-01 --to 2024-08-08 --strategy rolling\n\n"
    "    hashpivot backtest --from 2024-06-01 --to 2024-09-01 --compare --out summer-2024\n\n"
    "    hashpivot backtest --from 2025-01-01 --to 2025-01-15 --strategy breakeven --set site.interconnect_cap_kw=70000 -f json"))
@_operator_errors
def backtest(
    from_: Annotated[str, typer.Option("--from", help="first hour, UTC (e.g. 2024-06-01)")],
    to: Annotated[str, typer.Option("--to", help="end (exclusive), UTC")],
    strategy: Annotated[Optional[list[str]], typer.Option(help="rolling, breakeven, always-on, perfect-foresight (repeatable)")] = None,
    compare: Annotated[bool, typer.Option(help="run all four strategies and print each one's ratio to perfect foresight")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    data: DataOpt = None,
    source: Annotated[str, typer.Option(help="embedded or store")] = "embedded",
    db: DbOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./backtest-<from>-<to>)")] = None,
    windows: Annotated[int, typer.Option(help="cut the period into N independent windows (each from a free start)")] = 1,
    executor: Annotated[str, typer.Option(help="local or dask (windows run in parallel)")] = "local",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a 2-worker LocalCluster)")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Replay history hour by hour (no look-ahead) and compare strategies; writes per-hour CSVs and PNG charts."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import Progress

    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.studies.backtest import STRATEGIES, run_backtest_windows
    from hashpivot.optimizer.studies.charts import cumulative_profit_chart, stacked_power_chart

    cfg = load_config(_config_path(config), set_ or [])
    chosen = list(STRATEGIES) if compare else (strategy or ["rolling"])
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"--strategy {unknown[0]!r}: must be one of {', '.join(STRATEGIES)}")
    start, end = _utc(from_, "--from"), _utc(to, "--to")
    if end <= start:
        raise ConfigError(f"--to {to} must be after --from {from_}")
    if source == "store":
        from hashpivot.feeds.market_store import market_from_store

        with _open_store(cfg, db) as store:
            market = market_from_store(store, cfg.site.settlement_point)
    else:
        market = load_market_data(data, cfg.site.settlement_point)
    out = out or Path(f"backtest-{start:%Y%m%d}-{end:%Y%m%d}")
    out.mkdir(parents=True, exist_ok=True)
    if executor not in ("local", "dask"):
        raise ConfigError(f"--executor {executor!r}: must be local or dask")
    results = {}
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        for name in chosen:
            task = bar.add_task(f"{name}", total=None)
            try:
                results[name] = run_backtest_windows(
                    cfg, market, start, end, name, windows, executor, scheduler,
                    progress=lambda done, total, task=task: bar.update(task, completed=done, total=total))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            bar.update(task, completed=1, total=1)
    rows = []
    profits = {}
    for name, r in results.items():
        times = pd.DatetimeIndex(r.steps["interval_start_utc"])
        steps = r.steps.copy()
        steps["interval_start_utc"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
        steps["profit_usd"] = r.hourly_profit_usd
        steps.to_csv(out / f"steps-{name}.csv", index=False)
        profits[name] = pd.Series(r.hourly_profit_usd, index=times)
        stacked_power_chart(r.steps, times, f"{cfg.site.name}: {name}, {start:%Y-%m-%d} to {end:%Y-%m-%d}", out / f"power-{name}.png")
        rows.append({"strategy": name, **{k: round(v, 2) if isinstance(v, float) else v for k, v in r.totals.items()}})
    table = pd.DataFrame(rows)
    if "perfect-foresight" in results:
        pf = results["perfect-foresight"].totals["profit_usd"]
        table["ratio_to_perfect_foresight"] = [round(r["profit_usd"] / pf, 4) if pf else None for r in rows]
    table.to_csv(out / "summary.csv", index=False)
    cumulative_profit_chart(profits, f"{cfg.site.name}: cumulative profit, {start:%Y-%m-%d} to {end:%Y-%m-%d}", out / "cumulative-profit.png")
    columns = ["strategy", "profit_usd", "asic_revenue_usd", "gpu_revenue_usd", "energy_cost_usd", "resale_revenue_usd",
               "reserve_revenue_usd", "mining_revenue_usd", "gpu_hours", "curtailed_asic_unit_hours", "ramp_events",
               "mean_solve_time_s", "hours_without_data"] + (["ratio_to_perfect_foresight"] if "ratio_to_perfect_foresight" in table else [])
    _frame_out(table[columns], format, f"backtest {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    typer.echo(f"wrote {out}/ (summary.csv, steps-*.csv, power-*.png, cumulative-profit.png)", err=True)


# --------------------------------------------------------------------------- what-ifs and sweeps


def _base_forecast(cfg, at: Optional[str], data: Optional[Path]):
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.optimizer.forecast import build_forecast

    return build_forecast(cfg, load_market_data(data, cfg.site.settlement_point), at)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot whatif scenarios/btc-crash.toml scenarios/second-h100-hall.toml\n\n"
    "    hashpivot whatif scenarios/*.toml --at 2024-08-05T14:00Z --out whatif-aug --format csv"))
@_operator_errors
def whatif(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario TOML files (see README: What-ifs)")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    at: AtOpt = None,
    data: DataOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./whatif-<time>)")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Compare scenarios side by side against the base case: profit, MW per pool, BTC, GPU-hours, energy, binding constraints."""
    import pandas as pd

    from hashpivot.models.config import apply_override, load_config, load_raw_config, validate_config
    from hashpivot.models.scenario import load_scenario
    from hashpivot.optimizer.studies.charts import whatif_chart
    from hashpivot.optimizer.studies.whatif import csv_values, solve_case, transform_forecast

    base_path = _config_path(config)
    base_cfg = load_config(base_path, set_ or [])
    rows = [solve_case("base", base_cfg, _base_forecast(base_cfg, at, data)).row()]
    for path in scenarios:
        scenario, spath = load_scenario(path)
        cfg_path = (spath.parent / scenario.base) if scenario.base else base_path
        raw, label = load_raw_config(cfg_path, set_ or [])
        for key, value in scenario.set.items():
            apply_override(raw, f"{key}={_toml_value(value)}")
        cfg = validate_config(raw, f"{spath} (set over {label})")
        forecast = _base_forecast(cfg, scenario.at or at, data)
        for i, t in enumerate(scenario.transform):
            values = csv_values(spath.parent / t.file, forecast) if t.op == "csv" else None
            try:
                forecast = transform_forecast(forecast, t.series, t.op, t.value, values)
            except ConfigError as exc:
                raise ConfigError(f"{spath}: transform[{i}].series = {t.series!r}: {exc}") from None
        rows.append(solve_case(scenario.name, cfg, forecast).row())
    out = out or Path(f"whatif-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "whatif.csv", index=False)
    pools = [c.removesuffix("_mw") for c in table.columns if c.endswith("_mw") and not c.startswith("energy")]
    whatif_chart(rows, pools, f"{base_cfg.site.name}: what-if scenarios", out / "whatif.png")
    _frame_out(table, format, "what-if")
    typer.echo(f"wrote {out}/ (whatif.csv, whatif.png)", err=True)


def _toml_value(value) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot sweep --param btc_usd=10000:150000:5000\n\n"
    "    hashpivot sweep --param btc_usd=20000:120000:10000 --param gpu_rate.h100=1.0:4.0:0.25 --out grid\n\n"
    "    hashpivot sweep --param set:site.interconnect_cap_kw=50000:100000:5000 --executor dask"))
@_operator_errors
def sweep(
    param: Annotated[list[str], typer.Option(help="name=start:stop:step or name=v1,v2 (one or two)")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    at: AtOpt = None,
    data: DataOpt = None,
    executor: Annotated[str, typer.Option(help="local or dask")] = "local",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a 2-worker LocalCluster)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./sweep-<params>)")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Solve the same horizon over a 1-D or 2-D grid of one or two parameters; CSV plus PNG charts, flips marked."""
    from rich.console import Console
    from rich.progress import Progress

    from hashpivot.models.config import config_from_raw, load_raw_config
    from hashpivot.optimizer.studies.charts import sweep_chart, sweep_heatmap
    from hashpivot.optimizer.studies.sweep import flips, parse_param, run_sweep

    params = [parse_param(p) for p in param]
    raw, label = load_raw_config(_config_path(config), set_ or [])
    cfg = config_from_raw(raw, label)
    forecast = _base_forecast(cfg, at, data)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sweep", total=None)
        df = run_sweep(raw, forecast, params, executor, scheduler, progress=lambda d, t: bar.update(task, completed=d, total=t))
    out = out or Path("sweep-" + "-".join(p.name.replace(":", "_").replace(".", "_") for p in params))
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sweep.csv", index=False)
    pools = [p.name for p in cfg.asic_pools] + [g.name for g in cfg.gpu_pools]
    title = f"{cfg.site.name}: sweep of {' x '.join(p.name for p in params)} at {forecast.interval_start_utc[0]:%Y-%m-%d %H:%M}Z"
    if len(params) == 1:
        marks = flips(df, params[0].name, [p.name for p in cfg.asic_pools], [g.name for g in cfg.gpu_pools])
        sweep_chart(df, params[0].name, pools, marks, title, out / "sweep.png")
        if marks:
            typer.echo("allocation flips at " + params[0].name + " = " + ", ".join(f"{x:g}" for x in marks), err=True)
    else:
        x, y = params[0].name, params[1].name
        df["asic_mw"] = df[[f"{p.name}_mw" for p in cfg.asic_pools]].sum(axis=1)
        sweep_heatmap(df, x, y, "profit_usd", "horizon profit (USD)", title, out / "sweep-profit.png")
        sweep_heatmap(df, x, y, "asic_mw", "ASIC IT power at step 0 (MW)", title, out / "sweep-asic-mw.png")
    _frame_out(df.drop(columns=[c for c in df.columns if c.endswith("_mean_mw")]), format, "sweep")
    typer.echo(f"wrote {out}/", err=True)


def main() -> None:
    app()

