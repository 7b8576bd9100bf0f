"""Breakeven power prices in USD/MWh: above them a unit loses money on power alone (pure).

Both functions take the power drawn per unit at the IT level; pass `pue` to get the breakeven against the
site-meter price (each IT kW costs `pue` kW at the meter).
"""

from __future__ import annotations

from hashpivot.models.errors import InputError


def asic_breakeven_usd_per_mwh(
    hashprice_usd_per_th_day: float, hashrate_th: float, power_w: float, pool_fee: float = 0.0, pue: float = 1.0
) -> float:
    """Revenue per MWh of an ASIC: hashprice x TH/s x (1 - fee) / (kW x 24 h) x 1000, divided by PUE."""
    if power_w <= 0:
        raise InputError(f"power_w must be > 0, got {power_w}")
    power_kw = power_w / 1000.0
    return hashprice_usd_per_th_day * hashrate_th * (1.0 - pool_fee) / (power_kw * 24.0) * 1000.0 / pue


def gpu_breakeven_usd_per_mwh(
    rate_usd_per_gpu_hour: float, power_kw: float, utilisation: float = 1.0, marketplace_fee: float = 0.0, pue: float = 1.0
) -> float:
    """Revenue per MWh of a GPU: rate x utilisation x (1 - fee) / kW x 1000, divided by PUE."""
    if power_kw <= 0:
        raise InputError(f"power_kw must be > 0, got {power_kw}")
    return rate_usd_per_gpu_hour * utilisation * (1.0 - marketplace_fee) / power_kw * 1000.0 / pue
