"""Renderings of a decision document for a terminal (table) and spreadsheets (CSV); JSON is the document.

The table shows the whole decision: modes split per pool, contract and marketplace GPUs, the reserve offer,
fixed-block energy bought and resold, the binding constraints in an operator's words and what the marginal
price is made of. It fits the terminal: below 150 columns each pool's "why" is printed under the table
instead of in a column, and numbers are never cut.
"""

from __future__ import annotations

import csv
import io
import shutil

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hashpivot.models.decision import Decision, PoolDecision

WIDE_COLUMNS = 150  # from this width on, the why column sits in the table


def terminal_width() -> int:
    return max(shutil.get_terminal_size((100, 24)).columns, 60)


def to_json(doc: Decision) -> str:
    return doc.to_json()


POOL_COLUMNS = [
    "name", "kind", "units_on", "units_available", "mode", "units_by_mode", "contract_on", "market_on", "power_kw",
    "revenue_usd_per_hour", "cost_usd_per_hour", "breakeven_usd_per_mwh", "margin_usd_per_mwh", "reason",
]


def mode_text(pool: PoolDecision) -> str:
    """`eco 4,409 · stock 2,091` for ASIC pools, `3,072 contract + 1,024 market` for GPU pools."""
    if pool.kind == "gpu":
        return f"{pool.contract_on or 0:,} contract + {pool.market_on or 0:,} market"
    return " · ".join(f"{mode} {n:,}" for mode, n in pool.units_by_mode.items()) or "off"


