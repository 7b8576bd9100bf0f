"""Site configuration: the TOML schema, its validation and `--set key.path=value` overrides.

Every error names the file, the key path, the bad value and what is allowed, e.g.
``configs/site.toml: asic_pools[2].modes[0].power_w = -5: must be greater than 0``.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import re
import tomllib
import typing
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hashpivot.models.catalogue import ASIC_MODELS, GPU_MODELS, AsicModel
from hashpivot.models.errors import ConfigError
from hashpivot.models.series import FEED_GROUPS, FEED_SOURCES, SPECS

log = logging.getLogger(__name__)


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored. Types are strict too: TOML
    has numbers, booleans and strings, so `rate = "68.5"` or `enabled = "yes"` is a mistake to name, not to
    coerce (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CoolingDerate(StrictModel):
    """Hall capacity falls linearly above `start_temp_c` (cooling runs out of headroom)."""

    start_temp_c: float = 30.0
    fraction_per_c: float = Field(0.01, ge=0, le=1)
    min_fraction: float = Field(0.5, ge=0, le=1)


MARKETS = ("ERCOT", "NYISO")  # markets whose real-time prices a collector fetches (feeds/registry.py)
# NYISO's zones as its real-time zonal LBMP report names them (feeds/nyiso.py): a NYISO site settles at one of them
NYISO_ZONES = ("CAPITL", "CENTRL", "DUNWOD", "GENESE", "HUD VL", "LONGIL", "MHK VL", "MILLWD", "N.Y.C.", "NORTH", "WEST")


class Hall(StrictModel):
    name: str = Field(min_length=1)
    cap_kw: float = Field(gt=0, description="IT power limit of the hall's feeders/cooling, kW")
    cooling_derate: CoolingDerate | None = None


class Site(StrictModel):
    name: str = "site"
    interconnect_cap_kw: float = Field(gt=0, description="site-meter limit, kW (IT load x PUE)")
    pue: float = Field(1.0, ge=1.0, le=3.0)
    ramp_limit_kw_per_step: float | None = Field(None, gt=0, description="max change of site-meter kW per step")
    market: str = Field("ERCOT", description="the ISO whose real-time prices the site pays")
    settlement_point: str = Field("HB_WEST", min_length=1, description="ERCOT hub, load zone or node (HB_WEST); "
                                  "a NYISO zone (N.Y.C.)")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    halls: list[Hall] = Field(min_length=1)

    @field_validator("market")
    @classmethod
    def _collected_market(cls, v: str) -> str:
        if v == "CAISO":
            raise ValueError("CAISO prices are not collected yet; supported: ERCOT, NYISO")
        if v not in MARKETS:
            raise ValueError(f"must be one of: {', '.join(MARKETS)}")
        return v


class AsicMode(StrictModel):
    name: str = Field(min_length=1)
    power_w: float = Field(gt=0)
    hashrate_th: float = Field(gt=0)


class AsicPool(StrictModel):
    name: str = Field(min_length=1)
    model: str | None = None
    hashrate_th: float | None = Field(None, gt=0, description="stock hashrate when no catalogue model is given")
    power_w: float | None = Field(None, gt=0, description="stock power when no catalogue model is given")
    units_installed: int = Field(ge=0)
    units_available: int | None = Field(None, ge=0)
    modes: list[AsicMode] | None = None
    hall: str
    pool_fee: float = Field(0.02, ge=0, lt=1)
    startup_cost_usd_per_unit: float = Field(0.0, ge=0)
    min_up_minutes: int = Field(0, ge=0)
    min_units_on: int = Field(0, ge=0, description="units that must run every step (a must-run floor; an operator "
                              "hold at N units sets it)")

    @model_validator(mode="after")
    def _resolve_modes(self) -> "AsicPool":
        """Modes from `modes`, else from `hashrate_th` and `power_w` (any model name, catalogued or not), else from
        the catalogue's figures for `model`."""
        if self.units_available is None:
            self.units_available = self.units_installed
        custom = self.modes is not None or (self.hashrate_th is not None and self.power_w is not None)
        if self.model is not None and self.model not in ASIC_MODELS and not custom:
            raise ValueError(f"model = {self.model!r}: unknown ASIC model; must be one of: {', '.join(ASIC_MODELS)} "
                             "(for another model give its hashrate_th and power_w, or modes)")
        if self.modes is None:
            if self.model in ASIC_MODELS:
                stock = ASIC_MODELS[self.model]
                hashrate, power = self.hashrate_th or stock.hashrate_th, self.power_w or stock.power_w
            elif self.hashrate_th is not None and self.power_w is not None:
                hashrate, power = self.hashrate_th, self.power_w
            else:
                raise ValueError("give a catalogue `model`, explicit `hashrate_th` and `power_w`, or `modes`")
            self.modes = [AsicMode(name=n, power_w=p, hashrate_th=h) for n, p, h in AsicModel("", hashrate, power, "").default_modes()]
        if not self.modes:
            raise ValueError("modes must list at least one (power_w, hashrate_th) mode")
        return self


