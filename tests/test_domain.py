"""Hashprice, subsidy and breakevens against worked values (DESIGN.md and public hashprice indices)."""

from __future__ import annotations

import pytest

from hashpivot.models.breakeven import (
    asic_breakeven_usd_per_mwh,
    gpu_breakeven_usd_per_mwh,
)
from hashpivot.models.hashprice import (
    block_subsidy_btc,
    blocks_per_day_per_th,
    hashprice_usd_per_th_day,
)


@pytest.mark.parametrize(
    ("height", "subsidy"),
    [(0, 50.0), (209_999, 50.0), (210_000, 25.0), (420_000, 12.5), (629_999, 12.5), (630_000, 6.25),
     (839_999, 6.25), (840_000, 3.125), (1_050_000, 1.5625), (64 * 210_000, 0.0)],
)
def test_block_subsidy_halves_every_210000_blocks(height, subsidy):
    assert block_subsidy_btc(height) == subsidy


def test_hashprice_worked_example_2021_10_24():
    # Difficulty 20,082,460,130,795 (epoch from block 705,600), 6.25 BTC subsidy, 0.05832444 BTC fees per block
    # averaged over the day, BTC 60,865.45 USD: 0.3846 USD/TH/day (Luxor's index printed ~0.38 that day).
    hp = hashprice_usd_per_th_day(20_082_460_130_795, 60_865.45, 6.25, 0.05832444)
    assert hp == pytest.approx(0.3846, abs=5e-5)
    # By hand: 86,400 s x 1e12 H/s / (D x 2^32) blocks per TH per day
    assert blocks_per_day_per_th(20_082_460_130_795) == pytest.approx(86_400e12 / (20_082_460_130_795 * 2**32))


def test_hashprice_is_linear_in_price_and_reward_and_inverse_in_difficulty():
    base = hashprice_usd_per_th_day(8.0e13, 60_000, 3.125, 0.1)
    assert hashprice_usd_per_th_day(8.0e13, 120_000, 3.125, 0.1) == pytest.approx(2 * base)
    assert hashprice_usd_per_th_day(16.0e13, 60_000, 3.125, 0.1) == pytest.approx(base / 2)
    assert hashprice_usd_per_th_day(8.0e13, 60_000, 6.25, 0.2) == pytest.approx(2 * base)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_hashprice_rejects_non_positive_difficulty(bad):
    with pytest.raises(ValueError, match="difficulty"):
        hashprice_usd_per_th_day(bad, 60_000, 3.125)


def test_s19xp_breakeven_from_design_card():
    # S19 XP 140 TH/s, 3.01 kW, hashprice 0.05 USD/TH/day, 2 % fee: ~95 USD/MWh
    be = asic_breakeven_usd_per_mwh(0.05, 140, 3010, pool_fee=0.02)
    assert be == pytest.approx(0.05 * 140 * 0.98 / (3.01 * 24) * 1000)
    assert be == pytest.approx(94.96, abs=0.01)
    # at the site meter with PUE 1.1 the same unit breaks even 10 % lower
    assert asic_breakeven_usd_per_mwh(0.05, 140, 3010, 0.02, pue=1.1) == pytest.approx(be / 1.1)


def test_h100_breakeven_from_design_card():
    # H100 at 2.00 USD/h, 80 % rented, 1.3 kW with its server share: ~1,230 USD/MWh
    assert gpu_breakeven_usd_per_mwh(2.00, 1.3, utilisation=0.8) == pytest.approx(1230.77, abs=0.01)
    assert gpu_breakeven_usd_per_mwh(2.00, 1.3, 0.8, marketplace_fee=0.1) == pytest.approx(1230.77 * 0.9, abs=0.01)


def test_breakevens_reject_zero_power():
    with pytest.raises(ValueError):
        asic_breakeven_usd_per_mwh(0.05, 140, 0)
    with pytest.raises(ValueError):
        gpu_breakeven_usd_per_mwh(2.0, 0.0)
