"""Every source hashpivot collects from, once: which group it serves, its collector, and the options it takes
from the site config. Sources of one group are fallbacks for each other, tried in the order listed here.

Adding a source (say a CAISO OASIS collector): write its `Collector` in its own module, add one entry here,
and its name to `hashpivot.models.series.FEED_SOURCES` (config validation reads that list below this layer;
`tests/test_layers.py` fails if the two disagree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hashpivot.feeds.base import Collector
from hashpivot.feeds.btc import (
    CoinbaseSpot,
    CoinGeckoSimple,
    KrakenTicker,
    MempoolPrice,
)
from hashpivot.feeds.ercot import ErcotDayAhead, ErcotRealTime
from hashpivot.feeds.ercot_load import ErcotActualLoad, ErcotLoadForecast, ErcotSystemDemand
from hashpivot.feeds.gpu import AkashGpuPrices, VastOffers
from hashpivot.feeds.network import MempoolNetwork
from hashpivot.feeds.nyiso import NyisoRealTime
from hashpivot.feeds.weather import OpenMeteo
from hashpivot.models.config import SiteConfig

Options = Callable[[SiteConfig], "dict[str, Any] | None"]  # None: the source does not apply to this site


def _always(cfg: SiteConfig) -> dict[str, Any]:
    return {}


def _market(market: str, key: str) -> Options:
    return lambda cfg: {key: [cfg.site.settlement_point]} if cfg.site.market == market else None


def _ercot(cfg: SiteConfig) -> dict[str, Any] | None:
    """ERCOT system-wide series (load, its forecast): for every ERCOT site, whatever its settlement point."""
    return {} if cfg.site.market == "ERCOT" else None


@dataclass(frozen=True)
class Source:
    name: str  # the `[feeds.sources.<name>]` key (one provider may serve several groups)
    group: str
    collector: type[Collector]
    options: Options = _always


SOURCES: tuple[Source, ...] = (
    Source("mempool", "btc", MempoolPrice),
    Source("coinbase", "btc", CoinbaseSpot),
    Source("kraken", "btc", KrakenTicker),
    Source("coingecko", "btc", CoinGeckoSimple),
    Source("mempool", "network", MempoolNetwork),
    Source("ercot_mis", "power_rt", ErcotRealTime, _market("ERCOT", "settlement_points")),
    Source("nyiso_mis", "power_rt", NyisoRealTime, _market("NYISO", "zones")),
    Source("ercot_mis", "power_da", ErcotDayAhead, _market("ERCOT", "settlement_points")),
    Source("ercot_mis", "load", ErcotActualLoad, _ercot),
    Source("ercot_mis", "load_rt", ErcotSystemDemand, _ercot),
    Source("ercot_mis", "load_forecast", ErcotLoadForecast, _ercot),
    Source("nyiso_mis", "power_rt_nyiso", NyisoRealTime, lambda cfg: {"zones": cfg.feeds.nyiso_zones} if cfg.feeds.nyiso_zones else None),
    Source("open_meteo", "weather", OpenMeteo,
           lambda cfg: None if cfg.site.latitude is None or cfg.site.longitude is None
           else {"latitude": cfg.site.latitude, "longitude": cfg.site.longitude}),
    Source("vast", "gpu", VastOffers, lambda cfg: {"models": cfg.feeds.gpu_models}),
    Source("akash", "gpu", AkashGpuPrices),
)


def collectors_for(cfg: SiteConfig, group: str) -> list[Collector]:
    """The enabled sources of `group` that apply to this site, in fallback order, configured from the config."""
    out = []
    for source in SOURCES:
        if source.group != group:
            continue
        settings = cfg.feeds.source(source.name)
        options = source.options(cfg)
        if settings.enabled and options is not None:
            out.append(source.collector(base_url=settings.base_url or "", options=options))
    return out