class GpuContract(StrictModel):
    """A hosting deal: `committed_gpus` at a fixed rate. No SLA penalty given = firm (never curtailed)."""

    committed_gpus: int = Field(ge=0)
    rate_usd_per_gpu_hour: float = Field(ge=0)
    sla_penalty_usd_per_gpu_hour: float | None = Field(None, ge=0)


class GpuPool(StrictModel):
    name: str = Field(min_length=1)
    model: str | None = None
    gpus_installed: int = Field(ge=0)
    gpus_available: int | None = Field(None, ge=0)
    board_power_w: float | None = Field(None, gt=0)
    server_share_w: float | None = Field(None, ge=0)
    idle_power_fraction: float = Field(0.2, ge=0, le=1)
    marketplace_rate_usd_per_gpu_hour: float | None = Field(None, ge=0, le=50)
    rate_series: str | None = Field(None, description="GPU model whose embedded/stored market rate to use, e.g. H100")
    utilisation: float = Field(0.7, ge=0, le=1)
    marketplace_fee: float = Field(0.1, ge=0, lt=1)
    min_rental_hours: float = Field(0.0, ge=0)
    startup_cost_usd_per_gpu: float = Field(0.0, ge=0)
    hall: str
    contract: GpuContract | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str | None) -> str | None:
        if v is not None and v not in GPU_MODELS:
            raise ValueError(f"unknown GPU model; must be one of: {', '.join(GPU_MODELS)}")
        return v

    @model_validator(mode="after")
    def _resolve_power(self) -> "GpuPool":
        if self.gpus_available is None:
            self.gpus_available = self.gpus_installed
        if self.board_power_w is None or self.server_share_w is None:
            if self.model is None:
                raise ValueError("give a catalogue `model` or both `board_power_w` and `server_share_w`")
            cat = GPU_MODELS[self.model]
            self.board_power_w = self.board_power_w if self.board_power_w is not None else cat.board_power_w
            self.server_share_w = self.server_share_w if self.server_share_w is not None else cat.server_share_w
        if self.marketplace_rate_usd_per_gpu_hour is None and self.rate_series is None:
            if self.contract is None:
                raise ValueError("give `marketplace_rate_usd_per_gpu_hour` or a `rate_series` (e.g. \"H100\"), or a "
                                 "`contract`")
        return self

    @property
    def has_marketplace(self) -> bool:
        """Whether GPUs beyond the contract are rented out (a contract-only pool gives no marketplace rate)."""
        return self.marketplace_rate_usd_per_gpu_hour is not None or self.rate_series is not None

    @property
    def full_power_kw(self) -> float:
        """Power of one GPU under load including its share of the server, kW."""
        return (self.board_power_w + self.server_share_w) / 1000.0

    @property
    def market_power_kw(self) -> float:
        """Average power of one marketplace GPU: loaded while rented, idle the rest of the time, kW."""
        u = self.utilisation
        return self.full_power_kw * (u + (1.0 - u) * self.idle_power_fraction)

    @property
    def committed_gpus(self) -> int:
        return self.contract.committed_gpus if self.contract else 0


class FixedBlock(StrictModel):
    """Take-or-pay energy bought ahead at a fixed price; unused energy is resold at the real-time price."""

    name: str = "block"
    power_mw: float = Field(gt=0)
    price_usd_per_mwh: float
    start_hour_utc: int = Field(0, ge=0, le=23)
    end_hour_utc: int = Field(24, ge=1, le=24)

    def active_at_hour(self, hour_utc: int) -> bool:
        if self.start_hour_utc < self.end_hour_utc:
            return self.start_hour_utc <= hour_utc < self.end_hour_utc
        return hour_utc >= self.start_hour_utc or hour_utc < self.end_hour_utc


ANCILLARY_PRODUCTS = ("regup", "regdn", "rrs", "nspin", "ecrs")


