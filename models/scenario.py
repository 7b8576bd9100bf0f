"""What-if scenario files: config overrides plus transforms of input series, validated like the site config.

    name = "BTC at 50 %"
    base = "../configs/site.toml"          # optional; relative to this file; default: the CLI's --config
    set = { "site.interconnect_cap_kw" = 80000, "asic_pools.s21.units_available" = 5000 }

    [[transform]]
    series = "btc_usd"                     # btc_usd, power_price_usd_per_mwh, hashprice_usd_per_th_day,
    op = "scale"                           #   reserve_price_usd_per_mw_hour, gpu_rate.<gpu pool name>
    value = 0.5                            # op: set | scale | add | csv (file with interval_start_utc,value)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from hashpivot.models.calendar import iso_utc
from hashpivot.models.config import StrictModel, format_validation_error, read_toml
from hashpivot.models.errors import ConfigError

SERIES = ("btc_usd", "power_price_usd_per_mwh", "hashprice_usd_per_th_day", "reserve_price_usd_per_mw_hour")
MAY_BE_NEGATIVE = ("power_price_usd_per_mwh",)  # ERCOT prices go below zero; BTC, hashprice and rates do not


class Transform(StrictModel):
    series: str
    op: Literal["set", "scale", "add", "csv"]
    value: float | None = None
    file: str | None = None

    @field_validator("series")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SERIES and not v.startswith("gpu_rate."):
            raise ValueError(f"must be one of {', '.join(SERIES)} or gpu_rate.<gpu pool name>")
        return v

    @model_validator(mode="after")
    def _operand(self) -> "Transform":
        if self.op == "csv" and not self.file:
            raise ValueError("op = 'csv' needs file = \"path.csv\" (columns interval_start_utc,value)")
        if self.op != "csv" and self.value is None:
            raise ValueError(f"op = {self.op!r} needs a numeric value")
        return self


class Scenario(StrictModel):
    name: str = Field(min_length=1)
    description: str = ""
    base: str | None = None
    set: dict[str, Any] = {}
    transform: list[Transform] = []
    at: str | None = Field(None, description="decision time, UTC ISO 8601 (default: the CLI's --at)")

    @field_validator("at", mode="before")
    @classmethod
    def _time(cls, v: Any) -> str | None:
        """A TOML date-time or an ISO 8601 string, as the UTC text every document uses."""
        if v is None:
            return None
        if not isinstance(v, (str, date)):
            raise ValueError("must be a date/time such as \"2024-08-05T14:00Z\"")
        try:
            return iso_utc(v)
        except (ValueError, TypeError):
            raise ValueError("not a date/time (use ISO 8601, e.g. \"2024-08-05T14:00Z\")") from None


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; errors name the file, key path, value and what is allowed."""
    path = Path(path)
    raw = read_toml(path, "scenario file")
    raw.setdefault("name", path.stem)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(str(path), raw, e, Scenario) for e in exc.errors())) from None
    return scenario, path
