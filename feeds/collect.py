"""One collection pass: for each series group, try its sources in order, validate, store; derive hashprice.

A source that fails (timeout, HTTP error, HTML, bad JSON) or whose rows are rejected by validation is logged,
its payload quarantined with the reason, and the next source of the group is tried. Nothing rejected is ever
written to `observations`, so good data is never overwritten by bad.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from hashpivot.feeds.base import FeedError, Observation
from hashpivot.feeds.http import HttpClient, HttpSettings
from hashpivot.feeds.registry import collectors_for
from hashpivot.feeds.store import Store
from hashpivot.feeds.validate import Rejected, validate
from hashpivot.models.clock import now_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import ConfigError
from hashpivot.models.hashprice import hashprice_usd_per_th_day
from hashpivot.models.series import FEED_GROUPS, spec

log = logging.getLogger(__name__)


@dataclass
class GroupResult:
    group: str
    source: str | None = None  # which source supplied the rows (None: every source failed)
    rows: int = 0
    fallback: bool = False  # True when a source other than the first one supplied the rows
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.source is not None


def http_client(cfg: SiteConfig) -> HttpClient:
    f = cfg.feeds
    return HttpClient(HttpSettings(f.connect_timeout_s, f.read_timeout_s, f.retries, f.backoff_s, f.max_retry_after_s,
                                   budget_s=f.pass_budget_s))


AGREEMENT_FRACTION = 0.02  # two sources re-anchoring a series must agree this closely


def _fresh_anchors(store: Store, series: set[str], now: datetime) -> tuple[dict[str, float], set[str]]:
    """The last good value of each series while it is within its staleness limit (the jump filter compares
    against these), and the series whose last good value is older than that (to be re-anchored)."""
    anchors, stale = {}, set()
    for s in series:
        last = store.latest(s)
        if last is None:
            continue
        if now - last.interval_start_utc <= spec(s).staleness:
            anchors[s] = last.value
        elif spec(s).max_jump_fraction is not None:
            stale.add(s)
    return anchors, stale


def _agree(a: list[Observation], b: list[Observation], series: set[str]) -> bool:
    latest_a = {r.series: r.value for r in a}
    latest_b = {r.series: r.value for r in b}
    return all(s in latest_b and abs(latest_a[s] - latest_b[s]) <= AGREEMENT_FRACTION * abs(latest_b[s])
               for s in series if s in latest_a)


def collect_group(cfg: SiteConfig, store: Store, client: HttpClient, group: str) -> GroupResult:
    """Try the group's sources in order; the first whose rows pass every check supplies them.

    The jump filter compares a value with the last good one only while that is within its staleness limit.
    Past it (a feed down for a day while the price moved 90 %), the new value re-anchors the series when a
    second source of the group agrees within 2 %, or when the group has no other source; the re-anchoring
    is logged."""
    result = GroupResult(group)
    t0 = time.perf_counter()
    sources = collectors_for(cfg, group)
    candidate: tuple[int, str, list[Observation], set[str]] | None = None  # waiting for a second source
    for position, collector in enumerate(sources):
        now = now_utc()
        bodies: list[bytes] = []
        try:
            payloads = collector.fetch(client)
            bodies = [p.body for p in payloads]
            rows = collector.parse(payloads)
            anchors, stale = _fresh_anchors(store, {r.series for r in rows}, now)
            validate(rows, anchors, cfg.feeds.jump_limits, now=now)
        except FeedError as exc:
            _reject(store, result, group, collector.name, now, exc.reason, exc.payload or b"\n".join(bodies) or None)
            continue
        except Rejected as exc:
            _reject(store, result, group, collector.name, now, exc.reason, b"\n".join(bodies))
            continue
        if candidate is not None:
            if _agree(candidate[2], rows, candidate[3]):
                log.warning("feed re-anchored group=%s series=%s source=%s confirmed_by=%s", group,
                            ",".join(sorted(candidate[3])), candidate[1], collector.name)
                _accept(store, result, group, candidate[1], candidate[0], candidate[2], now)
                break
            _reject(store, result, group, collector.name, now,
                    f"does not confirm {candidate[1]}'s re-anchoring of {', '.join(sorted(candidate[3]))} within "
                    f"{AGREEMENT_FRACTION:.0%}", b"\n".join(bodies))
            continue
        if stale and position + 1 < len(sources):
            candidate = (position, collector.name, rows, stale)  # a value after a long outage: ask another source
            continue
        if stale:
            log.warning("feed re-anchored group=%s series=%s source=%s confirmed_by=none (the only source)",
                        group, ",".join(sorted(stale)), collector.name)
        _accept(store, result, group, collector.name, position, rows, now)
        break
    else:
        if candidate is not None:
            _reject(store, result, group, candidate[1], now_utc(),
                    f"re-anchoring {', '.join(sorted(candidate[3]))} after its staleness limit needs a second "
                    f"source within {AGREEMENT_FRACTION:.0%}; none confirmed", None)
    result.duration_s = time.perf_counter() - t0
    level = logging.INFO if result.ok else logging.WARNING
    log.log(level, "feed group=%s ok=%s source=%s rows=%d fallback=%s failures=%d duration_s=%.3f",
            group, result.ok, result.source, result.rows, result.fallback, len(result.failures), result.duration_s)
    return result


def _accept(store: Store, result: GroupResult, group: str, source: str, position: int, rows: list[Observation],
            now: datetime) -> None:
    store.upsert(rows)
    store.log_fetch(group, source, now, True, len(rows), None)
    result.source, result.rows, result.fallback = source, len(rows), position > 0


def _reject(store: Store, result: GroupResult, group: str, source: str, now: datetime, reason: str, payload: bytes | None) -> None:
    log.warning("feed rejected group=%s source=%s reason=%s", group, source, reason)
    result.failures.append((source, reason))
    store.quarantine(group, source, now, reason, payload)
    store.log_fetch(group, source, now, False, 0, reason)


HASHPRICE_INPUTS = ("difficulty", "subsidy_btc", "fees_btc_per_block", "btc_usd")


def derive_hashprice(store: Store, now: datetime | None = None) -> Observation | None:
    """Hashprice from the latest stored difficulty, subsidy, fees and BTC price; stored with source 'computed'."""
    now = now or now_utc()
    inputs = {s: store.latest(s) for s in HASHPRICE_INPUTS}
    missing = [s for s, o in inputs.items() if o is None]
    if missing:
        log.warning("hashprice not derived: no stored %s", ", ".join(missing))
        return None
    value = hashprice_usd_per_th_day(inputs["difficulty"].value, inputs["btc_usd"].value, inputs["subsidy_btc"].value,
                                     inputs["fees_btc_per_block"].value)
    start = max(o.interval_start_utc for o in inputs.values())
    row = Observation("hashprice_usd_per_th_day", start, value, "USD/TH/day", "computed", now)
    try:
        validate([row], store.latest_values([row.series]))
    except Rejected as exc:
        store.quarantine("hashprice", "computed", now, exc.reason, None)
        log.warning("hashprice rejected reason=%s", exc.reason)
        return None
    store.upsert([row])
    return row


def check_groups(groups: list[str] | None) -> tuple[str, ...]:
    """The groups asked for (default: all), or ConfigError naming the first unknown one."""
    for group in groups or ():
        if group not in FEED_GROUPS:
            raise ConfigError(f"--series {group!r}: unknown feed group; groups: {', '.join(FEED_GROUPS)}")
    return tuple(groups) if groups else FEED_GROUPS


def collect(cfg: SiteConfig, store: Store, groups: list[str] | None = None, client: HttpClient | None = None) -> list[GroupResult]:
    """One pass over `groups` (default: every group with an enabled source)."""
    groups = check_groups(groups)
    own = client is None
    client = client or http_client(cfg)
    try:
        results = []
        for group in groups:
            if collectors_for(cfg, group):
                results.append(collect_group(cfg, store, client, group))
        if any(r.ok and r.group in ("btc", "network") for r in results):
            derive_hashprice(store)
        return results
    finally:
        if own:
            client.close()


def required_series(cfg: SiteConfig) -> list[str]:
    """Series a solve from the store cannot do without."""
    out = ["btc_usd", "difficulty", "subsidy_btc", "fees_btc_per_block", "hashprice_usd_per_th_day"]
    if cfg.site.market in ("ERCOT", "NYISO"):
        out.append(f"power_rt_usd_per_mwh.{cfg.site.settlement_point}")
    out += sorted({f"gpu_rate_usd_per_gpu_hour.{g.rate_series}" for g in cfg.gpu_pools if g.rate_series})
    return out


@dataclass
class SeriesStatus:
    series: str
    value: float | None
    unit: str
    interval_start_utc: datetime | None
    source: str | None
    age_s: float | None
    staleness_s: float
    required: bool

    @property
    def fresh(self) -> bool:
        return self.age_s is not None and self.age_s <= self.staleness_s


def status(cfg: SiteConfig, store: Store, now: datetime | None = None) -> list[SeriesStatus]:
    """Last good value, age, source and staleness per stored (and per required) series."""
    now = now or now_utc()
    required = set(required_series(cfg))
    out = []
    for series in sorted(set(store.series_names()) | required):
        s = spec(series)
        last = store.latest(series, as_of=now)  # what was known by now: after a clock step back, not later rows
        age = None if last is None else max((now - last.interval_start_utc).total_seconds(), 0.0)
        out.append(SeriesStatus(series, None if last is None else last.value, s.unit,
                                None if last is None else last.interval_start_utc, None if last is None else last.source,
                                age, s.staleness.total_seconds(), series in required))
    return out