class Reserve(StrictModel):
    """Demand-response / ancillary programme paid for curtailable (ASIC) load held ready to drop."""

    enabled: bool = True
    product: Literal["regup", "regdn", "rrs", "nspin", "ecrs"] | None = "ecrs"
    capacity_price_usd_per_mw_hour: float | None = Field(None, ge=0, description="fixed price; overrides `product`")
    max_offer_mw: float = Field(ge=0)

    @model_validator(mode="after")
    def _price_source(self) -> "Reserve":
        if self.product is None and self.capacity_price_usd_per_mw_hour is None:
            raise ValueError("give a `product` series or a fixed `capacity_price_usd_per_mw_hour`")
        return self


FOUR_CP_RATE_2025_USD_PER_KW_YEAR = 68.547301


class FourCp(StrictModel):
    """ERCOT 4CP transmission charge: next year's charge is rate x the site's average demand over the four
    15-minute intervals of highest ERCOT load in June-September, so running `site_kw` through a step that holds
    a month's peak with probability p is expected to cost p x rate / 4 x site_kw (16 TAC §25.192)."""

    enabled: bool = True
    rate_usd_per_kw_year: float = Field(
        FOUR_CP_RATE_2025_USD_PER_KW_YEAR, ge=0, le=1000,
        description="ERCOT postage-stamp transmission rate; default 68.547301, the 2025 rate (PUCT Docket 57491, "
        "final order 2025-06-05, https://interchange.puc.texas.gov/Documents/57491_58_1505349.PDF; "
        "feeds/data/ercot_transmission_rates.csv)")
    months: list[int] = Field([6, 7, 8, 9], min_length=1, description="months whose peak counts (1-12)")
    min_probability: float = Field(0.0, ge=0, le=1, description="probabilities below this count as 0")

    @field_validator("months")
    @classmethod
    def _months(cls, v: list[int]) -> list[int]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months must be 1-12, got {bad[0]}")
        twice = sorted({m for m in v if v.count(m) > 1})
        if twice:
            raise ValueError(f"months lists {twice[0]} twice (each month's peak counts once)")
        return sorted(v)


class Power(StrictModel):
    index: Literal["real_time"] = "real_time"
    adder_usd_per_mwh: float = Field(0.0, ge=-100, le=500)
    fixed_blocks: list[FixedBlock] = []
    reserve: Reserve | None = None
    four_cp: FourCp | None = None


class Horizon(StrictModel):
    steps: int = Field(24, ge=1, le=5000)
    step_minutes: Literal[5, 15, 30, 60] = 60


class ForecastSettings(StrictModel):
    ambient_temp_c: float = Field(25.0, ge=-60, le=60, description="used until a weather feed is stored")
    price_decay_per_step: float = Field(0.8, ge=0, le=1)
    trailing_hours: int = Field(24, ge=1, le=24 * 30)


class SolverSettings(StrictModel):
    mip_rel_gap: float = Field(1e-4, gt=0, lt=1)
    time_limit_s: float = Field(30.0, gt=0)
    threads: int = Field(1, ge=1, le=64)


def check_http_url(v: str | None) -> str | None:
    """http(s) with a host and no user:password (which would end up in logs and the store)."""
    if v is None:
        return v
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user:password (credentials go in environment variables, never in URLs)")
    return v


