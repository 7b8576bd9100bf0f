"""Benchmark: scan a simulated farm and command a decision that changes 30 % of it, through real pyasic.

    python -m benchmarks.fleet_bench --machines 2000 [--concurrency 200] [--passes 3] [--vnish-fraction 0.3]

Prints one line per pass
`fleet_bench: machines=N scan_s=… apply_s=… changed=N verified=N failed=N max_site_kw_during=… cap_kw=… rss_mib=…`
and the concurrency used. Target (README: Performance): 2,000 machines scanned, and a decision changing 30 % of
them commanded and verified, each in under 30 s, memory flat over repeated passes.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import threading
import time
from datetime import datetime, timezone

from hashpivot.feeds.fleet.farm import Farm
from hashpivot.feeds.fleet.farm_mix import mixed_farm
from hashpivot.feeds.fleet.inventory import Machine
from hashpivot.feeds.fleet.scan import scan_async, telemetry_frame
from hashpivot.models.config import load_config
from hashpivot.models.decision import Decision, PoolDecision, SiteState
from hashpivot.optimizer.service.fleet_apply import apply_waves
from hashpivot.optimizer.service.fleet_plan import plan, waves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--vnish-fraction", type=float, default=0.0, help="share of VNish machines (the rest LuxOS)")
    args = parser.parse_args()
    cfg = load_config("configs/site.toml")
    machines = mixed_farm(args.machines, "127.0.20.1", args.vnish_fraction, noise=0.0)
    loop = asyncio.new_event_loop()  # the farm runs on its own thread, as a real site's machines are elsewhere
    threading.Thread(target=loop.run_forever, daemon=True).start()
    farm = asyncio.run_coroutine_threadsafe(Farm(machines).start(), loop).result()
    inventory = [Machine(m.ip, "s19xp") for m in machines]
    vnish = sum(m.firmware == "vnish" for m in machines)
    print(f"fleet_bench: concurrency={args.concurrency}, pyasic against {args.machines:,} simulated machines "
          f"({args.machines - vnish:,} LuxOS, {vnish:,} VNish)")
    for n in range(args.passes):
        on = args.machines - int(args.machines * 0.3) if n % 2 == 0 else args.machines  # 30 % off, then back on
        t0 = time.perf_counter()
        rows = asyncio.run(scan_async(inventory, datetime.now(timezone.utc), args.concurrency, 5.0))
        scan_s = time.perf_counter() - t0
        telemetry = telemetry_frame(rows)
        doc = Decision(schema_version=2, status="optimal", site=SiteState(cap_kw=0, it_power_kw=0, site_power_kw=0),
                       interval_start_utc="2025-06-01T00:00:00Z", horizon_steps=1, step_minutes=60, pools=[PoolDecision(
                           name="s19xp", kind="asic", hall="hall-a", units_on=on, units_available=args.machines,
                           units_by_mode={"stock": on}, power_kw=0, reason="bench")])
        cap_kw = farm.site_power_kw() + 0.3 * args.machines * 3.0  # room for the raises
        steps = waves(plan(cfg, doc, telemetry), farm.site_power_kw(), cap_kw, ramp_kw=None)  # 600 machines in one apply
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=lambda: [samples.append(farm.site_power_kw()) for _ in iter(lambda: stop.wait(0.01), True)],
                                   daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        applied = asyncio.run(apply_waves(steps, 5.0, 1, args.concurrency))
        apply_s = time.perf_counter() - t0
        stop.set()
        sampler.join()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"fleet_bench: machines={args.machines} scan_s={scan_s:.1f} apply_s={apply_s:.1f} changed={len(applied)} "
              f"verified={sum(a.ok for a in applied)} failed={sum(not a.ok for a in applied)} "
              f"max_site_kw_during={max(samples or [0]):,.0f} cap_kw={cap_kw:,.0f} waves={len(steps)} rss_mib={rss:,.0f}",
              flush=True)
    asyncio.run_coroutine_threadsafe(farm.stop(), loop).result()


if __name__ == "__main__":
    main()
