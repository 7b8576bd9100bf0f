"""Bitcoin network collector (mempool.space): difficulty, hashrate, tip height -> subsidy, trailing fees per block.

Hashprice itself is derived after collection (`feeds.collect`) with the core's `hashprice_usd_per_th_day`, from
these inputs and the stored BTC price, and stored as its own series.
"""

from __future__ import annotations

from hashpivot.feeds.base import (
    Collector,
    FeedError,
    Observation,
    Payload,
    floor_minute,
)
from hashpivot.models.hashprice import block_subsidy_btc

FEE_WINDOW_BLOCKS = 144  # about one day


class MempoolNetwork(Collector):
    name = "mempool"
    group = "network"
    default_base_url = "https://mempool.space"

    def fetch(self, client) -> list[Payload]:
        n = int(self.options.get("fee_window_blocks", FEE_WINDOW_BLOCKS))
        return [
            client.get(self.name, f"{self.base_url}/api/v1/mining/hashrate/3d"),
            client.get(self.name, f"{self.base_url}/api/blocks/tip/height"),
            client.get(self.name, f"{self.base_url}/api/v1/mining/reward-stats/{n}"),
        ]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        hashrate_p, height_p, reward_p = payloads
        fetched = hashrate_p.fetched_at_utc
        start = floor_minute(fetched)
        body = hashrate_p.json()
        if not isinstance(body, dict) or "currentDifficulty" not in body:
            raise FeedError(self.name, "hashrate/3d: expected currentDifficulty", hashrate_p.body)
        difficulty = self.number(body["currentDifficulty"], "currentDifficulty", hashrate_p)
        hashrate_ths = self.number(body.get("currentHashrate"), "currentHashrate", hashrate_p) / 1e12

        text = height_p.text().strip()
        if not text.isdigit():
            raise FeedError(self.name, f"blocks/tip/height: expected an integer, got {text[:40]!r}", height_p.body)
        height = int(text)

        stats = reward_p.json()
        if not isinstance(stats, dict):
            raise FeedError(self.name, "reward-stats: expected an object", reward_p.body)
        try:
            blocks = int(stats["endBlock"]) - int(stats["startBlock"]) + 1
            total_fee_sat = int(str(stats["totalFee"]))  # decimal string, satoshis
        except (KeyError, TypeError, ValueError):
            raise FeedError(self.name, "reward-stats: expected startBlock, endBlock and totalFee (sat, string)", reward_p.body) from None
        if blocks <= 0:
            raise FeedError(self.name, f"reward-stats: endBlock before startBlock ({blocks} blocks)", reward_p.body)
        fees = total_fee_sat / 1e8 / blocks
        return [
            self.obs("difficulty", start, difficulty, "1", fetched),
            self.obs("hashrate_th_s", start, hashrate_ths, "TH/s", fetched),
            self.obs("block_height", start, height, "blocks", fetched),
            self.obs("subsidy_btc", start, block_subsidy_btc(height), "BTC", fetched),
            self.obs("fees_btc_per_block", start, fees, "BTC", fetched),
        ]
