"""Renderings of a decision document for a terminal (table) and spreadsheets (CSV); JSON is the document."""

from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hashpivot.models.decision import Decision


def to_json(doc: Decision) -> str:
    return doc.to_json()


POOL_COLUMNS = [
    "name", "kind", "units_on", "units_available", "mode", "power_kw", "revenue_usd_per_hour",
    "cost_usd_per_hour", "breakeven_usd_per_mwh", "margin_usd_per_mwh", "reason",
]


def to_csv(decision: Decision) -> str:
    """One row per pool (step 0), plus the interval start so rows from many solves can be concatenated."""
    doc = decision.model_dump()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["interval_start_utc", *POOL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for pool in doc["pools"]:
        writer.writerow({"interval_start_utc": doc["interval_start_utc"], **{k: pool.get(k) for k in POOL_COLUMNS}})
    return buf.getvalue()


def to_table(decision: Decision, width: int = 160) -> str:
    """A screen an operator reads: inputs, one line per pool with its reason, totals and binding constraints."""
    doc = decision.model_dump()
    console = Console(width=width, record=True, file=io.StringIO(), force_terminal=False, color_system=None)
    inp = doc["inputs"]
    console.print(
        f"[b]{escape(doc['site']['name'])}[/b]  interval {doc['interval_start_utc']}  ({doc['horizon_steps']} x {doc['step_minutes']} min)  "
        f"status {doc['status']} ({doc['method']}, gap {doc['gap']:.2e})"
    )
    gpu_rates = ", ".join(f"{k} {v:.2f}" for k, v in inp["gpu_rates_usd_per_gpu_hour"].items())
    console.print(
        f"BTC {inp['btc_usd']:,.0f} USD | hashprice {inp['hashprice_usd_per_ph_day']:.2f} USD/PH/day | "
        f"power {inp['power_price_usd_per_mwh']:.2f} USD/MWh (marginal {inp['marginal_power_price_usd_per_mwh']:.2f}) | "
        f"GPU USD/h: {gpu_rates}"
    )
    table = Table(show_lines=False)
    for col, justify in [
        ("pool", "left"), ("units on", "right"), ("mode", "left"), ("power kW", "right"), ("revenue $/h", "right"),
        ("energy $/h", "right"), ("breakeven $/MWh", "right"), ("why", "left"),
    ]:
        table.add_column(col, justify=justify, overflow="fold")
    tot_kw = tot_rev = tot_cost = 0.0
    for pool in doc["pools"]:
        mode = pool["mode"] or ("gpu" if pool["kind"] == "gpu" else "-")
        if pool["kind"] == "gpu":
            mode = f"{pool['contract_on']} contract + {pool['market_on']} market"
        table.add_row(
            escape(pool["name"]), f"{pool['units_on']:,}/{pool['units_available']:,}", mode, f"{pool['power_kw']:,.0f}",
            f"{pool['revenue_usd_per_hour']:,.0f}", f"{pool['cost_usd_per_hour']:,.0f}", f"{pool['breakeven_usd_per_mwh']:,.0f}",
            escape(pool["reason"]),
        )
        tot_kw += pool["power_kw"]
        tot_rev += pool["revenue_usd_per_hour"]
        tot_cost += pool["cost_usd_per_hour"]
    table.add_section()
    table.add_row("total (IT)", "", "", f"{tot_kw:,.0f}", f"{tot_rev:,.0f}", f"{tot_cost:,.0f}", "", f"site meter {doc['site']['site_power_kw']:,.0f} of {doc['site']['cap_kw']:,.0f} kW")
    console.print(table)
    shadow = doc["shadow_price_usd_per_mw_hour"]
    console.print(
        f"horizon profit {doc['objective_usd']:,.0f} USD (bound {doc['bound_usd']:,.0f}); "
        f"site-cap shadow price {'n/a' if shadow is None else f'{shadow:,.2f}'} USD per MW-hour"
    )
    console.print(escape("binding at step 0: " + (", ".join(doc["binding_constraints"]) or "none")))
    return console.export_text()


RENDERERS = {"table": to_table, "json": to_json, "csv": to_csv}
