"""`hashpivot backtest`, `whatif` and `sweep`: studies over the one decision pipeline, with CSVs and PNG charts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.models.errors import ConfigError, InputError
from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    AtOpt,
    ConfigOpt,
    DataOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    app,
    bad_choice,
    clear_outputs,
    config_path,
    frame_out,
    load_site,
    open_store,
    operator_errors,
    out_dir,
    usage_error,
    utc,
)


def stamp(t) -> str:
    """A backtest folder's time: the day, with the hour and minute when it is not midnight."""
    return f"{t:%Y%m%d}" if t == t.normalize() else f"{t:%Y%m%dT%H%M}"


def period_text(start, end) -> str:
    """`2024-08-01 to 2024-08-08`, with hours (UTC) when either end is not midnight."""
    if start == start.normalize() and end == end.normalize():
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot backtest --from 2024-08-01 --to 2024-08-08 --strategy rolling\n\n"
    "    hashpivot backtest --from 2024-06-01 --to 2024-10-01 --compare --out summer-2024 --format json\n\n"
    "    hashpivot backtest --from 2025-01-01 --to 2025-01-15 --strategy breakeven --set site.interconnect_cap_kw=70000 -f json"))
@operator_errors
def backtest(
    from_: Annotated[str, typer.Option("--from", help="first hour, UTC (e.g. 2024-06-01)")],
    to: Annotated[str, typer.Option("--to", help="end (exclusive), UTC")],
    strategy: Annotated[Optional[list[str]], typer.Option(
        help="rolling, breakeven, strike-4cp, always-on, perfect-foresight (repeatable)")] = None,
    compare: Annotated[bool, typer.Option(help="run all five strategies and print each one's ratio to perfect foresight")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    data: DataOpt = None,
    source: Annotated[str, typer.Option(help="embedded or store")] = "embedded",
    db: DbOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./backtest-FROM-TO, e.g. ./backtest-20240801-20240901)")] = None,
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
    from hashpivot.feeds.market_store import market_from_store
    from hashpivot.models.calendar import MARKET_TZ
    from hashpivot.optimizer.studies.backtest import STRATEGIES, check_coverage, run_backtest_windows
    from hashpivot.optimizer.studies.charts import (
        cumulative_profit_chart,
        four_cp_chart,
        stacked_power_chart,
    )
    from hashpivot.optimizer.studies.fourcp import months_without_interval

    cfg = load_site(config, set_)
    chosen = list(STRATEGIES) if compare else (strategy or ["rolling"])
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise bad_choice("hashpivot backtest", "--strategy", unknown[0], tuple(STRATEGIES))
    start, end = utc(from_, "--from"), utc(to, "--to")
    for option, text, t in (("--from", from_, start), ("--to", to, end)):
        if t != t.floor("h"):
            raise InputError(f"{option} {text}: a backtest decides hour by hour; give a time on the hour "
                             f"(e.g. {t.floor('h'):%Y-%m-%dT%H:%MZ})")
    if end <= start:
        raise InputError(f"--to {to} must be after --from {from_}")
    if source == "store":
        with open_store(cfg, db, create=False) as store:
            market = market_from_store(store, cfg.site.settlement_point)
    else:
        market = load_market_data(data, cfg.site.settlement_point)
    check_coverage(market, start, end)  # a period past the data is the one error, before any warning about it
    four_cp = cfg.power.four_cp
    if four_cp is not None and cfg.site.market == "ERCOT":
        unknown = months_without_interval(market.four_cp_intervals, pd.date_range(start, end, freq="h", inclusive="left"),
                                          four_cp.months)
        if unknown:
            typer.echo(f"warning: no official 4CP interval for {', '.join(unknown)} in {market.source}: no strategy is "
                       f"charged 4CP there (four_cp_charge_usd leaves it out); ercot_4cp_intervals.csv holds ERCOT's "
                       "published intervals (--data DIR, or `hashpivot feeds import` for --source store)", err=True)
    out = out or Path(f"backtest-{stamp(start)}-{stamp(end)}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder")
    if executor not in ("local", "dask"):
        raise bad_choice("hashpivot backtest", "--executor", executor, ("local", "dask"))
    results = {}
    with Progress(transient=True, console=Console(stderr=True), disable=not sys.stderr.isatty()) as bar:
        for name in chosen:
            task = bar.add_task(f"{name}", total=None)
            results[name] = run_backtest_windows(
                cfg, market, start, end, name, windows, executor, scheduler,
                progress=lambda done, total, task=task: bar.update(task, completed=done, total=total))
            bar.update(task, completed=1, total=1)
    out = out_dir(out)
    clear_outputs(out, ("summary.csv", "steps-*.csv", "power-*.png", "cumulative-profit.png", "four-cp.png"))
    period = period_text(start, end)
    rows = []
    profits = {}
    for name, r in results.items():
        times = pd.DatetimeIndex(r.steps["interval_start_utc"])
        steps = r.steps.copy()
        steps["interval_start_utc"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
        steps["profit_usd"] = r.hourly_profit_usd
        steps.to_csv(out / f"steps-{name}.csv", index=False)
        profits[name] = pd.Series(r.hourly_profit_usd, index=times)
        stacked_power_chart(r.steps, times, f"{cfg.site.name}: {name}, {period}", out / f"power-{name}.png",
                            cap_kw=cfg.site.interconnect_cap_kw, pue=cfg.site.pue)
        rows.append({"strategy": name, **{k: round(v, 2) if isinstance(v, float) else v for k, v in r.totals.items()}})
    table = pd.DataFrame(rows)
    if "perfect-foresight" in results:
        pf = results["perfect-foresight"].totals["profit_usd"]
        table["ratio_to_perfect_foresight"] = [round(r["profit_usd"] / pf, 4) if pf else None for r in rows]
    cumulative_profit_chart(profits, f"{cfg.site.name}: cumulative profit, {period}", out / "cumulative-profit.png")
    charts = "power-*.png, cumulative-profit.png"
    hours = pd.DatetimeIndex(next(iter(results.values())).steps["interval_start_utc"]).tz_convert(MARKET_TZ)
    if four_cp is not None and not market.load.empty and hours.month.isin(four_cp.months).any():
        priced = "" if four_cp.enabled else " (not priced: power.four_cp.enabled = false; the realised charge is applied)"
        four_cp_chart({name: r.steps for name, r in results.items()}, market.load["system_load_mw"],
                      f"{cfg.site.name}: 4CP, {period}{priced}", out / "four-cp.png")
        charts += ", four-cp.png"
    if four_cp is not None and not four_cp.enabled and cfg.site.market == "ERCOT":
        typer.echo("note: 4CP is not priced (power.four_cp.enabled = false), but each strategy is still charged the "
                   "realised 4CP charge of the official intervals in the period; remove [power.four_cp] to leave it out",
                   err=True)
    # one row per strategy, each term once (objective_usd is profit_usd, four_cp_cost_usd the charge), so the
    # printed terms add up to profit_usd; summary.csv holds the same columns as the output
    columns = ["strategy", "profit_usd", "asic_revenue_usd", "gpu_revenue_usd", "energy_cost_usd", "resale_revenue_usd",
               "reserve_revenue_usd", "four_cp_charge_usd", "block_cost_usd", "startup_cost_usd", "sla_penalty_usd",
               "four_cp_peaks", "four_cp_peaks_avoided", "four_cp_hours_curtailed", "gpu_hours", "energy_mwh",
               "curtailed_asic_unit_hours", "ramp_events", "mean_solve_time_s", "total_solve_time_s", "hours_without_data", "hours_kept_previous_plan"]
    columns += ["ratio_to_perfect_foresight"] if "ratio_to_perfect_foresight" in table else []
    table = table[columns]
    table.to_csv(out / "summary.csv", index=False)
    if format is OutputFormat.table and "ratio_to_perfect_foresight" in table:  # 0.8248 and 1.0000, not 1
        table = table.assign(ratio_to_perfect_foresight=[
            "" if v is None or v != v else f"{v:.4f}" for v in table["ratio_to_perfect_foresight"]])
    frame_out(table, format, f"backtest {period}")
    typer.echo(f"wrote {out}/ (summary.csv, steps-*.csv, {charts})", err=True)


def warn_infeasible(table, name_column: str) -> None:
    """Say on stderr which cases had no feasible allocation (their rows carry status `infeasible` and, in
    `binding`, the constraint groups that conflict), so a study with a few impossible points still reports the rest.
    When no case has one, the study has nothing to report: an error (exit 1), before anything is written."""
    bad = table[table["status"] == "infeasible"]
    if len(bad) == len(table):
        raise InputError(f"no feasible allocation in any of the {len(table)} cases; conflicting constraint groups: "
                         f"{bad['binding'].iloc[0]} (solve one case for the figures)")
    if len(bad):
        shown = ", ".join(str(x) for x in bad[name_column].head(5)) + (", …" if len(bad) > 5 else "")
        typer.echo(f"warning: {len(bad)} of {len(table)} cases {'has' if len(bad) == 1 else 'have'} no feasible "
                   f"allocation ({shown}); "
                   "their rows say `infeasible` and `binding` names the conflicting constraint groups", err=True)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot whatif scenarios/btc-crash.toml scenarios/second-h100-hall.toml\n\n"
    "    hashpivot whatif scenarios/*.toml --at 2024-08-05T14:00Z --out whatif-aug --format csv"))
