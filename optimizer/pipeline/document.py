"""The decision document (JSON-ready dict) and its table / CSV renderings."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hashpivot.optimizer.milp.explain import Explanation
from hashpivot.optimizer.forecast import Forecast
from hashpivot.optimizer.milp.schedule import asic_it_kw, gpu_it_kw, site_kw
from hashpivot.optimizer.milp.solve import Solution


def decision_document(sol: Solution, exp: Explanation, forecast: Forecast, site_name: str = "") -> dict[str, Any]:
    """Everything an operator or a downstream system needs about one solve; figures are for step 0."""
    p, s = sol.problem, sol.schedule
    site = site_kw(p, s)
    it0 = float(site[0] / p.pue)
    per_pool_kw = {pool.name: kw for pool, kw in zip(p.asic, asic_it_kw(p, s))}
    per_pool_kw.update({g.name: kw for g, kw in zip(p.gpu, gpu_it_kw(p, s))})
    schedule = [
        {
            "interval_start_utc": _iso(forecast.interval_start_utc[t]),
            "power_price_usd_per_mwh": round(float(p.price_usd_per_mwh[t]), 2),
            "site_power_kw": round(float(site[t]), 1),
            "reserve_kw": round(float(s.reserve_kw[t]), 1),
            "pools_power_kw": {name: round(float(kw[t]), 1) for name, kw in per_pool_kw.items()},
        }
        for t in range(p.steps)
    ]
    return {
        "status": sol.status,
        "site": {"name": site_name, "cap_kw": p.site_cap_kw, "it_power_kw": round(it0, 1), "site_power_kw": round(float(site[0]), 1), "pue": p.pue},
        "interval_start_utc": _iso(forecast.interval_start_utc[0]),
        "horizon_steps": p.steps,
        "step_minutes": forecast.step_minutes,
        "objective_usd": round(sol.objective_usd, 2),
        "bound_usd": round(sol.bound_usd, 2),
        "gap": sol.gap,
        "method": sol.method,
        "inputs": {
            "btc_usd": float(forecast.btc_usd[0]),
            "hashprice_usd_per_th_day": round(float(forecast.hashprice_usd_per_th_day[0]), 6),
            "hashprice_usd_per_ph_day": round(float(forecast.hashprice_usd_per_th_day[0]) * 1000, 3),
            "power_price_usd_per_mwh": round(float(p.price_usd_per_mwh[0]), 2),
            "marginal_power_price_usd_per_mwh": round(exp.marginal_price_usd_per_mwh, 2),
            "reserve_price_usd_per_mw_hour": round(float(p.reserve_price_usd_per_mw_hour[0]), 2),
            "gpu_rates_usd_per_gpu_hour": {g.name: round(float(g.market_rate_usd_per_gpu_hour[0]), 4) for g in p.gpu},
            "forecast_notes": forecast.notes,
        },
        "pools": [
            {
                "name": d.name,
                "kind": d.kind,
                "hall": d.hall,
                "units_on": d.units_on,
                "units_available": d.units_available,
                "mode": d.mode,
                "units_by_mode": d.units_by_mode,
                **({"contract_on": d.contract_on, "market_on": d.market_on} if d.kind == "gpu" else {}),
                "power_kw": round(d.power_kw, 1),
                "revenue_usd_per_hour": round(d.revenue_usd_per_hour, 2),
                "cost_usd_per_hour": round(d.cost_usd_per_hour, 2),
                "breakeven_usd_per_mwh": round(d.breakeven_usd_per_mwh, 2),
                "margin_usd_per_mwh": round(d.margin_usd_per_mwh, 2),
                "reason": d.reason,
            }
            for d in exp.pools
        ],
        "binding_constraints": exp.binding_constraints,
        "shadow_price_usd_per_mw_hour": None if exp.shadow_price_usd_per_mw_hour is None else round(exp.shadow_price_usd_per_mw_hour, 2),
        "hall_shadow_prices_usd_per_mw_hour": {h: round(v, 2) for h, v in exp.hall_shadow_prices_usd_per_mw_hour.items()},
        "breakdown_usd": {k: round(v, 2) for k, v in sol.breakdown.items()},
        "timings_s": {k: round(v, 4) for k, v in sol.timings_s.items()},
        "schedule": schedule,
    }


def _iso(ts) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"


POOL_COLUMNS = [
    "name", "kind", "units_on", "units_available", "mode", "power_kw", "revenue_usd_per_hour",
    "cost_usd_per_hour", "breakeven_usd_per_mwh", "margin_usd_per_mwh", "reason",
]


def to_csv(doc: dict[str, Any]) -> str:
    """One row per pool (step 0), plus the interval start so rows from many solves can be concatenated."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["interval_start_utc", *POOL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for pool in doc["pools"]:
        writer.writerow({"interval_start_utc": doc["interval_start_utc"], **{k: pool.get(k) for k in POOL_COLUMNS}})
    return buf.getvalue()


def to_table(doc: dict[str, Any], width: int = 160) -> str:
    """A screen an operator reads: inputs, one line per pool with its reason, totals and binding constraints."""
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
