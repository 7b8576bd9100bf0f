"""`hashpivot run`, `tick`, `status` and `decisions show`: the daemon and what it has decided."""

from __future__ import annotations

import functools
from typing import Annotated, Optional

import typer

from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    EXIT_DEGRADED,
    ConfigOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    app,
    decisions_app,
    echo_json,
    frame_out,
    load_site,
    open_store,
    operator_errors,
    setup_logging,
    utc,
)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot run --config /etc/hashpivot/site.toml --db /var/lib/hashpivot/store.sqlite\n\n"
    "    hashpivot run --set 'daemon.decision_cron.minute=\"*/15\"' --set daemon.metrics_port=9200"))
@operator_errors
def run(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every job (default on)")] = True) -> None:
    """Run unattended: collect feeds and re-solve the rolling horizon on the [daemon] cron schedules.

    Publishes each decision to daemon.publish_dir (and the webhook), serves Prometheus metrics on
    daemon.metrics_host:metrics_port. SIGTERM/SIGINT finish the running job and exit 0.
    """
    setup_logging(verbose)
    from hashpivot.optimizer.service.daemon import run as run_daemon
    from hashpivot.optimizer.service.daemon import store_path

    cfg = load_site(config, set_)
    run_daemon(cfg, store_path(cfg, db))


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot tick --db /var/lib/hashpivot/store.sqlite\n\n"
    "    */5 * * * * cd /srv/hashpivot && hashpivot tick --db store.sqlite >> tick.log 2>&1   # crontab"))
