"""Per ASIC pool, what the fleet reports against what the config says (pure): machines total, healthy,
sleeping, unreachable, erroring; measured kW and TH/s, and the catalogue's figures for the units mining."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from hashpivot.models.config import SiteConfig


def healthy_units(telemetry: pd.DataFrame, now: datetime, staleness_s: float) -> tuple[dict[str, int], list[str]]:
    """Per pool, the machines whose latest telemetry is fresh (within `staleness_s` of `now`) and healthy
    (reachable, no error): the units the model may use. Pools whose telemetry is all stale are left out, with
    a warning each (the config's figure then holds)."""
    if telemetry.empty:
        return {}, []
    at = pd.to_datetime(telemetry["at_utc"], utc=True)
    fresh = (pd.Timestamp(now) - at).dt.total_seconds() <= staleness_s
    out, warnings = {}, []
    for pool, t in telemetry.assign(fresh=fresh).groupby("pool", sort=True):
        if not t["fresh"].any():
            warnings.append(f"fleet telemetry of pool {pool} is older than {staleness_s:g} s (last {t['at_utc'].max()}): "
                            "the config's units_available is used")
            continue
        current = t[t["fresh"]]
        out[pool] = int(((current["reachable"] == 1) & current["error"].isna()).sum())
    return out, warnings


def pool_status(cfg: SiteConfig, telemetry: pd.DataFrame) -> pd.DataFrame:
    """One row per ASIC pool that has machines in `telemetry` (the newest row per machine)."""
    rows = []
    modes = {p.name: {m.name: m for m in p.modes} for p in cfg.asic_pools}
    for pool, t in telemetry.groupby("pool", sort=True):
        reachable = t["reachable"] == 1
        erroring = reachable & t["error"].notna()
        mining = reachable & ~erroring & (t["mining"] == 1)
        sleeping = reachable & ~erroring & (t["mining"] == 0)
        stock = modes.get(pool, {}).get("stock")
        rows.append({
            "pool": pool,
            "machines": len(t),
            "healthy": int((reachable & ~erroring).sum()),
            "mining": int(mining.sum()),
            "sleeping": int(sleeping.sum()),
            "unreachable": int((~reachable).sum()),
            "erroring": int(erroring.sum()),
            "measured_kw": round(float(t.loc[reachable, "watts"].fillna(0).sum()) / 1000.0, 1),
            "measured_th": round(float(t.loc[reachable, "hashrate_th"].fillna(0).sum()), 1),
            "config_stock_kw": round(int(mining.sum()) * stock.power_w / 1000.0, 1) if stock else None,
            "config_stock_th": round(int(mining.sum()) * stock.hashrate_th, 1) if stock else None,
            "last_scan_utc": str(t["at_utc"].max()),
        })
    return pd.DataFrame(rows)
