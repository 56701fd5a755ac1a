# SPDX-License-Identifier: MIT
"""Error scenarios: bad input, a closed database, a read-only one, a
database that is not there or open twice, and disk errors, each surfacing
as the exception of its LB_E* code, never a crash or lost data."""

import json
import os
import subprocess
import sys
import threading

import pytest

import logbook
from conftest import ROOT, hearing


def test_one_exception_class_per_code():
    classes = [logbook.NotFoundError, logbook.InvalidError,
               logbook.ValidationError, logbook.ConflictError,
               logbook.CorruptError, logbook.PrunedError, logbook.FullError,
               logbook.BusyError, logbook.NoMemoryError, logbook.IoError,
               logbook.VersionError, logbook.TooBigError,
               logbook.ExistsError]
    assert sorted(c.code for c in classes) == list(range(-13, 0))
    for c in classes:
        assert issubclass(c, logbook.Error)
        e = c("detail")
        assert e.code == c.code and e.errmsg == "detail"
        assert "detail" in str(e) and e.issues == []


def test_bad_keys(db):
    db.create_table("t")
    with db.batch() as b:
        with pytest.raises(TypeError):
            b.put("t", 42, b"v")
        with pytest.raises(TypeError):
            b.put("t", None, b"v")
        with pytest.raises(logbook.InvalidError) as ei:
            b.put("t", "", b"v")
        assert ei.value.code == -2 and "key" in ei.value.errmsg
        with pytest.raises(logbook.TooBigError):
            b.put("t", "k" * (logbook.KEY_MAX + 1), b"v")
        assert b.put("t", b"\xff\x00bin", b"v")
        assert b.put("t", "k" * logbook.KEY_MAX, b"v")
    assert db.get("t", b"\xff\x00bin") == b"v"
    assert [k for k, _ in db.scan("t")] == ["k" * logbook.KEY_MAX,
                                            b"\xff\x00bin"]


def test_bad_values(feed):
    feed.create_table("blobs")
    with feed.batch() as b:
        with pytest.raises(TypeError):
            b.put("blobs", "k", {"a": 1})      # opaque: bytes only
        with pytest.raises(TypeError):
            b.put("hearings", "k", {"a": object()})
        with pytest.raises(TypeError):
            b.put("hearings", "k", {"a": 2 ** 70})
    assert b.result.batch_id == 0  # nothing was written


def test_bad_names_and_labels(db):
    with pytest.raises(logbook.InvalidError):
        db.create_table("no spaces")
    with pytest.raises(logbook.TooBigError):
        db.create_table("t" * 65)
    with pytest.raises(TypeError):
        db.create_table(7)
    with pytest.raises(logbook.TooBigError):
        db.batch("l" * (logbook.LABEL_MAX + 1))
    db.create_table("t")
    with pytest.raises(logbook.ExistsError):
        db.create_table("t")
    with pytest.raises(logbook.NotFoundError):
        with db.batch() as b:
            b.put("nope", "k", b"v")
    assert db.get("nope", "k", "dflt") == "dflt"
    with pytest.raises(logbook.NotFoundError):
        list(db.scan("nope"))


@pytest.mark.parametrize("schema", [
    {"fields": [{"name": "a", "type": "decimal"}]},
    {"fields": [{"name": "a", "requried": True}]},
    {"fields": [{"name": "a", "type": "str", "pattern": "(a"}]},
    {"fields": [{"name": "a", "type": "float", "enum": [1]}]},
    {"fields": [{"name": "a", "type": "int", "min": 5, "max": 1}]},
    {"fields": [{"name": "a", "ref": "nowhere"}]},
    {"fields": [{"name": "a"}, {"name": "a"}]},
    {"key_field": "b", "fields": [{"name": "a"}]},
    {"fields": "a"},
    {"colsed": True, "fields": []},
])
def test_bad_schemas(db, schema):
    last = db.last_batch
    with pytest.raises(logbook.InvalidError):
        db.create_table("t", schema)
    assert db.last_batch == last and db.tables() == []