class FeedSource(StrictModel):
    enabled: bool = True
    base_url: str | None = Field(None, description="override the provider's URL (tests, proxies)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return check_http_url(v)


class FeedsConfig(StrictModel):
    """[feeds]: where the store lives, HTTP policy, which sources run and in which order."""

    db_path: str | None = Field(None, description="SQLite store; default under the user's data directory")
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    read_timeout_s: float = Field(20.0, gt=0, le=600)
    retries: int = Field(3, ge=0, le=10)
    backoff_s: float = Field(1.0, ge=0, le=60)
    max_retry_after_s: float = Field(60.0, ge=0, le=3600)
    pass_budget_s: float = Field(30.0, gt=0, le=3600, description="one collection pass, retries included, ends by then")
    sources: dict[str, FeedSource] = {}
    jump_limits: dict[str, float | None] = Field({}, description="series family -> max relative jump (\"off\" = no filter)")
    nyiso_zones: list[str] = []
    gpu_models: list[str] = ["H100", "A100", "A40", "RTX 4090"]

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, v: dict[str, FeedSource]) -> dict[str, FeedSource]:
        unknown = sorted(set(v) - set(FEED_SOURCES))
        if unknown:
            raise ValueError(f"unknown source {unknown[0]!r}; must be one of: {', '.join(FEED_SOURCES)}")
        return v

    @field_validator("jump_limits", mode="before")
    @classmethod
    def _jump_off(cls, v):
        """TOML has no null: `"off"` switches a family's jump filter off."""
        if isinstance(v, dict):
            return {k: None if isinstance(x, str) and x.strip().lower() in ("off", "null", "none") else x for k, x in v.items()}
        return v

    @field_validator("jump_limits")
    @classmethod
    def _known_families(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        for k, x in v.items():
            if k not in SPECS:
                raise ValueError(f"unknown series family {k!r}; must be one of: {', '.join(SPECS)}")
            if x is not None and x <= 0:
                raise ValueError(f"jump limit for {k} must be > 0 or null")
        return v

    def source(self, name: str) -> FeedSource:
        return self.sources.get(name, FeedSource())


CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


def _check_cron(v: dict[str, str | int]) -> dict[str, str | int]:
    unknown = sorted(set(v) - set(CRON_FIELDS))
    if unknown:
        raise ValueError(f"unknown cron field {unknown[0]!r}; must be one of: {', '.join(CRON_FIELDS)}")
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger(**{k: str(x) for k, x in v.items()}, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a valid cron schedule: {exc}") from None
    return v


DEFAULT_FEED_CRONS: dict[str, dict[str, str | int]] = {
    "btc": {"minute": "*/5"}, "power_rt": {"minute": "*/5"}, "power_da": {"minute": "*/30"},
    "network": {"minute": "*/30"}, "gpu": {"minute": "*/15"}, "weather": {"minute": "7"},
    # ERCOT load: the 15-minute file comes 5 minutes after each hour, the forecast hourly, the hourly actuals
    # once a day (~05:50 Central); hourly looks at the daily file cost one small request
    "load_rt": {"minute": "9"}, "load_forecast": {"minute": "39"}, "load": {"minute": "21"},
}


class DaemonConfig(StrictModel):
    """[daemon]: schedules (cron fields, UTC), where decisions are published, metrics, the safe allocation."""

    decision_cron: dict[str, str | int] = {"minute": "*/5"}
    feed_crons: dict[str, dict[str, str | int]] = Field(
        default_factory=lambda: dict(DEFAULT_FEED_CRONS),
        description="per feed group; a group given here replaces that group's schedule, the others keep theirs")
    publish_dir: str = Field("decisions", description="relative paths are under the store's directory")
    publish_file_mode: str = Field("0640", pattern=r"^0?[0-7]{3}$", description="octal mode of published files")
    keep_published: int = Field(2000, ge=1, description="decision files kept in publish_dir (oldest removed)")
    webhook_url: str | None = None
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    webhook_retries: int = Field(2, ge=0, le=10)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(9108, ge=0, le=65535, description="\"off\" disables the metrics endpoint")
    misfire_grace_s: int = Field(60, ge=1)
    backup_cron: dict[str, str | int] = Field(default_factory=lambda: {"hour": "3", "minute": "17"},
                                              description="when the daemon takes an online backup of the store")
    backup_dir: str = Field("backups", description="relative paths are under the store's directory")
    fleet_scan_cron: dict[str, str | int] = Field(default_factory=lambda: {"minute": "*/5"},
                                                  description="when the daemon reads the fleet (with fleet.inventory set)")
    keep_backups: int = Field(7, ge=1, description="newest backups kept (older ones removed)")
    safe_asic: Literal["off", "hold"] = "off"
    safe_gpu_marketplace: Literal["off", "hold"] = "off"

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: str | None) -> str | None:
        return check_http_url(v)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _port_off(cls, v):
        """TOML has no null: `"off"` (or `"null"`) switches the metrics endpoint off."""
        return None if isinstance(v, str) and v.strip().lower() in ("off", "null", "none") else v

    @field_validator("decision_cron", "backup_cron", "fleet_scan_cron")
    @classmethod
    def _decision_cron(cls, v):
        return _check_cron(v)

    @field_validator("feed_crons", mode="before")
    @classmethod
    def _merge_feed_crons(cls, v):
        """Overriding one group's schedule keeps every other group's default (a shallow replace would stop
        collecting them)."""
        return {**DEFAULT_FEED_CRONS, **v} if isinstance(v, dict) else v

    @field_validator("feed_crons")
    @classmethod
    def _feed_crons(cls, v):
        for group, cron in v.items():
            if group not in FEED_GROUPS:
                raise ValueError(f"unknown feed group {group!r}; must be one of: {', '.join(FEED_GROUPS)}")
            _check_cron(cron)
        return v


class VastActuator(StrictModel):
    """A GPU pool's marketplace GPUs rented out on Vast.ai: whole machines listed (asking price) or unlisted
    through the host API, so that enough are listed for the decision's marketplace GPUs."""

    kind: Literal["vastai"]
    pool: str = Field(min_length=1, description="the GPU pool (gpu_pools[].name) these machines belong to")
    api_url: str = Field("https://console.vast.ai", description="the host API's base URL (tests: a loopback server)")
    api_key_env: str | None = Field(None, min_length=1, description="environment variable holding the API key")
    api_key_file: str | None = Field(None, min_length=1, description="file holding the API key (mode 0600 or stricter)")
    machine_ids: list[int] = Field(min_length=1, description="the Vast.ai machine ids of this pool, in listing order")
    gpus_per_machine: int = Field(ge=1, le=64)
    min_price_usd_per_gpu_hour: float = Field(gt=0, le=50, description="asking price floor, USD per GPU-hour")
    min_chunk: int = Field(1, ge=1, le=64, description="the fewest GPUs one rental takes (Vast.ai min_chunk)")
    listing_days: float = Field(7.0, gt=0, le=365, description="each listing's end_date is this far ahead")
    timeout_s: float = Field(10.0, gt=0, le=120, description="per request")
    retries: int = Field(2, ge=0, le=10, description="a request that fails (5xx, timeout, connection) is sent again")
    backoff_s: float = Field(1.0, ge=0, le=60, description="urllib3 backoff factor between retries")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_http_url(v)

    @field_validator("machine_ids")
    @classmethod
    def _unique_ids(cls, v: list[int]) -> list[int]:
        dup = sorted({i for i in v if v.count(i) > 1})
        if dup:
            raise ValueError(f"machine id {dup[0]} is listed twice")
        return v

    @model_validator(mode="after")
    def _one_key_source(self) -> "VastActuator":
        if (self.api_key_env is None) == (self.api_key_file is None):
            raise ValueError("give exactly one of `api_key_env` (an environment variable name) or `api_key_file`")
        return self


class CommandActuator(StrictModel):
    """An operator's executable (drain/cordon tooling: Kubernetes, Slurm) run with the pool's target as JSON
    on stdin; exit code 0 means it took."""

    kind: Literal["command"]
    pool: str = Field(min_length=1, description="the GPU pool (gpu_pools[].name) the command drives")
    argv: list[str] = Field(min_length=1, description="program and arguments, run without a shell")
    timeout_s: float = Field(30.0, gt=0, le=3600)

    @field_validator("argv")
    @classmethod
    def _program(cls, v: list[str]) -> list[str]:
        if not v[0].strip():
            raise ValueError("argv[0] must name the program to run")
        return v


GPU_ACTUATOR_CONFIGS: dict[str, type[StrictModel]] = {"vastai": VastActuator, "command": CommandActuator}
GpuActuator = typing.Annotated[VastActuator | CommandActuator, Field(discriminator="kind")]


class FleetRange(StrictModel):
    """[[fleet.ranges]]: an address range whose answering machines belong to one ASIC pool."""

    cidr: str = Field(description="e.g. 10.20.0.0/24 (at most 4,096 addresses)")
    pool: str = Field(min_length=1, description="the ASIC pool (asic_pools[].name) of the machines found there")
    hall: str = ""

    @field_validator("cidr")
    @classmethod
    def _network(cls, v: str) -> str:
        try:
            net = ipaddress.ip_network(v.strip(), strict=False)
        except ValueError:
            raise ValueError("not an address range; use CIDR notation, e.g. 10.20.0.0/24") from None
        if net.num_addresses > 4096:
            raise ValueError(f"{net} has {net.num_addresses:,} addresses; at most 4,096 (a /20) per range — split it")
        return str(net)


class FleetConfig(StrictModel):
    """[fleet]: the machines behind the ASIC pools, how they are read (pyasic), and the GPU pools' actuators."""

    inventory: str | None = Field(None, description="CSV ip,pool[,hall,rack,firmware]; relative to the config file")
    ranges: list[FleetRange] = Field([], description="address ranges scanned for machines, each for one ASIC pool")
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                     description="environment variable holding the miners' web/API password")
    password_file: str | None = Field(None, description="file (mode 600) holding the miners' password; relative to "
                                      "the config file")
    concurrency: int = Field(50, ge=1, le=2000, description="machines read at once")
    timeout_s: float = Field(5.0, gt=0, le=120, description="per machine and request")
    telemetry_staleness_s: float = Field(900.0, gt=0, description="older telemetry falls back to the config's figures")
    retries: int = Field(1, ge=0, le=5, description="a failed command is sent again this many times")
    apply: Literal["off", "dry-run", "on"] = Field("off", description="what the daemon does with each decision: "
                                                   "nothing, plan and audit it, or command the machines")
    stop_file: str | None = Field(None, description="while this file exists, fleet apply sends nothing more (kill switch)")
    max_change_fraction: float = Field(1.0, gt=0, le=1, description="at most this share of the fleet's machines is "
                                       "commanded per apply (reductions first); the rest waits for the next decision")
    learn_modes: bool = Field(False, description="decide with each mode's measured W and TH/s (median of the healthy "
                              "machines' readings over learn_window_s) instead of the catalogue's")
    learn_window_s: float = Field(3600.0, gt=0, description="how far back learned modes look")
    gpu_actuators: list[GpuActuator] = Field([], description="per GPU pool: how its target reaches the GPUs "
                                             "(kinds: vastai, command)")
    _apply_pinned: bool = PrivateAttr(False)  # set by load_config, not a config key

    @model_validator(mode="after")
    def _one_password_source(self) -> "FleetConfig":
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give fleet.password_env or fleet.password_file, not both")
        return self

    @property
    def configured(self) -> bool:
        """The site has machines hashpivot reads: an inventory file or address ranges."""
        return self.inventory is not None or bool(self.ranges)

    @property
    def apply_pinned(self) -> bool:
        """fleet.apply was given with `--set` on the command line: it holds over the console's switch."""
        return self._apply_pinned


