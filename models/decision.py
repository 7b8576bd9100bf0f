"""The decision document: what one interval's decision says, for every status, as a typed pydantic model.

`hashpivot solve --format json`, the daemon's published files, the store's decision rows and the webhook
all carry this document; `--initial` and the daemon rebuild the next decision's starting state from it
(units on per mode, GPUs on, and the recent start-ups that minimum run and rental times need).
Its JSON Schema is `docs/decision.schema.json` (`python -m hashpivot.models.decision` prints it).

Schema versions: 1 (no `schema_version` key, no `recent_starts`: minimum times restart from zero when such a
document is the starting state), 2 (recent start-ups), 3 (this one: each step's 4CP probability and the
horizon's expected 4CP cost; both null when 4CP is not priced).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hashpivot.models.errors import InputError

SCHEMA_VERSION = 3

Status = Literal["optimal", "feasible", "safe", "kept"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolDecision(_Doc):
    """One pool at step 0. GPU pools split their GPUs into contract and marketplace ones."""

    name: str
    kind: Literal["asic", "gpu"]
    hall: str
    units_on: int = Field(ge=0)
    units_available: int = Field(ge=0)
    mode: str | None = Field(None, description="the mode most units run in (ASIC pools)")
    units_by_mode: dict[str, int] = Field(default_factory=dict, description="ASIC units on per mode")
    contract_on: int | None = Field(None, ge=0, description="GPU pools: contract GPUs on")
    market_on: int | None = Field(None, ge=0, description="GPU pools: marketplace GPUs on")
    power_kw: float = Field(description="IT power at step 0, kW")
    revenue_usd_per_hour: float | None = None
    cost_usd_per_hour: float | None = Field(None, description="energy at the marginal price, site meter")
    breakeven_usd_per_mwh: float | None = None
    margin_usd_per_mwh: float | None = None
    reason: str = Field(description="why the pool is where it is, in an operator's words")
    recent_starts: list[int] | None = Field(
        None,
        description="units (ASIC) or marketplace GPUs started at step 0, one step before, two steps before, … "
        "(most recent first, as many steps as the longest minimum run/rental time); null in schema 1",
    )


class SiteState(_Doc):
    name: str = ""
    cap_kw: float
    it_power_kw: float
    site_power_kw: float
    pue: float = 1.0
    bought_kw: float | None = Field(None, description="bought at the real-time price at step 0 (site meter)")
    block_kw: float | None = Field(None, description="fixed-block energy delivered at step 0 (take-or-pay)")
    resold_kw: float | None = Field(None, description="unused fixed-block energy resold at the real-time price")


class Inputs(_Doc):
    """The market as the decision saw it at step 0."""

    btc_usd: float
    hashprice_usd_per_th_day: float
    hashprice_usd_per_ph_day: float
    power_price_usd_per_mwh: float
    marginal_power_price_usd_per_mwh: float = Field(
        description="what one more MWh costs the site at step 0: the real-time price plus power.adder_usd_per_mwh "
        "when energy is bought, the real-time price alone when it comes out of unused fixed-block energy")
    adder_usd_per_mwh: float = 0.0
    reserve_price_usd_per_mw_hour: float
    reserve_product: str | None = Field(None, description="ancillary product offered (power.reserve.product), or fixed")
    gpu_rates_usd_per_gpu_hour: dict[str, float] = Field(default_factory=dict)
    forecast_notes: dict[str, Any] = Field(default_factory=dict)


class Step(_Doc):
    interval_start_utc: str
    power_price_usd_per_mwh: float
    site_power_kw: float
    reserve_kw: float
    pools_power_kw: dict[str, float]
    four_cp_probability: float | None = Field(
        None, ge=0, le=1, description="probability the step holds its month's ERCOT 4CP interval (null: 4CP not priced)")


class Decision(_Doc):
    """One interval's decision. Figures are for step 0 (the applied step) unless under `schedule`."""

    schema_version: int = Field(1, description="document format version (absent = 1)")
    status: Status = Field(description="optimal | feasible (time limit) | safe (stale inputs) | kept (previous kept)")
    reason: str = ""
    site: SiteState
    interval_start_utc: str = Field(description="start of the interval step 0 applies to, UTC")
    decided_at_utc: str | None = Field(None, description="when the daemon took the decision, UTC")
    horizon_steps: int = Field(ge=1)
    step_minutes: int = Field(ge=1)
    objective_usd: float | None = Field(None, description="horizon profit (null for safe)")
    bound_usd: float | None = None
    gap: float | None = None
    method: str | None = None
    inputs: Inputs | None = None
    pools: list[PoolDecision]
    reserve_kw: float = Field(0.0, description="reserve offered at step 0, site-meter kW")
    fleet: dict[str, Any] | None = Field(None, description="what the fleet's telemetry changed: units_available per pool "
                                         "(healthy machines, never above the config's figure) and warnings")
    binding_constraints: list[str] = Field(default_factory=list, description="row groups binding at step 0")
    binding_explained: list[str] = Field(default_factory=list, description="the same, in an operator's words")
    shadow_price_usd_per_mw_hour: float | None = None
    hall_shadow_prices_usd_per_mw_hour: dict[str, float] = Field(default_factory=dict)
    breakdown_usd: dict[str, float] = Field(default_factory=dict)
    four_cp_expected_cost_usd: float | None = Field(
        None, description="expected 4CP transmission charge of the planned schedule over the horizon, "
        "sum of p x rate/4 x site kW (null: 4CP not priced)")
    timings_s: dict[str, float] = Field(default_factory=dict)
    schedule: list[Step] = Field(default_factory=list)

    def pool(self, name: str) -> PoolDecision | None:
        return next((p for p in self.pools if p.name == name), None)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def load_decision(data: str | bytes | dict, label: str) -> Decision:
    """A decision document from JSON text or a mapping; InputError naming `label`, the key and what is wrong."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{label}: not a hashpivot decision JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{label}: not a hashpivot decision JSON (expected an object)")
    version = data.get("schema_version", 1)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise InputError(f"{label}: decision schema {version} is newer than this hashpivot ({SCHEMA_VERSION}); upgrade hashpivot")
    try:
        return Decision.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{label}: not a hashpivot decision JSON: {where}: {first['msg']}") from None


def json_schema() -> str:
    return json.dumps(Decision.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(json_schema())
