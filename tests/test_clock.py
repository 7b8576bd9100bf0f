"""One clock, robust to steps: the fake clock file is checked at start, a step of the wall clock is noticed
against the monotonic clock and the real APScheduler schedule is re-armed from the new time."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from hashpivot.optimizer.service.daemon import ClockStepWatch, rearm

ROOT = Path(__file__).resolve().parents[1]


class SteppedClock:
    """A wall clock a test can step, running with a monotonic one (both plain functions of this object)."""

    def __init__(self):
        self.mono_s, self.step_s = 1000.0, 0.0

    def mono(self) -> float:
        return self.mono_s

    def wall(self) -> float:
        return 1.7e9 + self.mono_s + self.step_s


def test_a_step_of_the_wall_clock_is_noticed_and_ordinary_drift_is_not():
    clock, steps = SteppedClock(), []
    watch = ClockStepWatch(steps.append, wall=clock.wall, mono=clock.mono)
    clock.mono_s += 1.0
    clock.step_s += 0.3  # NTP slewing: no step
    assert watch.check() == 0.0
    for step in (-3 * 3600.0, -120.0, 5 * 3600.0):
        clock.mono_s += 1.0
        clock.step_s += step
        assert watch.check() == step
    assert steps == [-10800.0, -120.0, 18000.0]


def test_rearming_brings_a_job_a_backward_step_pushed_hours_away_back_within_one_interval():
    """After a -3 h step, the next fire time APScheduler computed before it lies 3 h ahead of the new wall
    clock; `rearm` recomputes it from now, and the real scheduler runs the job again within its interval."""
    ran = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    job = scheduler.add_job(ran.set, CronTrigger(second="*/2", timezone="UTC"))
    scheduler.start()
    try:
        job.modify(next_run_time=datetime.now(timezone.utc) + timedelta(hours=3))  # what the step leaves
        assert not ran.wait(2.5)  # stuck: the scheduler sleeps towards a time 3 h away
        rearm(scheduler)
        assert job.next_run_time - datetime.now(timezone.utc) <= timedelta(seconds=2)
        assert ran.wait(4.0)
    finally:
        scheduler.shutdown(wait=False)


def test_a_garbage_fake_clock_file_is_an_error_at_start(tmp_path):
    clock = tmp_path / "now.txt"
    clock.write_text("half past nine")
    env = {"HASHPIVOT_FAKE_NOW_FILE": str(clock), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "tick", "--db", str(tmp_path / "s.sqlite")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: HASHPIVOT_FAKE_NOW_FILE={clock}: not an ISO 8601 time")
    assert not (tmp_path / "s.sqlite").exists()
