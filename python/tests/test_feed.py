# SPDX-License-Identifier: MIT
"""The log as a feed from Python: reads as of a batch, diffs, waiting for
the next batch, following the changes, and named consumers holding back
prune."""

import random
import threading

import pytest

import logbook
from conftest import LONG


def put(db, table, **kv):
    with db.batch() as b:
        for k, v in kv.items():
            if v is None:
                b.delete(table, k)
            else:
                b.put(table, k, v)
    return b.result.batch_id


@pytest.fixture
def t(db):
    db.create_table("t", {"fields": []})
    return db


def test_get_asof_against_a_model(t, seed):
    rng = random.Random(seed)
    model = {}  # batch -> {key: value}
    cur = {}
    model[t.last_batch] = dict(cur)
    for i in range(60 if LONG else 20):
        ops = {}
        for _ in range(rng.randrange(1, 5)):
            k = "k%d" % rng.randrange(6)
            ops[k] = None if k in cur and rng.random() < 0.3 else \
                {"i": i, "r": rng.random()}
        ops = {k: v for k, v in ops.items() if v is not None or k in cur}
        b = put(t, "t", **ops)
        for k, v in ops.items():
            if v is None:
                cur.pop(k)
            else:
                cur[k] = v
        model[b] = dict(cur)
    for b, state in model.items():
        for k in ("k%d" % i for i in range(6)):
            assert t.get_asof(b, "t", k, "absent") == state.get(k, "absent")
    assert t.get_asof(0, "t", "k0") is None
    with pytest.raises(logbook.NotFoundError):
        t.get_asof(t.last_batch + 1, "t", "k0")


def test_diff(t):
    b1 = put(t, "t", a={"v": 1}, b={"v": 1})
    b2 = put(t, "t", a={"v": 2}, c={"v": 3})
    b3 = put(t, "t", b=None)
    d = t.diff(b1, b3)
    assert [(c.op, c.key, c.before, c.after) for c in d] == [
        ("put", "a", {"v": 1}, {"v": 2}),
        ("delete", "b", {"v": 1}, None),
        ("put", "c", None, {"v": 3})]
    assert [c.key for c in t.diff(b3, b1)] == ["a", "b", "c"]
    assert t.diff(b2, b2) == []
    d0 = t.diff(0, b1)
    assert d0[0].op == "table" and d0[0].key is None
    assert d0[0].after == {"closed": False, "fields": []}


def test_wait_returns_at_once_or_times_out(t):
    last = t.last_batch
    assert t.wait(last - 1, 0) == last
    assert t.wait(last, 0) is None
    assert t.wait(last, 0.05) is None
    with pytest.raises(logbook.InvalidError):
        t.wait(last, -1)


def test_wait_wakes_up_for_another_thread(t):
    last = t.last_batch
    started = threading.Event()

    def writer():
        started.wait(30)
        put(t, "t", x={"v": 1})

    th = threading.Thread(target=writer)
    th.start()
    started.set()
    assert t.wait(last, 60) == last + 1  # the GIL is released meanwhile
    th.join(30)


def test_changes_since_and_follow(t):
    base = t.last_batch
    put(t, "t", a={"v": 1})
    put(t, "t", b={"v": 2}, a=None)
    got = [(c.batch, c.op, c.key) for c in t.changes(since=base)]
    assert got == [(base + 1, "put", "a"), (base + 2, "put", "b"),
                   (base + 2, "delete", "a")]
    n = 12 if LONG else 4

    def writer():
        for i in range(n):
            put(t, "t", **{"w%d" % i: {"i": i}})

    th = threading.Thread(target=writer)
    th.start()
    seen = []
    for c in t.changes(since=base + 2, follow=True, timeout=30):
        seen.append(c.key)
        if len(seen) == n:
            break
    th.join(30)
    assert seen == ["w%d" % i for i in range(n)]
    assert list(t.changes(since=t.last_batch, follow=True, timeout=0.05)) \
        == []
    with pytest.raises(TypeError):
        t.changes()


def test_consumers_hold_back_prune(t, tmp_path):
    for i in range(4):
        put(t, "t", **{"k%d" % i: {"i": i}})
    t.consumer_ack("mirror", 2)
    [c] = t.consumers()
    assert (c.name, c.acked, c.lost) == ("mirror", 2, False)
    assert t.consumer("mirror").acked == 2
    ck = t.checkpoint(str(tmp_path / "ck"))
    with pytest.raises(logbook.BusyError) as ei:
        t.prune(ck)
    assert "mirror" in ei.value.errmsg
    t.prune(3)  # up to what it acknowledged
    t.set_consumer_limits(max_lag=1)
    assert t.consumer_limits() == (1, 0)
    t.prune(ck)  # past the limits: it is marked lost
    lost = t.consumer("mirror")
    assert lost.lost and lost.to_dict()["lost"] is True
    t.consumer_drop("mirror")
    assert t.consumers() == []
    with pytest.raises(logbook.NotFoundError):
        t.consumer("mirror")
    with pytest.raises(logbook.InvalidError):
        t.consumer_ack("bad name", 1)