@operator_errors
def whatif(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario TOML files (see README: What-ifs)")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    at: AtOpt = None,
    data: DataOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./whatif-UTCTIME, e.g. ./whatif-20241203T170000)")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Compare scenarios side by side against the base case: profit, MW per pool, BTC, GPU-hours, energy, binding constraints."""
    import pandas as pd

    from hashpivot.optimizer.studies.charts import whatif_chart
    from hashpivot.optimizer.studies.whatif import run_whatif

    if at is not None:
        utc(at, "--at")
    base_cfg, rows = run_whatif(config_path(config), set_ or [], scenarios, at, data)
    table = pd.DataFrame(rows)
    warn_infeasible(table, "case")
    out = out_dir(out) if out else out_dir(Path(f"whatif-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"), fresh=True)
    table.to_csv(out / "whatif.csv", index=False)
    pools = [c.removesuffix("_mw") for c in table.columns if c.endswith("_mw") and not c.startswith("energy")]
    whatif_chart(rows, pools, f"{base_cfg.site.name}: what-if scenarios", out / "whatif.png")
    frame_out(table, format, "what-if")
    typer.echo(f"wrote {out}/ (whatif.csv, whatif.png)", err=True)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot sweep --param btc_usd=10000:150000:5000\n\n"
    "    hashpivot sweep --param btc_usd=20000:120000:10000 --param gpu_rate.h100=1.0:4.0:0.25 --out grid\n\n"
    "    hashpivot sweep --param set:site.interconnect_cap_kw=50000:100000:5000 --executor dask"))
