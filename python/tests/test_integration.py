# SPDX-License-Identifier: MIT
"""End to end: two generated days (with broken records) through the
pipeline; the database equals a model built from the committed batches;
a batch of day 1 rolled back alone; replay, verify and prune."""

import os
import subprocess
import sys

import pytest

import logbook
from conftest import LONG, ROOT
from daily_updater import DailyUpdater, divide, generate_day, hearing_of


def apply(model, records):
    for r in records:
        t = model.setdefault(r["table"], {})
        if r["op"] == "delete":
            del t[r["key"]]
        else:
            t[r["key"]] = r["value"]


def state(db):
    return {t.name: dict(db.scan(t.name)) for t in db.tables()}


def full(model):
    return {t: dict(model.get(t, {})) for t in
            ("documents", "hearings", "witnesses")}


@pytest.fixture
def two_days(feed, seed):
    n = 600 if LONG else 150
    logged = []
    up = DailyUpdater(feed, batch_size=100, batch_processing=True,
                      log=logged.append)
    model = {}
    out = []
    for day in (1, 2):
        records = generate_day(day, hearings=n, seed=seed, bad_rate=0.005,
                               updates=n // 10 if day == 2 else 0)
        if day == 1:  # at least one bad batch, not the first one
            records[len(records) // 2]["value"]["date"] = "2024-02-30"
        batches = divide(records, 100, hearing_of)
        results = up.run("day %d" % day, records)
        assert len(results) == len(batches)
        for recs, r in zip(batches, results):
            if r.success:
                apply(model, recs)
        out.append((records, batches, results))
    return feed, up, model, out, logged


def test_two_days_equal_the_model(two_days):
    db, up, model, days, logged = two_days
    assert state(db) == full(model)
    results = [r for _, _, rs in days for r in rs]
    assert any(not r.success for r in results)  # the feed had bad records
    for _, _, rs in days:
        assert any(r.success for r in rs)
    assert [d["batch_id"] for d in logged] == [r.batch_id for r in results]
    for r in results:
        if not r.success:
            assert r.issues and r.batch_id == 0 and r.error
        else:
            assert db.batch_info(r.batch_id).label == r.label


def test_one_day_1_batch_rolled_back_alone(two_days):
    db, up, model, days, logged = two_days
    records, batches, results = days[0]
    day2_updates = {r["key"] for r in days[1][0] if r["op"] == "update"}
    # a committed batch of day 1 none of whose hearings day 2 updated
    pick = next(i for i, r in enumerate(results) if r.success and not
                {x["key"] for x in batches[i]} & day2_updates)
    target = results[pick]
    other = state(db)
    rb = up.rollback(target.batch_id)
    assert rb.success and rb.undone == [target.batch_id]
    for r in batches[pick]:
        other[r["table"]].pop(r["key"], None)
    assert state(db) == other
    assert logged[-1] == rb.to_dict()


def test_replay_verify_and_prune(two_days, tmp_path):
    db, up, model, days, logged = two_days
    last_day_1 = max(r.batch_id for r in days[0][2])
    rep = db.verify(replay=True)
    assert rep.ok and rep.chain_ok and rep.replay_ok
    assert rep.batches == db.last_batch
    r = db.replay(str(tmp_path / "day1"), to=last_day_1)
    assert r.batch_id == last_day_1
    m1 = {}
    for recs, res in zip(days[0][1], days[0][2]):
        if res.success:
            apply(m1, recs)
    with logbook.open(str(tmp_path / "day1"), create=False) as d1:
        assert state(d1) == full(m1)
    ck = db.checkpoint(str(tmp_path / "ck"))
    db.prune(ck + 1)
    assert db.batch_info(last_day_1).pruned
    with pytest.raises(logbook.PrunedError):
        db.changes(last_day_1)
    with pytest.raises(logbook.PrunedError):
        db.replay(str(tmp_path / "again"))
    assert db.verify().ok
    r = db.replay(str(tmp_path / "fromck"), from_checkpoint=str(tmp_path /
                                                                "ck"))
    assert r.batch_id == db.last_batch


def test_the_example_program(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "daily_updater.py"),
         "--db", str(tmp_path / "db"), "--json"],
        env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rolled back batch" in out.stdout
    assert "verify: " in out.stdout and ": ok" in out.stdout
    assert out.stdout.count('{"batch_id"') >= 4
