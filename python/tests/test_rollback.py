# SPDX-License-Identifier: MIT
"""Rollback: an added hearing deleted, an updated one restored, its
witnesses and documents, other batches untouched; conflicts name the later
batches; cascade, force, dry run, rollback_to, and a redo."""

import pytest

import logbook
from conftest import document, hearing, witness


def commit(db, label, ops):
    with db.batch(label) as b:
        for op, table, key, value in ops:
            assert getattr(b, op)(table, key, value)
    return b.result.batch_id


def state(db):
    return {t.name: dict(db.scan(t.name)) for t in db.tables()}


@pytest.fixture
def days(feed):
    """Day 1: H1 with a witness and a document; day 2: H2, H1 updated,
    another witness of H1."""
    b1 = commit(feed, "day 1", [
        ("insert", "hearings", "HRG-1-1", hearing("HRG-1-1")),
        ("insert", "witnesses", "W-1", witness("W-1", "HRG-1-1")),
        ("insert", "documents", "D-1", document("D-1", "HRG-1-1"))])
    b2 = commit(feed, "day 2", [
        ("insert", "hearings", "HRG-1-2", hearing("HRG-1-2")),
        ("update", "hearings", "HRG-1-1", hearing("HRG-1-1", title="New")),
        ("insert", "witnesses", "W-2", witness("W-2", "HRG-1-1"))])
    return feed, b1, b2


def test_added_hearing_is_deleted(days):
    db, b1, b2 = days
    r = db.rollback(b2)
    assert r.success and r.batch_id == b2 + 1 and r.undone == [b2]
    assert db.get("hearings", "HRG-1-2") is None


def test_updated_hearing_is_restored(days):
    db, b1, b2 = days
    db.rollback(b2)
    assert db.get("hearings", "HRG-1-1") == hearing("HRG-1-1")


def test_witnesses_and_documents_follow(days):
    db, b1, b2 = days
    db.rollback(b2)
    assert db.get("witnesses", "W-2") is None
    assert db.get("witnesses", "W-1") == witness("W-1", "HRG-1-1")
    assert db.get("documents", "D-1") == document("D-1", "HRG-1-1")


def test_other_batches_are_untouched(feed):
    ids = [commit(feed, "b%d" % i, [
        ("insert", "hearings", "HRG-%d-1" % i, hearing("HRG-%d-1" % i)),
        ("insert", "documents", "D-%d" % i,
         document("D-%d" % i, "HRG-%d-1" % i))]) for i in range(4)]
    before = state(feed)
    feed.rollback(ids[1])
    after = state(feed)
    del before["hearings"]["HRG-1-1"], before["documents"]["D-1"]
    assert after == before
    info = feed.batch_info(ids[1])
    assert info.rolled_back_by == feed.last_batch and not info.standing
    assert all(feed.batch_info(i).standing for i in ids if i != ids[1])
    assert feed.batch_info(feed.last_batch).undoes == ids[1]


def test_conflict_names_the_later_batch(days):
    db, b1, b2 = days
    last = db.last_batch
    with pytest.raises(logbook.ConflictError) as ei:
        db.rollback(b1)
    e = ei.value
    assert e.code == logbook.ConflictError.code and e.errmsg
    assert db.last_batch == last
    assert {i.batch for i in e.issues} == {b2}
    assert {i.kind for i in e.issues} == {"conflict"}
    assert ("hearings", "HRG-1-1") in {(i.table, i.key) for i in e.issues}
    assert e.result.batch_id == 0 and not e.result.success


def test_cascade_undoes_the_later_batches(days):
    db, b1, b2 = days
    r = db.rollback(b1, cascade=True)
    assert sorted(r.undone) == [b1, b2]
    assert state(db) == {"documents": {}, "hearings": {}, "witnesses": {}}


def test_dry_run_writes_nothing(days):
    db, b1, b2 = days
    before, last = state(db), db.last_batch
    r = db.rollback(b1, cascade=True, dry_run=True)
    assert r.batch_id == 0 and r.records > 0 and sorted(r.undone) == [b1, b2]
    assert state(db) == before and db.last_batch == last


def test_force_restores_over_later_changes(days):
    db, b1, b2 = days
    # day 1 restored by force: H1 (changed by day 2) goes too, but W-2 of
    # day 2 still references it: a foreign key the rollback refuses.
    with pytest.raises(logbook.ValidationError) as ei:
        db.rollback(b1, force=True)
    assert {i.kind for i in ei.value.issues} == {"foreign_key"}
    db.rollback(b2)
    r = db.rollback(b1, force=True)
    assert r.success
    assert state(db) == {"documents": {}, "hearings": {}, "witnesses": {}}


def test_cascade_with_force_is_invalid(days):
    db, b1, b2 = days
    with pytest.raises(logbook.InvalidError):
        db.rollback(b1, cascade=True, force=True)


def test_rollback_of_a_rollback_is_a_redo(days):
    db, b1, b2 = days
    full = state(db)
    r = db.rollback(b2)
    db.rollback(r.batch_id)
    assert state(db) == full
    assert db.batch_info(b2).standing


def test_rollback_to(days):
    db, b1, b2 = days
    r = db.rollback_to(b1, dry_run=True)
    assert r.batch_id == 0 and r.undone == [b2]
    r = db.rollback_to(b1)
    assert r.success and r.undone == [b2]
    assert db.get("hearings", "HRG-1-1") == hearing("HRG-1-1")
    assert db.get("hearings", "HRG-1-2") is None
    r = db.rollback_to(db.last_batch)
    assert r.batch_id == 0  # nothing to do


def test_missing_or_undone_batches(days):
    db, b1, b2 = days
    with pytest.raises(logbook.NotFoundError):
        db.rollback(999)
    db.rollback(b2)
    with pytest.raises(logbook.InvalidError):
        db.rollback(b2)  # it no longer stands