def test_schema_round_trip(db):
    s = {"closed": True, "key_field": "id", "fields": [
        {"name": "id", "type": "str", "required": True, "max_len": 32,
         "pattern": "[A-Z]+-[0-9]+"},
        {"name": "n", "type": "int", "nullable": True, "enum": [1, 2, 3]},
        {"name": "d", "type": "str", "format": "date-time"},
        {"name": "x", "type": "float", "min": 0.5, "max": 10}]}
    db.create_table("t", s)
    assert db.tables()[0].schema == s


def test_closed_database(db, tmp_path):
    db.create_table("t")
    db.close()
    assert db.closed
    db.close()  # twice is fine
    for call in (lambda: db.get("t", "k"), lambda: db.batch(),
                 lambda: db.tables(), lambda: db.last_batch,
                 lambda: db.rollback(1), lambda: db.verify(),
                 lambda: db.snapshot(), lambda: list(db.scan("t")),
                 lambda: db.checkpoint(str(tmp_path / "c")),
                 lambda: db.create_table("u")):
        with pytest.raises(logbook.InvalidError) as ei:
            call()
        assert "closed" in str(ei.value)


def test_close_with_an_open_batch_is_refused(db):
    db.create_table("t")
    b = db.batch()
    with pytest.raises(logbook.InvalidError):
        db.close()
    b.abort()
    db.close()


def test_close_closes_snapshots(db):
    db.create_table("t")
    s = db.snapshot()
    it = db.scan("t")
    db.close()
    assert s.closed
    with pytest.raises(logbook.InvalidError):
        s.get("t", "k")
    with pytest.raises(logbook.InvalidError):
        next(it)  # a scan not begun: it begins on a closed database


def test_ended_batch_and_foreign_thread(db):
    db.create_table("t")
    b = db.batch()
    errors = []

    def other():
        try:
            b.put("t", "k", b"v")
        except logbook.InvalidError as e:
            errors.append(e)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and "thread" in str(errors[0])
    with pytest.raises(logbook.InvalidError):
        db.rollback(1)  # this thread holds the batch: would wait forever
    b.commit()
    with pytest.raises(logbook.InvalidError):
        b.put("t", "k", b"v")
    with pytest.raises(logbook.InvalidError):
        b.commit()
    b.abort()  # does nothing


def test_exception_in_the_with_block_aborts(db):
    db.create_table("t")
    last = db.last_batch
    with pytest.raises(KeyError):
        with db.batch() as b:
            b.put("t", "k", b"v")
            raise KeyError("boom")
    assert not b.open and not b.result.success
    assert db.last_batch == last and db.get("t", "k") is None


def test_read_only(dbdir):
    with logbook.open(dbdir) as db:
        db.create_table("hearings")
        with db.batch() as b:
            b.put("hearings", "k", b"v")
    with logbook.open(dbdir, readonly=True) as ro:
        assert ro.get("hearings", "k") == b"v"
        assert ro.verify().ok
        with pytest.raises(logbook.InvalidError):
            ro.batch()
        with pytest.raises(logbook.InvalidError):
            ro.create_table("x")
        with pytest.raises(logbook.InvalidError):
            ro.rollback(2)
        with pytest.raises(logbook.InvalidError):
            ro.prune(1)


