# SPDX-License-Identifier: MIT
"""Checkpoint and undo tracking: every batch's log holds what undoes it
(each key's before-image) for updates, additions, witnesses and
documents, several at once; checkpoints are consistent copies."""

import logbook
from conftest import document, hearing, witness


def commit(db, label, ops):
    with db.batch(label) as b:
        for op, table, key, value in ops:
            assert getattr(b, op)(table, key, value) is True
    return b.result


def test_addition_is_tracked_with_no_before_image(feed):
    r = commit(feed, "add", [("insert", "hearings", "HRG-1-1",
                              hearing("HRG-1-1"))])
    [c] = feed.changes(r.batch_id)
    assert (c.op, c.table, c.key) == ("put", "hearings", "HRG-1-1")
    assert c.before is None and not c.had_before
    assert c.after == hearing("HRG-1-1")
    assert c.batch == r.batch_id


def test_update_is_tracked_with_the_old_value(feed):
    commit(feed, "add", [("insert", "hearings", "HRG-1-1",
                          hearing("HRG-1-1"))])
    new = hearing("HRG-1-1", title="Renamed")
    r = commit(feed, "upd", [("update", "hearings", "HRG-1-1", new)])
    [c] = feed.changes(r.batch_id)
    assert c.before == hearing("HRG-1-1") and c.after == new


def test_witnesses_and_documents_are_tracked(feed):
    r = commit(feed, "all", [
        ("insert", "hearings", "HRG-1-1", hearing("HRG-1-1")),
        ("insert", "witnesses", "W-1", witness("W-1", "HRG-1-1")),
        ("insert", "documents", "D-1", document("D-1", "HRG-1-1"))])
    changes = feed.changes(r.batch_id)
    assert [(c.table, c.key) for c in changes] == [
        ("hearings", "HRG-1-1"), ("witnesses", "W-1"), ("documents", "D-1")]
    assert changes[1].after == witness("W-1", "HRG-1-1")
    assert changes[2].after == document("D-1", "HRG-1-1")


def test_several_changes_at_once_in_log_order(feed):
    commit(feed, "day 1", [
        ("insert", "hearings", "HRG-1-1", hearing("HRG-1-1")),
        ("insert", "hearings", "HRG-1-2", hearing("HRG-1-2")),
        ("insert", "witnesses", "W-1", witness("W-1", "HRG-1-1"))])
    r = commit(feed, "day 2", [
        ("update", "hearings", "HRG-1-1", hearing("HRG-1-1", congress=119)),
        ("delete", "witnesses", "W-1", None),
        ("insert", "documents", "D-1", document("D-1", "HRG-1-2")),
        ("put", "hearings", "HRG-1-3", hearing("HRG-1-3")),
        ("update", "hearings", "HRG-1-1", hearing("HRG-1-1", congress=120))])
    assert r.records == 5
    ch = feed.changes(r.batch_id)
    assert [c.op for c in ch] == ["put", "delete", "put", "put", "put"]
    assert ch[0].before["congress"] == 118 and ch[0].after["congress"] == 119
    assert ch[1].before == witness("W-1", "HRG-1-1") and ch[1].after is None
    assert ch[1].had_before and not ch[1].has_after
    # the same key twice: each record holds its own before-image
    assert ch[4].before["congress"] == 119 and ch[4].after["congress"] == 120
    hist = feed.history("hearings", "HRG-1-1")
    # newest batch first, the records of one batch in log order
    assert [h.batch for h in hist] == [r.batch_id, r.batch_id,
                                       r.batch_id - 1]
    assert [h.after["congress"] for h in hist] == [119, 120, 118]
    assert feed.batch_info(r.batch_id).records == 5


def test_table_creation_is_tracked(db):
    b = db.create_table("notes")
    [c] = db.changes(b)
    assert c.op == "table" and c.table == "notes"
    assert db.batch_info(b).label == "create table notes"


def test_checkpoint_is_a_consistent_copy(feed, tmp_path):
    commit(feed, "day 1", [("insert", "hearings", "HRG-1-1",
                            hearing("HRG-1-1"))])
    at = feed.checkpoint(str(tmp_path / "ck"))
    assert at == feed.last_batch
    commit(feed, "day 2", [("insert", "hearings", "HRG-1-2",
                            hearing("HRG-1-2"))])
    [ck] = feed.checkpoints()
    assert ck.batch == at and ck.path.endswith("ck")
    with logbook.open(str(tmp_path / "ck"), create=False) as copy:
        assert copy.last_batch == at
        assert copy.get("hearings", "HRG-1-1") == hearing("HRG-1-1")
        assert copy.get("hearings", "HRG-1-2") is None
    r = feed.replay(str(tmp_path / "re"), from_checkpoint=str(tmp_path /
                                                               "ck"))
    assert r.batch_id == feed.last_batch
    with logbook.open(str(tmp_path / "re"), create=False) as re:
        assert re.get("hearings", "HRG-1-2") == hearing("HRG-1-2")
        assert re.verify().ok


def test_checkpoint_into_a_non_empty_directory_is_refused(feed, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    try:
        feed.checkpoint(str(tmp_path / "full"))
    except logbook.ExistsError as e:
        assert e.code == logbook.ExistsError.code and e.errmsg
    else:
        raise AssertionError("checkpoint into a non-empty directory")
