"""Prometheus metrics of the daemon (served on 127.0.0.1 by default) and the same figures for `hashpivot status`."""

from __future__ import annotations

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hashpivot.feeds.collect import GroupResult, SeriesStatus
from hashpivot.models.decision import Decision
from hashpivot.optimizer.pipeline.four_cp import peak_risk


def failure_kind(reason: str) -> str:
    """A short, bounded label for a failure reason (full reasons go to the log and the quarantine table)."""
    r = reason.lower()
    for needle, kind in (("timed out", "timeout"), ("cannot connect", "connect"), ("html", "html"), ("json", "bad_json"),
                         ("jumps", "jump"), ("plausible range", "range"), ("timestamp", "timestamp"), ("no rows", "empty"),
                         ("finite", "not_a_number"), ("not a number", "not_a_number")):
        if needle in r:
            return kind
    if "http " in r:
        return "http_" + r.split("http ", 1)[1][:3]
    return "invalid"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.last_decision = Gauge("hashpivot_last_decision_timestamp_seconds", "when the last decision was taken", registry=r)
        self.solve_duration = Gauge("hashpivot_last_solve_duration_seconds", "duration of the last decision", registry=r)
        self.objective = Gauge("hashpivot_objective_usd", "horizon profit of the last decision", registry=r)
        self.site_power = Gauge("hashpivot_site_power_kw", "site-meter power of the applied step", registry=r)
        self.pool_power = Gauge("hashpivot_pool_power_kw", "IT power per pool of the applied step", ["pool"], registry=r)
        self.safe = Gauge("hashpivot_safe_allocation", "1 while the safe allocation is published", registry=r)
        self.four_cp_probability = Gauge("hashpivot_four_cp_probability", "probability a step holds its month's ERCOT "
                                         "4CP interval: the applied step (step0) and today's highest (today_max)",
                                         ["step"], registry=r)
        self.four_cp_cost = Gauge("hashpivot_four_cp_expected_cost_usd", "expected 4CP charge of the last decision's "
                                  "horizon", registry=r)
        self.four_cp_climatology = Gauge("hashpivot_four_cp_climatology", "1 while 4CP is priced at the hour-of-day "
                                         "climatology (ERCOT load missing or stale)", registry=r)
        self.decisions = Counter("hashpivot_decisions", "decisions taken", ["status"], registry=r)
        self.feed_age = Gauge("hashpivot_feed_age_seconds", "age of the latest stored value", ["series"], registry=r)
        self.feed_fresh = Gauge("hashpivot_feed_fresh", "1 if within its staleness limit", ["series"], registry=r)
        self.feed_failures = Counter("hashpivot_feed_failures", "rejected fetches", ["source", "reason"], registry=r)
        self.fallback = Gauge("hashpivot_feed_fallback_in_use", "1 if a fallback source supplied the group", ["group"], registry=r)

        self.fleet_machines = Gauge("hashpivot_fleet_machines", "machines by state in the last scan", ["pool", "state"], registry=r)
        self.fleet_measured_kw = Gauge("hashpivot_fleet_measured_kw", "measured power of the pool's machines", ["pool"], registry=r)
        self.fleet_planned_kw = Gauge("hashpivot_fleet_planned_kw", "the decision's IT power for the pool", ["pool"], registry=r)
        self.fleet_commands = Gauge("hashpivot_fleet_last_apply_commands", "commands of the last apply by result",
                                    ["result"], registry=r)
        self.fleet_apply_duration = Gauge("hashpivot_fleet_last_apply_duration_seconds",
                                          "scan, plan, command and read-back of the last fleet apply", registry=r)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def record_decision(self, doc: Decision, decided_at_s: float, duration_s: float) -> None:
        self.show_decision(doc, decided_at_s, duration_s)
        self.decisions.labels(doc.status).inc()

    def show_decision(self, doc: Decision, decided_at_s: float, duration_s: float) -> None:
        """The gauges of a decision (at start: the store's last one, so a restarted daemon does not read 0 for
        the last decision's time, site power and objective until its first decision); counts nothing."""
        self.last_decision.set(decided_at_s)
        self.solve_duration.set(duration_s)
        if doc.objective_usd is not None:
            self.objective.set(doc.objective_usd)
        self.site_power.set(doc.site.site_power_kw)
        for pool in doc.pools:
            self.pool_power.labels(pool.name).set(pool.power_kw)
        self.safe.set(1 if doc.status == "safe" else 0)
        risk = peak_risk(doc)
        if risk is not None:
            self.four_cp_probability.labels("step0").set(risk["step0_probability"] or 0.0)
            self.four_cp_probability.labels("today_max").set(risk["today_max_probability"] or 0.0)
            self.four_cp_cost.set(risk["expected_cost_usd"] or 0.0)
            self.four_cp_climatology.set(1 if risk["fallback"] else 0)

    def record_fleet(self, status: pd.DataFrame, doc: Decision, last_apply: pd.DataFrame) -> None:
        """The last scan per pool (`feeds.fleet.status.pool_status`), what the decision planned, the last apply."""
        for row in status.to_dict("records"):
            for state in ("healthy", "mining", "sleeping", "unreachable", "erroring"):
                self.fleet_machines.labels(row["pool"], state).set(row[state])
            self.fleet_measured_kw.labels(row["pool"]).set(row["measured_kw"])
            planned = doc.pool(row["pool"])
            if planned is not None:
                self.fleet_planned_kw.labels(row["pool"]).set(planned.power_kw)
        for result in ("ok", "failed", "planned"):
            self.fleet_commands.labels(result).set(int((last_apply["result"] == result).sum()) if not last_apply.empty else 0)

    def record_feeds(self, results: list[GroupResult], statuses: list[SeriesStatus]) -> None:
        for r in results:
            self.fallback.labels(r.group).set(1 if r.fallback else 0)
            for source, reason in r.failures:
                self.feed_failures.labels(source, failure_kind(reason)).inc()
        for s in statuses:
            if s.age_s is not None:
                self.feed_age.labels(s.series).set(s.age_s)
            self.feed_fresh.labels(s.series).set(1 if s.fresh else 0)
