# SPDX-License-Identifier: MIT
"""The package's API: opening, tables, values, reads, snapshots, the log,
schema changes, and threads sharing one database (the GIL released while
the library waits)."""

import datetime
import random
import threading

import pytest

import logbook
from conftest import LONG


def test_open_is_a_context_manager(dbdir):
    with logbook.open(dbdir) as db:
        assert not db.closed and db.last_batch == 0
        assert repr(db).startswith("<logbook.Database")
    assert db.closed
    assert logbook.library_version().count(".") == 2
    assert logbook.FORMAT_VERSION >= 1


def test_values_of_every_type(db):
    db.create_table("any", {"fields": []})
    db.create_table("raw")
    v = {"s": "text", "i": -5, "big": 2 ** 63, "f": 1.5, "b": True,
         "n": None, "bin": b"\x00\x01", "l": [1, "two", [3]],
         "m": {"nested": {"x": 1}}, "u": "h\u00e9llo \u2713"}
    with db.batch() as b:
        b.put("any", "k", v)
        b.put("raw", "k", b"\x00opaque")
        b.put("raw", "e", b"")
        b.put("raw", "ba", bytearray(b"ba"))
    assert db.get("any", "k") == v
    assert db.get("raw", "k") == b"\x00opaque"
    assert db.get("raw", "e") == b""
    assert db.get("raw", "ba") == b"ba"
    assert db.get("raw", "missing") is None
    assert db.get("raw", "missing", 0) == 0
    assert ("raw", "k") in db and ("raw", "zz") not in db


def test_tables(db):
    db.create_table("b")
    db.create_table("a", {"closed": False, "fields": [{"name": "x"}]})
    with db.batch() as b:
        b.put("b", "1", b"")
        b.put("b", "2", b"")
    ts = db.tables()
    assert [t.name for t in ts] == ["a", "b"]
    assert ts[0].schema == {"closed": False, "fields": [
        {"name": "x", "type": "any"}]}
    assert ts[1].schema is None and ts[1].records == 2
    assert ts[1].to_dict() == {"name": "b", "schema": None, "records": 2}


def test_scan_order_and_start(db):
    db.create_table("t")
    keys = ["k%03d" % i for i in range(50)]
    with db.batch() as b:
        for k in reversed(keys):
            b.put("t", k, k.encode())
    assert [k for k, _ in db.scan("t")] == keys
    assert [k for k, _ in db.scan("t", start="k025")] == keys[25:]
    assert [k for k, _ in db.scan("t", start="k0255")] == keys[26:]
    assert list(db.scan("t", start="z")) == []
    assert all(v == k.encode() for k, v in db.scan("t"))


def test_snapshot_sees_one_state(db):
    db.create_table("t")
    with db.batch() as b:
        b.put("t", "a", b"1")
    with db.snapshot() as s:
        with db.batch() as b:
            b.put("t", "a", b"2")
            b.put("t", "b", b"2")
        assert s.get("t", "a") == b"1" and s.get("t", "b") is None
        assert list(s.scan("t")) == [("a", b"1")]
        assert db.get("t", "a") == b"2"
    assert s.closed


def test_scan_is_a_snapshot(db):
    db.create_table("t")
    with db.batch() as b:
        for i in range(10):
            b.put("t", "k%d" % i, b"old")
    it = db.scan("t")
    first = next(it)
    with db.batch() as b:
        for i in range(10):
            b.put("t", "k%d" % i, b"new")
    rest = list(it)
    assert first == ("k0", b"old") and all(v == b"old" for _, v in rest)
    assert len(rest) == 9


def test_batch_get_reads_its_own_writes(db):
    db.create_table("t")
    with db.batch() as b:
        b.put("t", "a", b"1")
        assert b.get("t", "a") == b"1"
        b.delete("t", "a")
        assert b.get("t", "a", "gone") == "gone"
        assert db.get("t", "a") is None  # not committed yet


def test_empty_batch_commits_nothing(db):
    db.create_table("t")
    last = db.last_batch
    with db.batch("nothing") as b:
        pass
    assert b.result.success and b.result.batch_id == 0
    assert db.last_batch == last


