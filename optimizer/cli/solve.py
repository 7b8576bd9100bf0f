"""`hashpivot solve` (one interval, through the one pipeline) and `hashpivot hashprice`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.models.errors import InputError
from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    AtOpt,
    DataOpt,
    FormatOpt,
    OutputFormat,
    SetOpt,
    SiteConfigOpt,
    SourceDbOpt,
    SourceOpt,
    VerboseOpt,
    app,
    bad_choice,
    config_path,
    emit,
    load_site,
    open_store,
    operator_errors,
    setup_logging,
    usage_error,
    utc,
)


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
@operator_errors
def solve(
    config: SiteConfigOpt = DEFAULT_CONFIG,
    at: AtOpt = None,
    set_: SetOpt = None,
    data: DataOpt = None,
    source: SourceOpt = "embedded",
    db: SourceDbOpt = None,
    initial: Annotated[Optional[Path], typer.Option(help="what runs now: a previous decision JSON (default: free start)")] = None,
    strategy: Annotated[str, typer.Option(help="auto (LP rounding certified by the LP bound, else MIP) or mip")] = "auto",
    format: FormatOpt = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Solve one interval: how many units of each pool run, in which mode, at what power, earning what, and why."""
    setup_logging(verbose)
    from hashpivot.models.decision import load_decision
    from hashpivot.optimizer.cli.render import RENDERERS
    from hashpivot.optimizer.pipeline.decide import decide
    from hashpivot.optimizer.service.holds import with_hold_reasons

    if strategy not in ("auto", "mip"):
        raise bad_choice("hashpivot solve", "--strategy", strategy, ("auto", "mip"))
    if source not in ("embedded", "store"):
        raise bad_choice("hashpivot solve", "--source", source, ("embedded", "store"))
    cfg = load_site(config, set_)
    market, at_ts = _market(cfg, source, data, db, utc(at, "--at") if at is not None else None)
    previous = None
    if initial is not None:
        try:
            text = initial.read_bytes()
        except OSError as exc:
            raise InputError(f"--initial {initial}: cannot read ({exc.strerror})") from None
        previous = load_decision(text, f"--initial {initial}")
    reasons: dict[str, str] = {}
    if source == "store":  # the site's own data: the operator's holds in force now bound it, as in the daemon
        from hashpivot.models.clock import now_utc
        from hashpivot.optimizer.service.holds import held_config, held_start

        with open_store(cfg, db, create=False) as store:
            holds = store.active_holds(now_utc())
        cfg, reasons = held_config(cfg, holds)
        if reasons:
            typer.echo(f"note: the operator holds in force bound {', '.join(sorted(reasons))} (`hashpivot hold list`)",
                       err=True)
            previous = held_start(previous, cfg, reasons) if previous is not None else None
    decided = decide(cfg, market, at_ts, previous, strategy=strategy)  # type: ignore[arg-type]
    _warn_if_blind(decided.document)
    emit(RENDERERS[format.value](with_hold_reasons(decided.document, reasons)), output)


def _warn_if_blind(doc) -> None:
    """stderr, whatever the format: the decision priced 4CP at the climatology (ERCOT load missing or stale)."""
    from hashpivot.optimizer.pipeline.four_cp import four_cp_fallback

    blind = four_cp_fallback(doc)
    if blind:
        typer.echo(f"warning: 4CP risk is the climatology, not a forecast: {blind}", err=True)