@operator_errors
def sweep(
    param: Annotated[list[str], typer.Option(help="name=start:stop:step or name=v1,v2 (one or two)")],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
    at: AtOpt = None,
    data: DataOpt = None,
    executor: Annotated[str, typer.Option(help="local or dask")] = "local",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a 2-worker LocalCluster)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: ./sweep-PARAMS-UTCTIME, e.g. ./sweep-btc_usd-20241203T170000, new per run)")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Solve the same horizon over a 1-D or 2-D grid of one or two parameters; CSV plus PNG charts, flips marked."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import Progress

    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import config_from_raw, load_raw_config
    from hashpivot.optimizer.forecast import build_forecast
    from hashpivot.optimizer.studies.charts import (
        axis_label,
        sweep_chart,
        sweep_heatmap,
    )
    from hashpivot.optimizer.studies.sweep import flips, grid, parse_param, run_sweep

    try:  # a bad grid is a usage error, refused before the data is loaded and the progress bar drawn
        params = [parse_param(p) for p in param]
        grid(params)
    except ConfigError as exc:
        raise usage_error("hashpivot sweep", str(exc)) from None
    raw, label = load_raw_config(config_path(config), set_ or [])
    cfg = config_from_raw(raw, label)
    forecast = build_forecast(cfg, load_market_data(data, cfg.site.settlement_point), utc(at, "--at") if at is not None else None)
    with Progress(transient=True, console=Console(stderr=True), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("sweep", total=None)
        df = run_sweep(raw, forecast, params, executor, scheduler, progress=lambda d, t: bar.update(task, completed=d, total=t))
    default = Path("sweep-" + "-".join(p.name.replace(":", "_").replace(".", "_") for p in params)
                   + f"-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}")
    warn_infeasible(df, "case")
    out = out_dir(out) if out else out_dir(default, fresh=True)
    clear_outputs(out, ("sweep.csv", "sweep.png", "sweep-profit.png", "sweep-asic-mw.png"))
    if len(params) == 2:
        df["asic_mw"] = df[[f"{p.name}_mw" for p in cfg.asic_pools]].sum(axis=1, min_count=1).round(3)
    df.to_csv(out / "sweep.csv", index=False)
    pools = [p.name for p in cfg.asic_pools] + [g.name for g in cfg.gpu_pools]
    title = f"{cfg.site.name}: sweep of {' x '.join(axis_label(p.name) for p in params)} at {forecast.interval_start_utc[0]:%Y-%m-%d %H:%M}Z"
    if len(params) == 1:
        marks = flips(df, params[0].name, [p.name for p in cfg.asic_pools], [g.name for g in cfg.gpu_pools])
        sweep_chart(df, params[0].name, pools, marks, title, out / "sweep.png")
        if marks:
            typer.echo("allocation flips at " + params[0].name + " = " + ", ".join(f"{x:g}" for x in marks), err=True)
    else:
        x, y = params[0].name, params[1].name
        sweep_heatmap(df, x, y, "profit_usd", "horizon profit (USD)", title, out / "sweep-profit.png")
        if cfg.asic_pools:  # a GPU-only site: no ASIC power to map
            sweep_heatmap(df, x, y, "asic_mw", "ASIC IT power at step 0 (MW)", title, out / "sweep-asic-mw.png")
    # sweep.csv and --format csv|json carry the same columns; the table leaves out the horizon means (*_mean_mw)
    frame_out(df.drop(columns=[c for c in df.columns if c.endswith("_mean_mw")]) if format is OutputFormat.table else df,
              format, "sweep")
    typer.echo(f"wrote {out}/", err=True)