def to_csv(decision: Decision) -> str:
    """One row per pool (step 0), plus the interval start so rows from many solves can be concatenated;
    `units_by_mode` as `eco=4409;stock=2091`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["interval_start_utc", *POOL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for pool in decision.pools:
        row = pool.model_dump()
        row["units_by_mode"] = ";".join(f"{m}={n}" for m, n in pool.units_by_mode.items())
        writer.writerow({"interval_start_utc": decision.interval_start_utc, **{k: row.get(k) for k in POOL_COLUMNS}})
    return buf.getvalue()


def _money(x: float | None) -> str:
    return "" if x is None else f"{round(x):,}"  # a whole number: never "-0" for a cost of -0.3


def today_peak_text(risk: dict) -> str:
    """Today's (Central) highest step probability and when, or that no step of today can hold a 4CP interval
    (a day outside the 4CP months, or whose hours are all past the month's peak); and the horizon's highest when
    a later day's is higher (a decision at 19:00 CT plans for tomorrow's afternoon)."""
    from hashpivot.models.calendar import MARKET_TZ, to_utc

    end = risk.get("horizon_ends_today_utc")
    within = f" within the horizon (to {to_utc(end).tz_convert(MARKET_TZ):%H:%M} CT)" if end else ""
    later = ""
    if (risk.get("horizon_max_probability") or 0.0) > (risk["today_max_probability"] or 0.0):
        at = to_utc(risk["horizon_max_at_utc"]).tz_convert(MARKET_TZ)
        later = f"; the horizon's highest {risk['horizon_max_probability']:.2g} at {at:%H:%M} CT {at:%d %b}"
    if not risk["today_max_probability"]:
        return f"no 4CP risk today{within} (p = 0 in every step of today, Central){later}"
    top = to_utc(risk["today_max_at_utc"]).tz_convert(MARKET_TZ)
    return f"today's highest{within} {risk['today_max_probability']:.2g} at {top:%H:%M} CT{later}"


def _four_cp_text(doc: Decision) -> str | None:
    """One line on 4CP when the decision priced it: step 0's p, today's highest (Central), the expected charge, and
    why when the probabilities are the climatology (ERCOT load missing or stale)."""
    from hashpivot.optimizer.pipeline.four_cp import peak_risk

    risk = peak_risk(doc)
    if risk is None:
        return None
    cost = "n/a" if risk["expected_cost_usd"] is None else f"{risk['expected_cost_usd']:,.0f} USD"
    text = (f"4CP: p = {risk['step0_probability']:.2g} at step 0, {today_peak_text(risk)}; "
            f"expected 4CP charge over the horizon {cost}")
    return text + (f". Risk is the climatology, not a forecast: {risk['fallback']}" if risk["fallback"] else "")


def to_table(doc: Decision, width: int | None = None) -> str:
    """A screen an operator reads: inputs, one line per pool, totals, reserve, energy, binding constraints."""
    width = width or terminal_width()
    wide = width >= WIDE_COLUMNS
    console = Console(width=width, record=True, file=io.StringIO(), force_terminal=False, color_system=None)
    inp = doc.inputs
    status = doc.status + (f" ({doc.method}, gap {doc.gap:.2e})" if doc.method else "")
    console.print(f"[b]{escape(doc.site.name)}[/b]  interval {doc.interval_start_utc}  "
                  f"({doc.horizon_steps} x {doc.step_minutes} min)  status {status}")
    if doc.reason and doc.status in ("safe", "kept", "feasible"):
        console.print(escape(f"why: {doc.reason}"))
    if inp is not None:
        gpu_rates = ", ".join(f"{k} {v:.2f}" for k, v in inp.gpu_rates_usd_per_gpu_hour.items())
        parts = [f"power {inp.power_price_usd_per_mwh:.2f} USD/MWh"]
        if any(pool.kind == "asic" for pool in doc.pools):  # a GPU-only site has no use for the mining inputs
            parts.insert(0, f"BTC {inp.btc_usd:,.0f} USD | hashprice {inp.hashprice_usd_per_ph_day:.2f} USD/PH/day")
        if gpu_rates:
            parts.append(f"GPU USD/h: {gpu_rates}")
        console.print(" | ".join(parts))
        console.print(escape(_marginal_text(doc)))
    four_cp = _four_cp_text(doc)
    if four_cp:
        console.print(escape(four_cp))
    table = Table(show_lines=False)
    table.add_column("pool", justify="left", no_wrap=True)
    table.add_column("units on", justify="right", no_wrap=True)
    table.add_column("modes (units)", justify="left", overflow="fold")
    for col in ("power\nkW", "revenue\n$/h", "energy\n$/h", "breakeven\n$/MWh"):
        table.add_column(col, justify="right", no_wrap=True)
    if wide:
        table.add_column("why", justify="left", overflow="fold")
    tot_kw = tot_rev = tot_cost = 0.0
    for pool in doc.pools:
        cells = [escape(pool.name), f"{pool.units_on:,}/{pool.units_available:,}", escape(mode_text(pool)),
                 f"{pool.power_kw:,.0f}", _money(pool.revenue_usd_per_hour), _money(pool.cost_usd_per_hour),
                 _money(pool.breakeven_usd_per_mwh)]
        table.add_row(*cells, *([escape(pool.reason)] if wide else []))
        tot_kw += pool.power_kw
        tot_rev += pool.revenue_usd_per_hour or 0.0
        tot_cost += pool.cost_usd_per_hour or 0.0
    table.add_section()
    table.add_row("total (IT)", "", "", f"{tot_kw:,.0f}", _money(tot_rev), _money(tot_cost), "", *([""] if wide else []))
    console.print(table)
    if not wide:
        for pool in doc.pools:
            console.print(escape(f"{pool.name}: {pool.reason}"))
    site = doc.site
    console.print(f"site meter {site.site_power_kw:,.0f} of {site.cap_kw:,.0f} kW (IT {site.it_power_kw:,.0f} kW x PUE {site.pue:g})")
    console.print(escape(_reserve_text(doc)))
    if site.block_kw:
        console.print(f"fixed blocks: {site.block_kw:,.0f} kW delivered, {site.resold_kw or 0:,.0f} kW resold, "
                      f"{site.bought_kw or 0:,.0f} kW bought at the real-time price")
    if doc.objective_usd is not None:
        shadow = doc.shadow_price_usd_per_mw_hour
        console.print(f"horizon profit {_money(doc.objective_usd)} USD (bound {_money(doc.bound_usd)}); one more MW of "
                      f"interconnect is worth {'n/a' if shadow is None else f'{shadow:,.2f}'} USD per MW-hour "
                      "(site-cap shadow price)")
    binding = doc.binding_explained or doc.binding_constraints
    console.print(escape("binding at step 0: " + ("; ".join(binding) or "none")))
    return console.export_text()


def _marginal_text(doc: Decision) -> str:
    inp = doc.inputs
    if abs(inp.marginal_power_price_usd_per_mwh - inp.power_price_usd_per_mwh) < 0.005:
        source = ("unused fixed-block energy, valued at the real-time price" if doc.site.resold_kw
                  else "the real-time price")
        return f"marginal power {inp.marginal_power_price_usd_per_mwh:.2f} USD/MWh: {source}"
    return (f"marginal power {inp.marginal_power_price_usd_per_mwh:.2f} USD/MWh = real-time {inp.power_price_usd_per_mwh:.2f}"
            f" + adder {inp.adder_usd_per_mwh:.2f} (what one more bought MWh costs; breakevens are compared with it)")


def _reserve_text(doc: Decision) -> str:
    if not doc.reserve_kw:
        return "reserve: none offered"
    price = doc.inputs.reserve_price_usd_per_mw_hour if doc.inputs else 0.0
    product = (doc.inputs.reserve_product if doc.inputs else None) or "reserve"
    return (f"reserve: {doc.reserve_kw / 1000:,.1f} MW {product} offered at {price:,.2f} USD/MW-h = "
            f"{doc.reserve_kw / 1000 * price:,.0f} USD/h (from curtailable ASIC load)")


RENDERERS = {"table": to_table, "json": to_json, "csv": to_csv}
