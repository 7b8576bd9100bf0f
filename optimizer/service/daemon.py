"""`hashpivot run` (APScheduler, cron triggers from [daemon]) and `hashpivot tick` (one collect-then-decide pass).

One instance per store (an exclusive file lock next to it, naming the PID that holds it); SIGTERM/SIGINT let the
running job finish and exit 0; misfired runs coalesce into one; each job opens its own store connection.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from hashpivot.feeds.collect import collect, status
from hashpivot.feeds.fleet.inventory import fleet_machines, in_fleet
from hashpivot.feeds.fleet.scan import scan_into, use_password
from hashpivot.feeds.fleet.status import pool_status
from hashpivot.feeds.store import Store, default_db_path, parse_iso
from hashpivot.models.calendar import iso_utc
from hashpivot.models.clock import check_clock, now_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision, load_decision
from hashpivot.models.errors import HashpivotError, PublishError
from hashpivot.optimizer.console.server import prepare, serve_in_thread
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings
from hashpivot.optimizer.service import outbox
from hashpivot.optimizer.service.lock import InstanceLock
from hashpivot.optimizer.service.metrics import Metrics
from hashpivot.optimizer.service.overrides import with_override
from hashpivot.optimizer.service.rolling import decide_interval

log = logging.getLogger(__name__)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_store(db: Path) -> None:
    """Create/migrate the store before any job and refuse a damaged one (SQLite's quick check), turning an
    unusable path into an operator's error."""
    with Store(db) as store:
        store.require_sound()


def backup_job(cfg: SiteConfig, db: Path) -> Path:
    """An online backup of the store (`store-<UTC time>.sqlite` in daemon.backup_dir, 0600); the newest
    `daemon.keep_backups` are kept."""
    directory = _under_store(cfg.daemon.backup_dir, db)
    with Store(db) as store:
        path = store.backup(directory / f"store-{now_utc():%Y%m%dT%H%M%SZ}.sqlite")
    for old in sorted(directory.glob("store-*.sqlite"))[:-cfg.daemon.keep_backups]:
        old.unlink(missing_ok=True)
    log.info("job=backup path=%s", path)
    return path


def store_path(cfg: SiteConfig, db: Path | None) -> Path:
    return Path(db) if db else (Path(cfg.feeds.db_path).expanduser() if cfg.feeds.db_path else default_db_path())


def _under_store(folder: str, db: Path) -> Path:
    directory = Path(folder).expanduser()
    return directory if directory.is_absolute() else Path(db).parent / directory


def publish_dir(cfg: SiteConfig, db: Path) -> Path:
    """`daemon.publish_dir`; a relative one is under the store's directory (not wherever the daemon started)."""
    return _under_store(cfg.daemon.publish_dir, db)


def collect_job(cfg: SiteConfig, db: Path, groups: list[str] | None, metrics: Metrics | None) -> None:
    t0 = time.perf_counter()
    with Store(db) as store:
        results = collect(cfg, store, groups)
        if metrics is not None:
            metrics.record_feeds(results, status(cfg, store))
    log.info("job=collect groups=%s ok=%d failed=%d duration_s=%.3f", ",".join(groups or ["all"]),
             sum(r.ok for r in results), sum(not r.ok for r in results), time.perf_counter() - t0)


def decision_job(cfg: SiteConfig, db: Path, metrics: Metrics | None,
                 kept_model: PersistentLP | None = None) -> tuple[int, Decision]:
    """Decide, store with its outbox marks, publish from the outbox (this decision and any earlier one a
    crash or a full disk left unpublished). `kept_model` carries the model between the daemon's intervals.
    PublishError if publishing failed: the decision is stored and is published by the next pass."""
    now = now_utc()
    t0 = time.perf_counter()
    cfg = with_override(cfg, db)  # fleet.apply as the console last switched it
    with Store(db) as store:
        doc = decide_interval(cfg, store, now, kept_model).model_copy(update={"decided_at_utc": iso_utc(now)})
        duration = time.perf_counter() - t0
        seq = store.add_decision(doc, now, duration, outbox.targets(cfg))
        if metrics is not None:
            metrics.record_decision(doc, now.timestamp(), duration)
        log.info("job=decide seq=%d interval=%s status=%s objective_usd=%s site_kw=%s duration_s=%.3f reason=%r", seq,
                 doc.interval_start_utc, doc.status, doc.objective_usd, doc.site.site_power_kw, duration, doc.reason)
        try:
            outbox.drain(cfg, store, publish_dir(cfg, db),
                         on_apply=metrics.fleet_apply_duration.set if metrics is not None else None)
        except PublishError as exc:
            raise PublishError(str(exc), decision=(seq, doc)) from None
        finally:
            if metrics is not None and cfg.fleet.configured:
                metrics.record_fleet(pool_status(cfg, in_fleet(store.latest_telemetry(), cfg)), doc, store.last_apply())
    return seq, doc


def fleet_scan_job(cfg: SiteConfig, db: Path) -> None:
    """Read every machine of the inventory once into the store (the next decision uses it)."""
    machines = fleet_machines(cfg)
    use_password(cfg)
    with Store(db) as store:
        rows = scan_into(store, machines, now_utc(), cfg.fleet.concurrency, cfg.fleet.timeout_s)
    log.info("job=fleet_scan machines=%d reachable=%d", len(rows), sum(r.reachable for r in rows))


def publish_job(cfg: SiteConfig, db: Path) -> None:
    """Publish what is stored but not yet published (at start-up, before the first decision)."""
    with Store(db) as store:
        outbox.drain(with_override(cfg, db), store, publish_dir(cfg, db))


def _one_line_errors(job):
    """A scheduled job whose operator-level error (feeds, store, publishing) is logged as one line and the
    daemon goes on; APScheduler would log a traceback per run."""

    def wrapper(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except HashpivotError as exc:
            log.error("job=%s failed: %s", job.__name__, " ".join(str(exc).split()))

    wrapper.__name__ = job.__name__
    return wrapper


class ClockStepWatch:
    """Notices a step of the wall clock (NTP correction, VM resume) by comparing it with the monotonic clock,
    and calls `on_step(seconds)`: APScheduler computes how long to sleep from the wall clock, so after a
    backward step of 3 h it would sleep 3 h. Both clocks are passed in (tests step a clock of their own)."""

    def __init__(self, on_step, wall=time.time, mono=time.monotonic, tolerance_s: float = 2.0):
        self.on_step, self.wall, self.mono, self.tolerance_s = on_step, wall, mono, tolerance_s
        self.offset = wall() - mono()

    def check(self) -> float:
        """The step since the last check (0 if within tolerance); calls `on_step` when there was one."""
        offset = self.wall() - self.mono()
        step = offset - self.offset
        self.offset = offset
        if abs(step) <= self.tolerance_s:
            return 0.0
        self.on_step(step)
        return step


def rearm(scheduler) -> None:
    """Every job's next run recomputed from the wall clock as it is now, and the scheduler woken: after a
    step, decisions go on within one interval instead of waiting out the step."""
    now = datetime.now(timezone.utc)
    for job in scheduler.get_jobs():
        job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))
    scheduler.wakeup()