class ConsoleConfig(StrictModel):
    """[console]: the operator's web page (`hashpivot serve`, or served by `hashpivot run` with enabled = true)."""

    enabled: bool = Field(False, description="`hashpivot run` serves the console too")
    host: str = Field("127.0.0.1", description="bind address; anything but loopback needs a token")
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port (logged at start)")
    token: str | None = Field(None, min_length=16, description="bearer token; prefer token_file or token_env")
    token_file: str | None = Field(None, description="file holding the bearer token (one line); relative to the config file")
    token_env: str = Field("HASHPIVOT_CONSOLE_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                           description="environment variable holding the token when token and token_file are unset")
    allow_actions: bool = Field(False, description="holds and fleet.apply may be changed from the page (needs a token)")
    refresh_s: int = Field(60, ge=5, le=3600, description="the page reloads itself this often")

    @model_validator(mode="after")
    def _one_token_source(self):
        if self.token is not None and self.token_file is not None:
            raise ValueError("give console.token or console.token_file, not both")
        return self


class SiteConfig(StrictModel):
    site: Site
    asic_pools: list[AsicPool] = []
    gpu_pools: list[GpuPool] = []
    power: Power = Power()
    horizon: Horizon = Horizon()
    forecast: ForecastSettings = ForecastSettings()
    solver: SolverSettings = SolverSettings()
    feeds: FeedsConfig = FeedsConfig()
    daemon: DaemonConfig = DaemonConfig()
    fleet: FleetConfig = FleetConfig()
    console: ConsoleConfig = ConsoleConfig()

    def hall(self, name: str) -> Hall:
        return next(h for h in self.site.halls if h.name == name)

    @property
    def pool_names(self) -> list[str]:
        return [p.name for p in self.asic_pools] + [p.name for p in self.gpu_pools]


# --------------------------------------------------------------------------- loading


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file as a mapping; ConfigError naming the file when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what} (give the .toml file)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a {what} is TOML text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_raw_config(path: str | Path, overrides: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """The config file as a mapping with `--set` overrides applied, and the label errors should carry."""
    path = Path(path)
    label = str(path)
    raw = read_toml(path)
    if overrides:
        for item in overrides:
            apply_override(raw, item)
        label += " (with --set overrides)"
    return raw, label


def load_config(path: str | Path, overrides: list[str] | None = None) -> SiteConfig:
    """Read, override and validate a site config; raise ConfigError naming file, key, value, allowed."""
    raw, label = load_raw_config(path, overrides)
    cfg = config_from_raw(raw, label)
    inventory = cfg.fleet.inventory
    if inventory is not None and not Path(inventory).expanduser().is_absolute():  # relative to the config file
        cfg = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"inventory": str(Path(path).parent / inventory)})})
    password_file = cfg.fleet.password_file
    if password_file is not None and not Path(password_file).expanduser().is_absolute():
        cfg = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"password_file": str(Path(path).parent / password_file)})})
    token_file = cfg.console.token_file  # like the miners' password file
    if token_file is not None and not Path(token_file).expanduser().is_absolute():
        cfg = cfg.model_copy(update={"console": cfg.console.model_copy(update={"token_file": str(Path(path).parent / token_file)})})
    for a in cfg.fleet.gpu_actuators:  # a secret file, like the inventory, is relative to the config file
        key_file = getattr(a, "api_key_file", None)
        if key_file is not None and not Path(key_file).expanduser().is_absolute():
            a.api_key_file = str(Path(path).parent / key_file)
    cfg.fleet._apply_pinned = any(item.partition("=")[0].strip() == "fleet.apply" for item in overrides or [])
    return cfg


