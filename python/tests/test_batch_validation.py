# SPDX-License-Identifier: MIT
"""Batch validation: foreign keys, duplicates, formats, and every issue of
a batch reported at once, with nothing written."""

import json

import pytest

import logbook
from conftest import document, hearing, witness


def refused(db, ops, label="bad"):
    before = db.last_batch
    with pytest.raises(logbook.ValidationError) as ei:
        with db.batch(label) as b:
            for op, table, key, value in ops:
                getattr(b, op)(table, key, value)
    e = ei.value
    assert e.code == logbook.ValidationError.code
    assert e.result is b.result and not e.result.success
    assert e.result.batch_id == 0 and e.issues == e.result.issues
    assert db.last_batch == before  # nothing written, no id used
    return e.result


def test_foreign_key_to_a_missing_hearing(feed):
    r = refused(feed, [("insert", "witnesses", "W-1",
                        witness("W-1", "HRG-9-9"))])
    [i] = r.issues
    assert (i.kind, i.table, i.key, i.field) == (
        "foreign_key", "witnesses", "W-1", "hearing_id")
    assert "HRG-9-9" in i.message
    assert feed.get("witnesses", "W-1") is None


def test_foreign_key_satisfied_within_the_batch(feed):
    with feed.batch("ok") as b:
        b.insert("documents", "D-1", document("D-1", "HRG-1-1"))
        b.insert("hearings", "HRG-1-1", hearing("HRG-1-1"))
    assert b.result.success and b.result.records == 2


def test_deleting_a_referenced_hearing_is_refused(feed):
    with feed.batch() as b:
        b.insert("hearings", "HRG-1-1", hearing("HRG-1-1"))
        b.insert("witnesses", "W-1", witness("W-1", "HRG-1-1"))
    r = refused(feed, [("delete", "hearings", "HRG-1-1", None)])
    assert [i.kind for i in r.issues] == ["foreign_key"]


def test_duplicates_in_the_batch_and_against_the_database(feed):
    with feed.batch() as b:
        b.insert("hearings", "HRG-1-1", hearing("HRG-1-1"))
    r = refused(feed, [
        ("insert", "hearings", "HRG-1-1", hearing("HRG-1-1")),
        ("insert", "hearings", "HRG-1-2", hearing("HRG-1-2")),
        ("insert", "hearings", "HRG-1-2", hearing("HRG-1-2"))])
    assert [(i.kind, i.key) for i in r.issues] == [
        ("duplicate", "HRG-1-1"), ("duplicate", "HRG-1-2")]


def test_update_or_delete_of_a_missing_key(feed):
    r = refused(feed, [("update", "hearings", "HRG-1-1", hearing("HRG-1-1")),
                       ("delete", "witnesses", "W-404", None)])
    assert [(i.kind, i.table) for i in r.issues] == [
        ("missing", "hearings"), ("missing", "witnesses")]


@pytest.mark.parametrize("field,value", [
    ("date", "2024-02-30"),            # format: no such day
    ("date", "14/03/2024"),            # format: not RFC 3339
    ("chamber", "Senat"),              # enum
    ("congress", 79),                  # min
    ("congress", "118"),               # type
    ("title", "x" * 201),              # max_len
    ("id", "HRG-1-2"),                 # key_field: not the record's key
])
def test_formats(feed, field, value):
    r = refused(feed, [("insert", "hearings", "HRG-1-1",
                        hearing("HRG-1-1", **{field: value}))])
    [i] = r.issues
    assert (i.kind, i.field) == ("format", field)
    assert field in i.message


def test_closed_schema_refuses_unknown_fields_and_non_maps(feed):
    r = refused(feed, [
        ("insert", "hearings", "HRG-1-1", hearing("HRG-1-1", extra=1)),
        ("insert", "hearings", "HRG-1-2", ["not", "a", "map"]),
        ("insert", "hearings", "HRG-1-3", {"id": "HRG-1-3"})])
    assert [i.key for i in r.issues][:2] == ["HRG-1-1", "HRG-1-2"]
    assert all(i.kind == "format" for i in r.issues)
    assert r.issues_total >= 3


def test_a_bad_write_returns_false_and_is_not_applied(feed):
    with pytest.raises(logbook.ValidationError):
        with feed.batch() as b:
            assert b.insert("hearings", "HRG-1-1", hearing("HRG-1-1"))
            assert not b.insert("hearings", "HRG-1-2",
                                hearing("HRG-1-2", chamber="Moon"))
            assert b.get("hearings", "HRG-1-1") == hearing("HRG-1-1")
            assert b.get("hearings", "HRG-1-2") is None


def test_every_issue_of_a_batch_is_reported(feed):
    ops = []
    for n in range(30):
        k = "HRG-1-%d" % n
        ops.append(("insert", "hearings", k, hearing(k, congress=1)))
    ops.append(("insert", "witnesses", "W-1", witness("W-1", "HRG-0-0")))
    ops.append(("insert", "documents", "D-1", document("D-1", "HRG-1-0")))
    r = refused(feed, ops)
    assert r.issues_total == len(r.issues) == 32
    kinds = [i.kind for i in r.issues]
    assert kinds.count("format") == 30 and kinds.count("foreign_key") == 2
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["success"] is False and d["batch_id"] == 0
    assert len(d["issues"]) == 32 and d["error"]
    assert set(d["issues"][0]) == {"kind", "table", "key", "field",
                                   "message", "batch"}
    for t in ("hearings", "witnesses", "documents"):
        assert list(feed.scan(t)) == []