def _watch_clock(scheduler, stop: threading.Event, period_s: float = 1.0) -> threading.Thread:
    def on_step(step: float) -> None:
        log.warning("clock: the wall clock stepped by %+.0f s; the schedule is re-armed from the new time", step)
        rearm(scheduler)

    watch = ClockStepWatch(on_step)

    def loop() -> None:
        while not stop.wait(period_s):
            watch.check()

    thread = threading.Thread(target=loop, name="clock-step-watch", daemon=True)
    thread.start()
    return thread


def tick(cfg: SiteConfig, db: Path) -> tuple[int, Decision]:
    """One collection pass over every group, then one decision (for cron or a systemd timer)."""
    check_clock()
    with InstanceLock(db):
        _check_store(db)
        collect_job(cfg, db, None, None)
        return decision_job(cfg, db, None)


def run(cfg: SiteConfig, db: Path) -> None:
    """The long-running scheduler; returns after SIGTERM/SIGINT once the running job has finished.

    At start: what is stored but unpublished is published, and every feed group is collected once, so the
    first decision is not the safe allocation for want of data."""
    check_clock()
    with InstanceLock(db):
        _check_store(db)
        metrics = Metrics()
        _show_last_decision(db, metrics)
        if cfg.daemon.metrics_port is not None:
            try:
                metrics.serve(cfg.daemon.metrics_host, cfg.daemon.metrics_port)
            except OSError as exc:
                raise HashpivotError(
                    f"cannot serve metrics on {cfg.daemon.metrics_host}:{cfg.daemon.metrics_port} ({exc.strerror}); "
                    "set daemon.metrics_port to a free port, or \"off\" to switch metrics off"
                ) from None
            log.info("metrics listening on http://%s:%d/metrics", cfg.daemon.metrics_host, cfg.daemon.metrics_port)
            if not _loopback(cfg.daemon.metrics_host):
                log.warning("metrics are served on %s, beyond this machine: anyone who reaches it reads the site's "
                            "decisions (daemon.metrics_host = \"127.0.0.1\" keeps them local)", cfg.daemon.metrics_host)
        console = _start_console(cfg, db) if cfg.console.enabled else None
        scheduler = BlockingScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(1)},  # one job at a time: collect and decide never interleave
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": cfg.daemon.misfire_grace_s},
        )
        _one_line_errors(publish_job)(cfg, db)  # what a crash or a full disk left unpublished, first
        _one_line_errors(collect_job)(cfg, db, None, metrics)
        for group, cron in cfg.daemon.feed_crons.items():
            scheduler.add_job(_one_line_errors(collect_job), CronTrigger(**{k: str(v) for k, v in cron.items()}, timezone="UTC"),
                              args=[cfg, db, [group], metrics], id=f"collect-{group}", name=f"collect {group}")
        scheduler.add_job(_one_line_errors(decision_job),
                          CronTrigger(**{k: str(v) for k, v in cfg.daemon.decision_cron.items()}, timezone="UTC"),
                          args=[cfg, db, metrics, PersistentLP(SolveSettings.from_config(cfg))],
                          id="decide", name="decide")
        if cfg.fleet.configured:
            scheduler.add_job(_one_line_errors(fleet_scan_job),
                              CronTrigger(**{k: str(v) for k, v in cfg.daemon.fleet_scan_cron.items()}, timezone="UTC"),
                              args=[cfg, db], id="fleet-scan", name="fleet scan")
        scheduler.add_job(_one_line_errors(backup_job),
                          CronTrigger(**{k: str(v) for k, v in cfg.daemon.backup_cron.items()}, timezone="UTC"),
                          args=[cfg, db], id="backup", name="backup")

        stop, stopping = _stop_on_signal(scheduler)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("daemon started pid=%d store=%s jobs=%d", os.getpid(), db, len(scheduler.get_jobs()))
        watching = threading.Event()
        scheduler.add_listener(lambda _event: _watch_clock(scheduler, watching), EVENT_SCHEDULER_STARTED)
        try:
            scheduler.start()
        finally:
            for thread in stopping:
                thread.join()  # the running job has finished
            watching.set()
            if console is not None:
                console.stop()
        log.info("daemon stopped")