def test_missing_database_and_open_twice(tmp_path):
    with pytest.raises(logbook.NotFoundError):
        logbook.open(str(tmp_path / "none"), create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(logbook.Error) as ei:
        logbook.open(str(tmp_path / "file"))
    assert ei.value.code in (logbook.InvalidError.code,
                             logbook.IoError.code)
    with logbook.open(str(tmp_path / "db")):
        with pytest.raises(logbook.BusyError):
            logbook.open(str(tmp_path / "db"))


def test_not_a_database(tmp_path):
    d = tmp_path / "junk"
    d.mkdir()
    (d / "data.mdb").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(logbook.Error) as ei:
        logbook.open(str(d))
    assert ei.value.code in (logbook.CorruptError.code,
                             logbook.InvalidError.code)


def test_disk_full_surfaces_as_full_error(tmp_path):
    """A batch past the file size limit (a real write error of the
    operating system, in a child process) raises FullError; nothing of it
    is written, the committed data stays, and the handle goes on."""
    child = r"""
import json, os, resource, signal, sys
import logbook
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
out = {}
db = logbook.open(sys.argv[1], sync=True)
db.create_table("blobs")
with db.batch("small") as b:
    b.put("blobs", "a", b"x" * 1000)
size = os.path.getsize(os.path.join(sys.argv[1], "data.mdb"))
resource.setrlimit(resource.RLIMIT_FSIZE,
                   (size + 65536, resource.RLIM_INFINITY))
try:
    with db.batch("big") as b:
        for i in range(200):
            b.put("blobs", "k%d" % i, os.urandom(50000))
    out["big"] = "committed"
except logbook.Error as e:
    out["big"] = type(e).__name__
    out["batch"] = [b.open, b.result.success]
resource.setrlimit(resource.RLIMIT_FSIZE,
                   (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
out["a"] = db.get("blobs", "a") == b"x" * 1000
out["k0"] = db.get("blobs", "k0")
with db.batch("after") as b:
    b.put("blobs", "b", b"y")
out["after"] = b.result.batch_id
out["verify"] = db.verify(replay=True).ok
db.close()
print(json.dumps(out))
"""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    p = subprocess.run([sys.executable, "-c", child, str(tmp_path / "db")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["big"] == "FullError"
    assert out["batch"] == [False, False]  # aborted, not committed
    assert out["a"] is True and out["k0"] is None
    assert out["after"] == 3 and out["verify"] is True


def test_validation_error_carries_the_result(feed):
    with pytest.raises(logbook.ValidationError) as ei:
        with feed.batch("x") as b:
            b.insert("hearings", "HRG-1-1", hearing("HRG-1-1", congress=1))
    assert ei.value.result.label == "x"
    assert ei.value.result.to_dict()["issues"][0]["field"] == "congress"


def test_random_bad_input_never_crashes_or_loses_data(feed, seed):
    """Random arguments of every type into every write and read: each call
    succeeds or raises TypeError, ValueError or a logbook.Error; committed
    data stays, and the log verifies."""
    import random
    rng = random.Random(seed)
    with feed.batch() as b:
        b.insert("hearings", "HRG-1-1", hearing("HRG-1-1"))
    feed.create_table("blobs")
    junk = [None, 0, -1, 2 ** 64, 1.5, float("nan"), "", "x" * 600,
            "\x00", "\udcff", b"", b"\x00" * 3, b"k" * 512, [], {}, (1,),
            object(), "hearings", "blobs", "HRG-1-1", {"id": 1},
            hearing("HRG-1-2"), bytearray(b"v"), memoryview(b"m"),
            {"x": object()}, "no such table", True]
    for _ in range(3000 if os.environ.get("LB_PY_LONG") else 600):
        try:
            with feed.batch(rng.choice(["", "l", None, "l" * 300])) as b:
                for _ in range(rng.randrange(1, 4)):
                    op = rng.choice(["put", "insert", "update", "delete",
                                     "get"])
                    getattr(b, op)(rng.choice(junk), rng.choice(junk),
                                   rng.choice(junk))
                b.abort()
        except (TypeError, ValueError, logbook.Error):
            pass
        for call in (feed.get, feed.history):
            try:
                call(rng.choice(junk), rng.choice(junk))
            except (TypeError, ValueError, logbook.Error):
                pass
    assert feed.get("hearings", "HRG-1-1") == hearing("HRG-1-1")
    assert feed.verify(replay=True).ok
