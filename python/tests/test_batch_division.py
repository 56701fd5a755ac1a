# SPDX-License-Identifier: MIT
"""Batch division: a day's records into batches of equal sizes, unequal
(a smaller last one), smaller than one batch, and empty; records of one
hearing kept together when asked; the updater commits one batch each."""

import random

import pytest

from conftest import LONG
from daily_updater import DailyUpdater, divide, generate_day, hearing_of


def recs(n):
    return [{"op": "insert", "table": "t", "key": "k%d" % i} for i in
            range(n)]


def test_equal_sizes():
    b = divide(recs(1000), 250)
    assert [len(x) for x in b] == [250] * 4
    assert sum(b, []) == recs(1000)


def test_unequal_sizes_last_batch_smaller():
    b = divide(recs(1001), 250)
    assert [len(x) for x in b] == [250, 250, 250, 250, 1]
    assert sum(b, []) == recs(1001)


def test_smaller_than_one_batch():
    assert divide(recs(10), 250) == [recs(10)]


def test_empty_day_gives_no_batches():
    assert divide([], 250) == []
    assert divide([], 1, hearing_of) == []


@pytest.mark.parametrize("size", [0, -1, 2.5, None, True])
def test_bad_batch_size_is_refused(size):
    with pytest.raises(ValueError):
        divide(recs(3), size)


def test_random_divisions_keep_every_record_in_order(seed):
    rng = random.Random(seed)
    for _ in range(2000 if LONG else 200):
        n = rng.randrange(0, 3000)
        size = rng.randrange(1, 600)
        b = divide(recs(n), size)
        assert sum(b, []) == recs(n)
        assert len(b) == -(-n // size)
        assert all(len(x) == size for x in b[:-1])
        assert not b or 1 <= len(b[-1]) <= size


def test_groups_stay_in_one_batch(seed):
    day = generate_day(1, hearings=120, seed=seed)
    batches = divide(day, 50, hearing_of)
    assert sum(batches, []) == day
    seen = {}
    for i, b in enumerate(batches):
        for r in b:
            assert seen.setdefault(hearing_of(r), i) == i
    # a batch is closed at the first group boundary past the size
    for b in batches[:-1]:
        first_of_last_group = next(j for j, r in enumerate(b)
                                   if hearing_of(r) == hearing_of(b[-1]))
        assert len(b) >= 50 and first_of_last_group < 50


def test_updater_commits_one_batch_per_division(feed):
    day = generate_day(1, hearings=60, seed=3)
    up = DailyUpdater(feed, batch_size=40, batch_processing=True)
    first = feed.last_batch + 1
    results = up.run("day 1", day)
    expected = divide(day, 40, hearing_of)
    assert len(results) == len(expected) > 1
    assert [r.batch_id for r in results] == list(
        range(first, first + len(expected)))
    assert [r.records for r in results] == [len(b) for b in expected]
    assert [r.label for r in results] == [
        "day 1 batch %d/%d" % (i + 1, len(expected))
        for i in range(len(expected))]
    assert up.run("day 0", []) == []