def _show_last_decision(db: Path, metrics: Metrics) -> None:
    """The store's last decision on the gauges before the first new one (a restart must not read as zeros)."""
    with Store(db) as store:
        last = store.decisions(limit=1)
    if not last.empty:
        row = last.iloc[-1]
        doc = load_decision(row["document"], f"{db}: decision {row['seq']}")
        metrics.show_decision(doc, parse_iso(row["decided_at_utc"]).timestamp(), float(row["duration_s"]))


def _stop_on_signal(scheduler: BlockingScheduler):
    """A SIGTERM/SIGINT handler that shuts the scheduler down after its running job, from a thread of its own.

    The signal interrupts the main thread wherever it is, including inside the executor's submit() while that
    holds the pool's lock; shutdown() takes the same lock, so called in the handler it waited on its own thread
    forever (seen: a daemon alive 30 min after SIGTERM). Returns the handler and the list its thread joins."""
    stopping: list[threading.Thread] = []

    def shutdown(signame: str) -> None:
        log.info("signal=%s shutting down after the running job", signame)
        scheduler.shutdown(wait=True)  # waits for the running job, then start() returns

    def stop(signum, _frame):
        if not stopping:  # a second signal while stopping changes nothing
            stopping.append(threading.Thread(target=shutdown, args=(signal.Signals(signum).name,), name="shutdown"))
            stopping[0].start()

    return stop, stopping


def _start_console(cfg: SiteConfig, db: Path):
    """The operator console in a thread beside the scheduler ([console] enabled = true); its start-up errors
    (no token for a non-loopback bind, port in use) stop the daemon before any job runs."""
    return serve_in_thread(prepare(cfg, db))  # prepare() logs where it listens
