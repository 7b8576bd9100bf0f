"""BTC/USD spot price collectors: mempool.space (primary), Coinbase, Kraken, CoinGecko (fallbacks)."""

from __future__ import annotations

from datetime import datetime, timezone

from hashpivot.feeds.base import (
    Collector,
    FeedError,
    Observation,
    Payload,
    floor_minute,
)

SERIES = "btc_usd"
UNIT = "USD/BTC"


class MempoolPrice(Collector):
    name = "mempool"
    group = "btc"
    default_base_url = "https://mempool.space"

    def fetch(self, client) -> list[Payload]:
        return [client.get(self.name, f"{self.base_url}/api/v1/prices")]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        if not isinstance(body, dict) or "USD" not in body or "time" not in body:
            raise FeedError(self.name, "expected {time, USD, …} from /api/v1/prices", p.body)
        price = self.number(body["USD"], "USD", p)
        when = datetime.fromtimestamp(int(self.number(body["time"], "time", p)), tz=timezone.utc)
        return [self.obs(SERIES, floor_minute(when), price, UNIT, p.fetched_at_utc)]


class CoinbaseSpot(Collector):
    name = "coinbase"
    group = "btc"
    default_base_url = "https://api.coinbase.com"

    def fetch(self, client) -> list[Payload]:
        return [client.get(self.name, f"{self.base_url}/v2/prices/BTC-USD/spot")]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("base") != "BTC" or data.get("currency") != "USD":
            raise FeedError(self.name, "expected data {amount, base: BTC, currency: USD}", p.body)
        price = self.number(data.get("amount"), "data.amount", p)
        return [self.obs(SERIES, floor_minute(p.fetched_at_utc), price, UNIT, p.fetched_at_utc)]


class KrakenTicker(Collector):
    name = "kraken"
    group = "btc"
    default_base_url = "https://api.kraken.com"

    def fetch(self, client) -> list[Payload]:
        return [client.get(self.name, f"{self.base_url}/0/public/Ticker", params={"pair": "XBTUSD"})]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        if not isinstance(body, dict):
            raise FeedError(self.name, "expected an object {error, result}", p.body)
        if body.get("error"):  # Kraken reports errors with HTTP 200
            raise FeedError(self.name, f"API error: {', '.join(map(str, body['error']))}", p.body)
        result = body.get("result") or {}
        if not result:
            raise FeedError(self.name, "empty result", p.body)
        ticker = next(iter(result.values()))  # key is XXBTZUSD, not the pair asked for
        try:
            last = ticker["c"][0]
        except (KeyError, IndexError, TypeError):
            raise FeedError(self.name, "ticker has no last trade price c[0]", p.body) from None
        return [self.obs(SERIES, floor_minute(p.fetched_at_utc), self.number(last, "c[0]", p), UNIT, p.fetched_at_utc)]


class CoinGeckoSimple(Collector):
    name = "coingecko"
    group = "btc"
    default_base_url = "https://api.coingecko.com"
    # optional: COINGECKO_DEMO_API_KEY (environment) is sent as the x-cg-demo-api-key header when set

    def fetch(self, client) -> list[Payload]:
        import os

        headers = {}
        key = os.environ.get("COINGECKO_DEMO_API_KEY")
        if key:
            headers["x-cg-demo-api-key"] = key
        return [client.get(self.name, f"{self.base_url}/api/v3/simple/price",
                           params={"ids": "bitcoin", "vs_currencies": "usd"}, headers=headers)]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        if isinstance(body, dict) and isinstance(body.get("status"), dict) and body["status"].get("error_code"):
            raise FeedError(self.name, f"API error {body['status']['error_code']}: {body['status'].get('error_message', '')}", p.body)
        try:
            price = body["bitcoin"]["usd"]
        except (KeyError, TypeError):
            raise FeedError(self.name, "expected {bitcoin: {usd: …}}", p.body) from None
        return [self.obs(SERIES, floor_minute(p.fetched_at_utc), self.number(price, "bitcoin.usd", p), UNIT, p.fetched_at_utc)]
