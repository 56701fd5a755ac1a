# SPDX-License-Identifier: MIT
"""The feature flag: batch processing on (a bad batch is refused alone) or
off (the whole day is one all-or-nothing batch)."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from daily_updater import (DailyUpdater, batch_processing_default,
                           generate_day)


def bad_day():
    day = generate_day(1, hearings=80, seed=7)
    day[len(day) // 2 + 1]["value"]["date"] = "2024-13-01"  # one bad record
    return day


def count(db):
    return sum(t.records for t in db.tables())


def test_on_only_the_bad_batch_is_refused(feed):
    up = DailyUpdater(feed, batch_size=50, batch_processing=True)
    results = up.run("day 1", bad_day())
    assert len(results) > 2
    bad = [r for r in results if not r.success]
    assert len(bad) == 1 and bad[0].issues[0].kind == "format"
    assert count(feed) == sum(r.records for r in results if r.success) > 0


def test_off_the_day_is_one_batch(feed):
    day = generate_day(1, hearings=80, seed=7)
    up = DailyUpdater(feed, batch_size=50, batch_processing=False)
    [r] = up.run("day 1", day)
    assert r.success and r.records == len(day) == count(feed)
    assert r.label == "day 1 batch 1/1"


def test_off_one_bad_record_refuses_the_whole_day(feed):
    last = feed.last_batch
    up = DailyUpdater(feed, batch_size=50, batch_processing=False)
    [r] = up.run("day 1", bad_day())
    assert not r.success and r.batch_id == 0
    assert r.issues_total == 1
    assert count(feed) == 0 and feed.last_batch == last


def test_off_a_day_is_rolled_back_whole(feed):
    up = DailyUpdater(feed, batch_processing=False)
    [r] = up.run("day 1", generate_day(1, hearings=30, seed=2))
    up.rollback(r.batch_id)
    assert count(feed) == 0


@pytest.mark.parametrize("value,expected", [
    (None, True), ("1", True), ("yes", True), ("0", False),
    ("false", False), ("OFF", False), ("no", False)])
def test_flag_from_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("LOGBOOK_BATCH_PROCESSING", raising=False)
    else:
        monkeypatch.setenv("LOGBOOK_BATCH_PROCESSING", value)
    assert batch_processing_default() is expected
    assert DailyUpdater(None).batch_processing is expected
    assert DailyUpdater(None, batch_processing=True).batch_processing


def test_command_line_flag(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "daily_updater.py"),
         "--db", str(tmp_path / "db"), "--days", "2", "--hearings", "40",
         "--bad-rate", "0", "--no-batch-processing"],
        env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "day 1: " in out.stdout and "in 1 batch(es)" in out.stdout
    assert "day 2: " in out.stdout and "verify: " in out.stdout