@operator_errors
def tick(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, format: FormatOpt = OutputFormat.table,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log the pass to stderr")] = False) -> None:
    """Exactly one pass: collect every feed, decide, store and publish; then exit (for cron / systemd timers).

    Exit code 0 for an optimal or feasible decision, 3 when the decision published is the safe allocation or
    the previous one kept (required feeds stale, or the solve failed), 1 for an error.
    """
    setup_logging(verbose)
    from hashpivot.models.errors import PublishError
    from hashpivot.optimizer.service.daemon import store_path
    from hashpivot.optimizer.service.daemon import tick as run_tick

    cfg = load_site(config, set_)
    try:
        seq, doc = run_tick(cfg, store_path(cfg, db))
    except PublishError as exc:  # stored, but not (all) published or applied: say what was decided, then why
        if exc.decision is not None:
            _print_decision(*exc.decision, format)
        raise
    _print_decision(seq, doc, format)
    if doc.status in ("safe", "kept"):
        reason = " ".join(line.strip() for line in doc.reason.splitlines())
        typer.echo(f"error: decision {seq} is {doc.status.upper()}: {reason}", err=True)
        raise typer.Exit(EXIT_DEGRADED)


def _print_decision(seq: int, doc, format: OutputFormat) -> None:
    from hashpivot.optimizer.cli.render import RENDERERS

    if format is not OutputFormat.table:
        typer.echo(RENDERERS[format.value](doc), nl=False)
    elif doc.status in ("safe", "kept"):
        typer.echo(f"decision {seq}: {doc.status.upper()} allocation for {doc.interval_start_utc}: {doc.reason}")
        for pool in doc.pools:
            typer.echo(f"  {pool.name}: {pool.units_on} on, {pool.power_kw:,.0f} kW")
    else:
        typer.echo(f"decision {seq}")
        typer.echo(RENDERERS["table"](doc), nl=False)


@decisions_app.command("show", epilog=(
    "**Examples**\n\n    hashpivot decisions show --since 2026-11-25T00:00Z\n\n    hashpivot decisions show --format csv > decisions.csv"))
@operator_errors
def decisions_show(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
                   since: Annotated[Optional[str], typer.Option(help="decided at or after, UTC ISO 8601")] = None,
                   limit: Annotated[int, typer.Option(help="latest N decisions")] = 50,
                   format: FormatOpt = OutputFormat.table) -> None:
    """The decisions history: when, for which interval, status, objective, site power and power per pool."""
    import pandas as pd

    from hashpivot.models.decision import load_decision

    cfg = load_site(config, set_)
    with open_store(cfg, db, create=False) as store:
        df = store.decisions(utc(since, "--since") if since else None, limit)
        where = store.path
    if df.empty:
        typer.echo(f"no decisions in {where}" + (f" since {since}" if since else " yet (run `hashpivot tick` or `run`)"), err=True)
    rows = []
    for r in df.itertuples(index=False):
        doc = load_decision(r.document, f"decision {r.seq}")
        row = {"seq": r.seq, "decided_at_utc": r.decided_at_utc, "interval_start_utc": r.interval_start_utc, "status": r.status,
               "objective_usd": r.objective_usd, "site_power_kw": doc.site.site_power_kw, "duration_s": round(r.duration_s, 3)}
        row.update({f"{p.name}_kw": p.power_kw for p in doc.pools})
        rows.append(row)
    frame_out(pd.DataFrame(rows), format, "decisions")


@app.command(epilog="**Examples**\n\n    hashpivot status --db /var/lib/hashpivot/store.sqlite\n\n    hashpivot status --format json")
@operator_errors
def status(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None, format: FormatOpt = OutputFormat.table) -> None:
    """For a human: the last decision (when, status, objective, power per pool) and every feed's age and freshness."""
    import pandas as pd

    from hashpivot.feeds.collect import status as feed_status
    from hashpivot.models.clock import now_utc
    from hashpivot.optimizer.cli.render import today_peak_text
    from hashpivot.optimizer.console.state import banners, decision_interval_s, status_summary
    from hashpivot.optimizer.pipeline.four_cp import peak_risk

    cfg = load_site(config, set_)
    now = now_utc()
    with open_store(cfg, db, create=False) as store:
        last = store.last_decision()
        feeds = feed_status(cfg, store, now)
        summary = status_summary(last, feeds, store.fetch_failures(), store.last_apply(), now)
    doc = last[1] if last else None
    summary["banners"] = banners(doc, summary["last_decision_age_s"], decision_interval_s(cfg, now), feeds)  # as the console shows them
    summary["four_cp"] = peak_risk(doc) if doc is not None else None
    if format is OutputFormat.json:
        echo_json(summary)
        return
    # csv: stdout is the feeds table alone (one header, one row per series); the summary lines go to stderr
    say = functools.partial(typer.echo, err=format is OutputFormat.csv)
    if doc is not None:
        d = summary["last_decision"]
        objective = "n/a" if d["objective_usd"] is None else f"{d['objective_usd']:,.0f} USD"
        age = f", {summary['last_decision_age_s'] / 60:,.0f} min ago" if summary["last_decision_age_s"] is not None else ""
        say(f"last decision #{last[0]} at {d['decided_at_utc']}{age} for {d['interval_start_utc']}: {d['status']}"
                   f" (horizon profit {objective}, site {summary['site_power_kw']:,} kW)"
                   f"{' SAFE ALLOCATION: ' + d['reason'] if summary['safe_allocation'] else ''}")
        say("  " + ", ".join(f"{k} {v:,.0f} kW" for k, v in summary["pools_power_kw"].items()))
        if summary["four_cp"] is not None:
            r = summary["four_cp"]
            cost = "n/a" if r["expected_cost_usd"] is None else f"{r['expected_cost_usd']:,.0f} USD"
            say(f"  4CP: {today_peak_text(r)} (step 0: p = {r['step0_probability']:.2g}; expected 4CP cost over "
                f"the horizon {cost}; `hashpivot fourcp` for the hours)")
    else:
        say("no decision yet")
    for banner in summary["banners"]:
        if banner["kind"] != "safe":  # the safe allocation is on the decision's line
            say(f"! {banner['text']}")
    if summary["last_fleet_apply"]:
        a = summary["last_fleet_apply"]
        say(f"last fleet apply at {a['at_utc']} (decision {a['decision_seq']}): {a['planned']} planned, "
                   f"{a['ok']} applied, {a['failed']} failed")
    if summary["feed_failures"]:
        say("feed failures: " + ", ".join(f"{k} {v}" for k, v in summary["feed_failures"].items()))
    frame_out(pd.DataFrame(summary["feeds"]), OutputFormat.csv if format is OutputFormat.csv else OutputFormat.table, "feeds")
