"""Hashprice: what one TH/s earns per day, from difficulty, block subsidy, fees and the BTC price (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

from hashpivot.models.errors import InputError

SECONDS_PER_DAY = 86_400
HALVING_INTERVAL_BLOCKS = 210_000
INITIAL_SUBSIDY_BTC = 50.0
BLOCKS_PER_HOUR = 6.0  # the protocol's target spacing, 10 minutes
# A known (height, time) to count heights from in daily block counts: block 840,000, the fourth halving, was
# mined 2024-04-20 00:09:27 UTC.
REFERENCE_BLOCK = (840_000, datetime(2024, 4, 20, 0, 9, 27, tzinfo=timezone.utc))


def block_subsidy_btc(height: int) -> float:
    """Block subsidy at `height`: 50 BTC halving every 210,000 blocks (3.125 BTC from block 840,000)."""
    if height < 0:
        raise InputError(f"block height must be >= 0, got {height}")
    halvings = height // HALVING_INTERVAL_BLOCKS
    if halvings >= 64:
        return 0.0
    return INITIAL_SUBSIDY_BTC / (2**halvings)


def subsidy_schedule_btc(halvings: int = 8) -> tuple[float, ...]:
    """The subsidy of each halving era (50, 25, 12.5, 6.25, 3.125, …), from `block_subsidy_btc`."""
    return tuple(block_subsidy_btc(era * HALVING_INTERVAL_BLOCKS) for era in range(halvings))


def blocks_per_day_per_th(difficulty: float) -> float:
    """Expected blocks a day found by 1 TH/s: 86,400 s x 1e12 H/s / (difficulty x 2^32 hashes per block)."""
    if not difficulty > 0:
        raise InputError(f"difficulty must be > 0, got {difficulty}")
    return SECONDS_PER_DAY * 1e12 / (difficulty * 2**32)


def hashprice_usd_per_th_day(difficulty: float, btc_usd: float, subsidy_btc: float, fees_btc_per_block: float = 0.0) -> float:
    """Hashprice in USD per TH/s per day (multiply by 1000 for the USD/PH/day that indices quote)."""
    if btc_usd < 0 or subsidy_btc < 0 or fees_btc_per_block < 0:
        raise InputError("btc_usd, subsidy_btc and fees_btc_per_block must be >= 0")
    return blocks_per_day_per_th(difficulty) * (subsidy_btc + fees_btc_per_block) * btc_usd