def _market(cfg, source: str, data: Optional[Path], db: Optional[Path], at_ts):
    """The market data a one-interval command reads, and its decision time: the embedded data (or --data DIR),
    or the store as of `at_ts` (default: the latest time every required series covers)."""
    import pandas as pd

    from hashpivot.feeds.collect import required_series
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.feeds.market_store import latest_covered_time, market_from_store

    if source == "store":
        with open_store(cfg, db, create=False) as store:
            if at_ts is None:  # like the embedded default: the latest time every required series covers
                needed = [s for s in required_series(cfg) if s != "hashprice_usd_per_th_day"]  # derived by the forecast
                at_ts = pd.Timestamp(latest_covered_time(store, needed, cfg.site.settlement_point))
            return market_from_store(store, cfg.site.settlement_point, as_of=at_ts.to_pydatetime()), at_ts
    return load_market_data(data, cfg.site.settlement_point), at_ts


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot fourcp --at 2024-08-20T15:00Z\n\n"
        "    hashpivot fourcp --at 2024-07-01T12:00Z --format json\n\n"
        "    hashpivot fourcp --source store --format csv > fourcp-today.csv   # live: the store's load and ERCOT forecast"
    )
)
@operator_errors
def fourcp(
    config: SiteConfigOpt = DEFAULT_CONFIG,
    at: AtOpt = None,
    set_: SetOpt = None,
    data: DataOpt = None,
    source: SourceOpt = "embedded",
    db: SourceDbOpt = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """ERCOT 4CP outlook: today's and tomorrow's (Central) probability that each hour holds its month's 4CP
    interval, the expected charge of running the site through it (per MW and at the interconnect cap, at
    `[power.four_cp]` rate / 4), the decision's planned site load and how much of the curtailment is for 4CP
    (the same decision with 4CP not priced, minus the plan)."""
    import pandas as pd

    from hashpivot.optimizer.cli.common import frame_out
    from hashpivot.optimizer.forecast import default_at
    from hashpivot.optimizer.pipeline.decide import decide
    from hashpivot.optimizer.pipeline.four_cp import four_cp_outlook

    if source not in ("embedded", "store"):
        raise bad_choice("hashpivot fourcp", "--source", source, ("embedded", "store"))
    cfg = load_site(config, set_)
    label = f"{config_path(config)}{' (with --set overrides)' if set_ else ''}"
    if cfg.site.market != "ERCOT":
        raise InputError(f"{label}: fourcp is for ERCOT sites (4CP is ERCOT's transmission charge); site.market = "
                         f"{cfg.site.market!r} has none")
    if cfg.power.four_cp is None:
        raise InputError(f"{label}: no [power.four_cp] table; add one (README: 4CP) to price 4CP peaks")
    if not cfg.power.four_cp.enabled:
        raise InputError(f"{label}: power.four_cp.enabled = false; set it to true to price 4CP peaks")
    market, at_ts = _market(cfg, source, data, db, utc(at, "--at") if at is not None else None)
    at_ts = default_at(market) if at_ts is None else at_ts
    decided = decide(cfg, market, at_ts)
    unpriced = cfg.model_copy(update={"power": cfg.power.model_copy(
        update={"four_cp": cfg.power.four_cp.model_copy(update={"enabled": False})})})
    table = four_cp_outlook(cfg, market, at_ts, decided.document, without_four_cp=decide(unpriced, market, at_ts).document)
    _warn_if_blind(decided.document)
    months = sorted(cfg.power.four_cp.months)
    days = sorted({h[:10] for h in table["hour_start_central"]})
    floor = cfg.power.four_cp.min_probability
    unpriced_hours = int(((table["four_cp_probability"] > 0) & (table["four_cp_probability"] < floor)).sum())
    if unpriced_hours:
        typer.echo(f"note: {unpriced_hours} hours with p below power.four_cp.min_probability = {floor:g} are not "
                   "priced, as in the decision: their expected costs show 0", err=True)
    if not any(int(d[5:7]) in months for d in days):
        typer.echo(f"note: {' and '.join(days)} (Central) are outside the 4CP months {months} of [power.four_cp]: "
                   "no hour can hold a 4CP interval, so p is 0 and nothing is curtailed for 4CP", err=True)
    if format is OutputFormat.table:  # short headers and cells that fit 80 columns; json/csv keep full keys and values
        table = table.drop(columns=["interval_start_utc", "four_cp_basis"]).assign(
            hour_start_central=table["hour_start_central"].str[5:],
            four_cp_probability=table["four_cp_probability"].map(lambda v: float(f"{v:.2g}")),  # a tiny p is not 0
            **{c: table[c].round(0) for c in ("expected_cost_usd_per_mw", "expected_cost_at_cap_usd", "planned_site_kw",
                                              "planned_expected_cost_usd", "four_cp_curtailment_kw")},
        ).drop(columns=["planned_curtailment_kw"]).rename(columns={  # the cap minus the plan: in json/csv
            "hour_start_central": "hour CT", "four_cp_probability": "p", "expected_cost_usd_per_mw": "USD/MW",
            "expected_cost_at_cap_usd": "USD@cap", "planned_site_kw": "plan kW",
            "planned_expected_cost_usd": "plan USD", "four_cp_curtailment_kw": "4CP kW"})
    decided_at = pd.Timestamp(decided.document.interval_start_utc)  # the decision's interval, as solve names it
    frame_out(table, format, f"4CP outlook at {decided_at:%Y-%m-%dT%H:%MZ} (rate {cfg.power.four_cp.rate_usd_per_kw_year:g} "
              "USD/kW-year)")


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot hashprice --difficulty 8.9e13 --btc-usd 58000 --height 856000 --fees-btc-per-block 0.05\n\n"
        "    hashpivot hashprice --difficulty 20082460130795 --btc-usd 60865.45 --subsidy-btc 6.25 --format json"
    )
)
@operator_errors
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
        raise usage_error("hashpivot hashprice", "give exactly one of --subsidy-btc or --height")
    if height is not None and height < 0:
        raise InputError(f"--height {height}: must be >= 0")
    if not (difficulty > 0 and math.isfinite(difficulty)):
        raise InputError(f"--difficulty {difficulty}: must be a finite number > 0")
    for option, value in (("--btc-usd", btc_usd), ("--fees-btc-per-block", fees_btc_per_block),
                          ("--subsidy-btc", subsidy_btc)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"{option} {value}: must be a finite number >= 0")
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