def config_from_raw(raw: dict[str, Any], label: str) -> SiteConfig:
    """Validate a raw mapping (left unchanged) and log the warnings a suspicious but legal config deserves."""
    cfg = validate_config(copy.deepcopy(raw), label)
    for message in config_warnings(cfg):
        log.warning("%s: %s", label, message)
    return cfg


def validate_config(raw: dict[str, Any], label: str = "<config>") -> SiteConfig:
    """Validate a raw config mapping into a SiteConfig (schema, then cross-references)."""
    try:
        cfg = SiteConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [format_validation_error(label, raw, err) for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    problems = _reference_problems(cfg)
    if problems:
        raise ConfigError("\n".join(f"{label}: {p}" for p in problems))
    return cfg


def _reference_problems(cfg: SiteConfig) -> list[str]:
    """Checks across keys: names unique, halls exist, available <= installed, contracts fit the pool."""
    out: list[str] = []
    halls = [h.name for h in cfg.site.halls]
    for i, h in enumerate(halls):
        if halls.index(h) != i:
            out.append(f"site.halls[{i}].name = {h!r}: duplicate hall name")
    seen: set[str] = set()
    for kind, pools in (("asic_pools", cfg.asic_pools), ("gpu_pools", cfg.gpu_pools)):
        for i, p in enumerate(pools):
            if p.name in seen:
                out.append(f"{kind}[{i}].name = {p.name!r}: duplicate pool name")
            seen.add(p.name)
            if p.hall not in halls:
                out.append(f"{kind}[{i}].hall = {p.hall!r}: must be one of the halls: {', '.join(halls)}")
    site = cfg.site
    if site.market == "NYISO" and site.settlement_point not in NYISO_ZONES:
        out.append(f"site.settlement_point = {site.settlement_point!r}: a NYISO site settles at a NYISO zone: "
                   f"{', '.join(NYISO_ZONES)}")
    if site.market == "ERCOT" and site.settlement_point in NYISO_ZONES and site.settlement_point != "WEST":
        out.append(f"site.settlement_point = {site.settlement_point!r}: a NYISO zone; with site.market = 'ERCOT' give "
                   "an ERCOT hub, load zone or node (e.g. HB_WEST), or set site.market = 'NYISO'")
    if cfg.power.four_cp is not None and cfg.power.four_cp.enabled and site.market != "ERCOT":
        out.append(f"power.four_cp: 4CP is ERCOT's transmission charge; site.market = {site.market!r} has none "
                   "(remove [power.four_cp] or set power.four_cp.enabled = false)")
    for i, p in enumerate(cfg.asic_pools):
        if p.units_available > p.units_installed:
            out.append(f"asic_pools[{i}].units_available = {p.units_available}: must be <= units_installed ({p.units_installed})")
        if p.min_units_on > p.units_available:
            out.append(f"asic_pools[{i}].min_units_on = {p.min_units_on}: must be <= units_available ({p.units_available}); "
                       "the must-run floor cannot exceed the units the pool has")
        names = [m.name for m in p.modes]
        if len(set(names)) != len(names):
            out.append(f"asic_pools[{i}].modes: mode names must be unique, got {names}")
    for i, g in enumerate(cfg.gpu_pools):
        if g.gpus_available > g.gpus_installed:
            out.append(f"gpu_pools[{i}].gpus_available = {g.gpus_available}: must be <= gpus_installed ({g.gpus_installed})")
        if g.contract and g.contract.committed_gpus > g.gpus_installed:
            out.append(
                f"gpu_pools[{i}].contract.committed_gpus = {g.contract.committed_gpus}: "
                f"must be <= gpus_installed ({g.gpus_installed})"
            )
    asic_names = [a.name for a in cfg.asic_pools]
    for i, r in enumerate(cfg.fleet.ranges):
        if r.pool not in asic_names:
            out.append(f"fleet.ranges[{i}].pool = {r.pool!r}: must be one of the ASIC pools: {', '.join(asic_names) or '(none)'}")
    gpu_names = [g.name for g in cfg.gpu_pools]
    vast_ids: dict[int, int] = {}
    for i, a in enumerate(cfg.fleet.gpu_actuators):
        if a.pool not in gpu_names:
            allowed = ", ".join(gpu_names) or "(no gpu_pools configured)"
            out.append(f"fleet.gpu_actuators[{i}].pool = {a.pool!r}: must be one of the GPU pools: {allowed}")
        for mid in getattr(a, "machine_ids", []):
            if mid in vast_ids:
                out.append(f"fleet.gpu_actuators[{i}].machine_ids: machine {mid} is also in fleet.gpu_actuators[{vast_ids[mid]}]")
            vast_ids.setdefault(mid, i)
    for i, b in enumerate(cfg.power.fixed_blocks):
        if b.start_hour_utc == b.end_hour_utc % 24 and b.end_hour_utc != 24:
            out.append(f"power.fixed_blocks[{i}]: start_hour_utc and end_hour_utc must differ")
    return out


def config_warnings(cfg: SiteConfig) -> list[str]:
    """Suspicious but legal input: a mode that beats stock on both hashrate and power is probably a typo."""
    out = []
    for i, p in enumerate(cfg.asic_pools):
        stock = next((m for m in p.modes if m.name == "stock"), None)
        if stock is None:
            continue
        for j, m in enumerate(p.modes):
            if m is not stock and m.hashrate_th > stock.hashrate_th and m.power_w < stock.power_w:
                out.append(
                    f"asic_pools[{i}].modes[{j}] ({m.name}): more hashrate ({m.hashrate_th:g} TH/s) at less power "
                    f"({m.power_w:g} W) than stock ({stock.hashrate_th:g} TH/s, {stock.power_w:g} W); check the figures"
                )
    return out


# --------------------------------------------------------------------------- error formatting


def _loc_to_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The pydantic model class that holds the key at `loc` (to list the allowed keys)."""
    model: Any = root or SiteConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in typing.get_args(annotation) or (annotation,):
        inner = typing.get_args(arg)
        if inner and typing.get_origin(arg) is list:
            return _unwrap(inner[0])
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _drop_union_tag(loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """pydantic puts a tagged union's tag in the error path (`fleet.gpu_actuators[0].vastai.retries`); the
    operator's file has no such key, so drop it and return the tagged model (its keys are the allowed ones)."""
    if len(loc) >= 4 and loc[:2] == ("fleet", "gpu_actuators") and loc[3] in GPU_ACTUATOR_CONFIGS:
        return loc[:3] + loc[4:], GPU_ACTUATOR_CONFIGS[loc[3]]
    return loc, None


_PYDANTIC_WORDS = {"Input should be": "must be", "String should have": "must have", "List should have": "must have",
                   "Value error, ": ""}  # pydantic's message openings, in the words the rest of the errors use


def format_validation_error(label: str, raw: dict, err: dict, root: type[BaseModel] | None = None) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    loc, tagged = _drop_union_tag(loc)
    path = _loc_to_path(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = tagged if tagged is not None and len(loc) == 4 else _model_at(loc[:-1], root)
        allowed = ", ".join(parent.model_fields) if parent else "see README"
        return f"{label}: {path}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{label}: {path}: required key is missing"
    msg = err["msg"]
    for prefix, words in _PYDANTIC_WORDS.items():
        if msg.startswith(prefix):
            msg = words + msg[len(prefix):]
            break
    value = err.get("input")
    if isinstance(value, dict):
        return f"{label}: {path}: {msg}"
    if isinstance(value, str) and "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = value.split("://", 1)
        value = f"{scheme}://***@{rest.split('@', 1)[1]}"  # never echo a password into a log
    shown = value.isoformat() if isinstance(value, (date, time)) else repr(value)  # as TOML wrote it
    return f"{label}: {path} = {shown}: {msg}"


# --------------------------------------------------------------------------- overrides

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `key.path=value` (TOML value syntax; bare words are strings) to a raw config mapping.

    List items are addressed by index (`asic_pools[0].units_available=10`) or by their `name`
    (`asic_pools.s21.units_available=10`).
    """
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.path=value")
    key, text = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    parts: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEGMENT.finditer(key)]
    if not parts:
        raise ConfigError(f"--set {item}: empty key path")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _step(node, part, parts[i + 1], item)
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, item)] = value
    else:
        node[last] = value


def _step(node: Any, part: str | int, nxt: str | int, item: str) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, item)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {item}: {part!r} is below a plain value")
    if part not in node:
        node[part] = [] if isinstance(nxt, int) else {}
    return node[part]


def _list_index(node: list, part: str | int, item: str) -> int:
    if isinstance(part, int):
        if part >= len(node):
            raise ConfigError(f"--set {item}: index {part} is out of range (the list has {len(node)} items)")
        return part
    names = [x.get("name") for x in node if isinstance(x, dict)]
    if part not in names:
        raise ConfigError(f"--set {item}: no item named {part!r}; names here: {', '.join(map(str, names))}")
    return names.index(part)