def test_log_and_batch_info(db):
    db.create_table("t")
    for i in range(3):
        with db.batch("batch %d" % i) as b:
            b.put("t", "k%d" % i, b"v" * (i + 1))
    log = db.log()
    assert [i.label for i in log] == ["create table t", "batch 0",
                                      "batch 1", "batch 2"]
    assert [i.id for i in db.log(since=2)] == [3, 4]
    info = db.batch_info(4)
    assert info.records == 1 and info.segments >= 1 and len(info.hash) == 64
    assert info.undoes == 0 and info.rolled_back_by == 0 and info.standing
    assert isinstance(info.time, datetime.datetime)
    assert abs((datetime.datetime.now(datetime.timezone.utc) -
                info.time).total_seconds()) < 600
    d = info.to_dict()
    assert d["id"] == 4 and d["label"] == "batch 2"
    with pytest.raises(logbook.NotFoundError):
        db.batch_info(99)
    with pytest.raises(logbook.NotFoundError):
        db.changes(99)


def test_alter_table(db):
    db.create_table("t", {"fields": [{"name": "n", "type": "int"}]})
    with db.batch() as b:
        b.put("t", "a", {"n": 5})
    with pytest.raises(logbook.ValidationError) as ei:
        db.alter_table("t", {"fields": [{"name": "n", "type": "int",
                                         "max": 3}]})
    assert ei.value.issues[0].key == "a"
    r = db.alter_table("t", {"fields": [{"name": "n", "type": "int",
                                         "max": 10}]})
    assert r.success and r.batch_id == db.last_batch
    assert db.tables()[0].schema["fields"][0]["max"] == 10
    db.rollback(r.batch_id)
    assert "max" not in db.tables()[0].schema["fields"][0]


def test_verify_report(db):
    db.create_table("t")
    rep = db.verify(replay=True)
    assert rep.ok and rep.chain_ok and rep.replay_ok and rep.batches == 1
    assert rep.to_dict()["detail"] == ""


def test_a_waiting_batch_releases_the_gil(db):
    """Thread A holds the open batch; the main thread's db.batch() waits
    inside the library for it. Were the GIL held during that wait, A could
    never commit (a deadlock the join's timeout would catch)."""
    db.create_table("t")
    began = threading.Event()

    def a():
        with db.batch("A") as b:
            b.put("t", "a", b"1")
            began.set()
            for i in range(2000):  # Python work while the main thread waits
                b.put("t", "x%d" % i, b"v")

    t = threading.Thread(target=a, daemon=True)
    t.start()
    assert began.wait(60)
    with db.batch("main") as b:  # waits for A in lb_batch_begin
        assert db.get("t", "x1999") == b"v"  # A committed meanwhile
        b.put("t", "m", b"2")
    t.join(60)
    assert not t.is_alive()
    assert [i.label for i in db.log(since=1)] == ["A", "main"]


def test_threads_share_one_database(db, seed):
    """Readers and scanners in threads while the main thread commits: each
    reader sees committed values only (a key's value names its batch, and
    batches only grow)."""
    db.create_table("t", {"fields": [{"name": "batch", "type": "int"}]})
    keys = ["k%d" % i for i in range(200)]
    with db.batch() as b:
        for k in keys:
            b.put("t", k, {"batch": 0})
    stop = threading.Event()
    errors = []

    def reader(n):
        rng = random.Random(seed + n)
        seen = {}
        try:
            while not stop.is_set():
                k = rng.choice(keys)
                v = db.get("t", k)["batch"]
                assert v >= seen.get(k, 0)
                seen[k] = v
                if rng.random() < 0.01:
                    vals = [v["batch"] for _, v in db.scan("t")]
                    assert len(vals) == len(keys)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in ts:
        t.start()
    for i in range(1, (200 if LONG else 30) + 1):
        with db.batch("b%d" % i) as b:
            for k in keys[::7]:
                b.put("t", k, {"batch": i})
    db.verify()
    stop.set()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert db.get("t", "k0") == {"batch": 200 if LONG else 30}
