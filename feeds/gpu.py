"""GPU rental rates: Vast.ai offer search (primary, no key) and Akash's GPU price endpoint (fallback, no key).

Per catalogue model: the median and 25th percentile per-GPU price of rentable offers (Vast: `dph_total /
num_gpus`) and how many offers there are. Market GPU names are mapped onto the catalogue's names below.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from hashpivot.feeds.base import Collector, FeedError, Observation, Payload

# catalogue/series key -> patterns matching the markets' GPU names
GPU_NAMES = {
    "H100": re.compile(r"\bH100\b", re.I),
    "A100": re.compile(r"\bA100\b", re.I),
    "A40": re.compile(r"^(NVIDIA )?A40$", re.I),
    "RTX 4090": re.compile(r"\b(RTX )?4090\b", re.I),
}
VAST_NAMES = {"H100": ["H100 SXM", "H100 PCIE", "H100 NVL"], "A100": ["A100 SXM4", "A100 PCIE", "A100X"],
              "A40": ["A40"], "RTX 4090": ["RTX 4090"]}


def catalogue_key(market_name: str) -> str | None:
    for key, pattern in GPU_NAMES.items():
        if pattern.search(market_name.strip()):
            return key
    return None


def _rows(collector: Collector, prices: dict[str, list[float]], fetched: datetime) -> list[Observation]:
    start = fetched.replace(minute=0, second=0, microsecond=0)
    out = []
    for key in sorted(prices):
        values = np.asarray(prices[key], dtype=float)
        if values.size == 0:
            continue
        out.append(collector.obs(f"gpu_rate_usd_per_gpu_hour.{key}", start, float(np.median(values)), "USD/GPU-h", fetched))
        out.append(collector.obs(f"gpu_rate_p25_usd_per_gpu_hour.{key}", start, float(np.percentile(values, 25)), "USD/GPU-h", fetched))
        out.append(collector.obs(f"gpu_offers.{key}", start, float(values.size), "offers", fetched))
    return out


class VastOffers(Collector):
    name = "vast"
    group = "gpu"
    default_base_url = "https://console.vast.ai"

    def fetch(self, client) -> list[Payload]:
        models = self.options.get("models", list(VAST_NAMES))
        names = [n for m in models for n in VAST_NAMES.get(m, [m])]
        query = {"gpu_name": {"in": names}, "rentable": {"eq": True}, "order": [["dph_total", "asc"]], "limit": 1000}
        return [client.post(self.name, f"{self.base_url}/api/v0/bundles/", json=query)]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        offers = body.get("offers") if isinstance(body, dict) else None
        if not isinstance(offers, list):
            raise FeedError(self.name, "expected {offers: [...]}", p.body)
        prices: dict[str, list[float]] = {}
        seen: set[object] = set()
        for offer in offers:
            if not isinstance(offer, dict):
                raise FeedError(self.name, "offers[] must be objects", p.body)
            if offer.get("id") is not None:  # an offer listed twice is one offer
                if offer["id"] in seen:
                    continue
                seen.add(offer["id"])
            key = catalogue_key(str(offer.get("gpu_name", "")))
            n = offer.get("num_gpus")
            if key is None or not n:
                continue
            prices.setdefault(key, []).append(self.number(offer.get("dph_total"), "dph_total", p) / float(n))
        return _rows(self, prices, p.fetched_at_utc)


class AkashGpuPrices(Collector):
    name = "akash"
    group = "gpu"
    default_base_url = "https://console-api.akash.network"

    def fetch(self, client) -> list[Payload]:
        return [client.get(self.name, f"{self.base_url}/v1/gpu-prices")]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise FeedError(self.name, "expected {models: [...]}", p.body)
        prices: dict[str, list[float]] = {}
        seen: set[str] = set()
        for m in models:
            if not isinstance(m, dict):
                raise FeedError(self.name, "models[] must be objects", p.body)
            name = str(m.get("model", "")).strip().lower()
            if name in seen:  # a model listed twice is counted once
                continue
            seen.add(name)
            key = catalogue_key(str(m.get("model", "")))
            price = m.get("price")
            if key is None or not price:
                continue
            available = int((m.get("availability") or {}).get("available", 1) or 1)
            prices.setdefault(key, []).extend([self.number(price.get("med", price.get("avg")), "price.med", p)] * max(available, 1))
        return _rows(self, prices, p.fetched_at_utc)
