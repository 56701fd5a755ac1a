#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""daily_updater.py: the daily update logbook grew from, in Python.

Each day a feed of hearings, their witnesses and their documents arrives.
The updater divides the day's records into batches, validates and commits
each one (a bad batch is refused whole, with every issue, and the others
go on), reports a BatchResult per batch (``to_dict()`` for logging), and
can roll back one batch (failed elsewhere, or found bad later) without
touching the others. A feature flag turns batch processing off: the whole
day is then one all-or-nothing batch.

    PYTHONPATH=python examples/daily_updater.py --db DIR [--days 2]
        [--hearings 200] [--batch-size 250] [--bad-rate 0.01] [--seed 1]
        [--no-batch-processing] [--json]

The flag may also be set with LOGBOOK_BATCH_PROCESSING=0. The program
exits 0 when every step behaved as described, 1 otherwise.
"""

import argparse
import json
import os
import random
import sys

import logbook

#: The feed's schema: one schema dict per table, in creation order.
SCHEMA = {
    "hearings": {"closed": True, "key_field": "id", "fields": [
        {"name": "id", "type": "str", "required": True,
         "pattern": "HRG-[0-9]+-[0-9]+"},
        {"name": "title", "type": "str", "required": True, "max_len": 200},
        {"name": "date", "type": "str", "required": True, "format": "date"},
        {"name": "committee", "type": "str", "required": True,
         "max_len": 100},
        {"name": "chamber", "type": "str", "required": True,
         "enum": ["House", "Senate", "Joint"]},
        {"name": "congress", "type": "int", "required": True, "min": 80,
         "max": 200}]},
    "witnesses": {"closed": True, "key_field": "id", "fields": [
        {"name": "id", "type": "str", "required": True},
        {"name": "hearing_id", "type": "str", "required": True,
         "ref": "hearings"},
        {"name": "name", "type": "str", "required": True, "max_len": 100},
        {"name": "organization", "type": "str", "nullable": True}]},
    "documents": {"closed": True, "key_field": "id", "fields": [
        {"name": "id", "type": "str", "required": True},
        {"name": "hearing_id", "type": "str", "required": True,
         "ref": "hearings"},
        {"name": "type", "type": "str", "required": True,
         "enum": ["transcript", "testimony", "report", "letter"]},
        {"name": "url", "type": "str", "required": True, "max_len": 500}]},
}

COMMITTEES = ["Committee on Appropriations", "Committee on Finance",
              "Committee on the Judiciary", "Committee on Armed Services",
              "Committee on Energy and Commerce", "Committee on Agriculture"]
TOPICS = ["Oversight of", "Review of", "Reauthorizing", "The Future of",
          "Protecting", "Modernizing"]
SUBJECTS = ["Rural Broadband", "Veterans' Health Care", "Water Resources",
            "the Federal Budget", "Critical Infrastructure", "Drug Pricing"]
NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson",
         "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen"]
ORGS = ["Congressional Budget Office", "Government Accountability Office",
        None, "National Academy of Sciences", "Department of Energy"]
DOC_TYPES = ["transcript", "testimony", "report", "letter"]


def hearing_key(day, n):
    return "HRG-%03d-%06d" % (day, n)


def generate_day(day, hearings=200, seed=1, bad_rate=0.0, updates=0):
    """The feed of one day: a list of records ``{"op", "table", "key",
    "value"}``, each hearing followed by its witnesses and documents.

    ``updates`` hearings of the previous day are updated (op "update").
    With ``bad_rate`` > 0, that share of the hearings is broken in one of
    three ways a real feed breaks: a date that is no date (format), a
    witness of a hearing that does not exist (foreign key), a hearing sent
    twice (duplicate). The same arguments give the same records."""
    rng = random.Random("%d/%d" % (seed, day))
    out = []
    w = d = 0
    for n in range(hearings):
        key = hearing_key(day, n)
        h = {"id": key,
             "title": "%s %s" % (rng.choice(TOPICS), rng.choice(SUBJECTS)),
             "date": "2024-%02d-%02d" % (1 + day % 12, 1 + rng.randrange(28)),
             "committee": rng.choice(COMMITTEES),
             "chamber": rng.choice(["House", "Senate", "Joint"]),
             "congress": 118}
        bad = bad_rate and rng.random() < bad_rate
        kind = rng.choice(["format", "foreign_key", "duplicate"]) \
            if bad else None
        if kind == "format":
            h["date"] = "2024-02-30"
        out.append({"op": "insert", "table": "hearings", "key": key,
                    "value": h})
        if kind == "duplicate":
            out.append({"op": "insert", "table": "hearings", "key": key,
                        "value": dict(h)})
        for _ in range(rng.randrange(4)):
            wk = "WIT-%03d-%07d" % (day, w)
            w += 1
            ref = hearing_key(day, n) if kind != "foreign_key" \
                else "HRG-999-%06d" % n
            kind = None if kind == "foreign_key" else kind
            out.append({"op": "insert", "table": "witnesses", "key": wk,
                        "value": {"id": wk, "hearing_id": ref,
                                  "name": rng.choice(NAMES),
                                  "organization": rng.choice(ORGS)}})
        if kind == "foreign_key":  # no witness drawn: a document then
            dk = "DOC-%03d-%07d" % (day, d)
            d += 1
            out.append({"op": "insert", "table": "documents", "key": dk,
                        "value": {"id": dk,
                                  "hearing_id": "HRG-999-%06d" % n,
                                  "type": "report",
                                  "url": "https://example.org/%s" % dk}})
        for _ in range(rng.randrange(3)):
            dk = "DOC-%03d-%07d" % (day, d)
            d += 1
            out.append({"op": "insert", "table": "documents", "key": dk,
                        "value": {"id": dk, "hearing_id": key,
                                  "type": rng.choice(DOC_TYPES),
                                  "url": "https://example.org/%s" % dk}})
    for n in range(min(updates, hearings)):
        key = hearing_key(day - 1, n)
        h = {"id": key, "title": "Updated: hearing %d of day %d" %
             (n, day - 1),
             "date": "2024-%02d-%02d" % (1 + (day - 1) % 12, 1 + n % 28),
             "committee": COMMITTEES[n % len(COMMITTEES)],
             "chamber": "Joint", "congress": 118}
        out.append({"op": "update", "table": "hearings", "key": key,
                    "value": h})
    return out


def divide(records, batch_size, group=None):
    """Divide ``records`` into batches of ``batch_size``, in order (the last
    may be smaller); no records give no batches.

    With ``group`` (a function of a record), records of one group are kept
    in one batch: a batch is closed only where the group changes, so it
    may hold more than ``batch_size`` records."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or \
            batch_size < 1:
        raise ValueError("batch_size must be a positive integer")
    if group is None:
        return [records[i:i + batch_size]
                for i in range(0, len(records), batch_size)]
    out, cur, last = [], [], object()
    for r in records:
        g = group(r)
        if len(cur) >= batch_size and g != last:
            out.append(cur)
            cur = []
        cur.append(r)
        last = g
    if cur:
        out.append(cur)
    return out


def hearing_of(record):
    """The hearing a record belongs to (its group for :func:`divide`)."""
    if record["table"] == "hearings":
        return record["key"]
    return (record.get("value") or {}).get("hearing_id")


def batch_processing_default():
    """The feature flag's default: on, unless LOGBOOK_BATCH_PROCESSING is
    0, false, no or off."""
    v = os.environ.get("LOGBOOK_BATCH_PROCESSING", "1").strip().lower()
    return v not in ("0", "false", "no", "off")


class DailyUpdater:
    """The daily update on a logbook database.

    Args:
        db: an open :class:`logbook.Database`.
        batch_size: records per batch.
        batch_processing: the feature flag; False makes each day one
            all-or-nothing batch (None: from LOGBOOK_BATCH_PROCESSING).
        log: a callable given each result's ``to_dict()`` (None: no log).
    """

    def __init__(self, db, batch_size=250, batch_processing=None, log=None):
        self.db = db
        self.batch_size = batch_size
        self.batch_processing = batch_processing_default() \
            if batch_processing is None else bool(batch_processing)
        self.log = log

    def setup(self):
        """Create the feed's tables that do not exist yet."""
        have = {t.name for t in self.db.tables()}
        for name, schema in SCHEMA.items():
            if name not in have:
                self.db.create_table(name, schema)

    def commit(self, label, records):
        """Validate and commit ``records`` as one batch; returns its
        BatchResult (``success`` False with every issue when refused)."""
        try:
            with self.db.batch(label) as b:
                for r in records:
                    op = getattr(b, r.get("op", "insert"))
                    op(r["table"], r["key"], r.get("value"))
            result = b.result
        except logbook.ValidationError as e:
            result = e.result
        if self.log:
            self.log(result.to_dict())
        return result

    def run(self, day_label, records):
        """Process one day: a BatchResult per batch, in order."""
        if self.batch_processing:
            batches = divide(records, self.batch_size, hearing_of)
        else:
            batches = [records] if records else []
        n = len(batches)
        return [self.commit("%s batch %d/%d" % (day_label, i + 1, n), chunk)
                for i, chunk in enumerate(batches)]

    def rollback(self, batch_id, cascade=False):
        """Undo one committed batch on its own; returns the rollback's
        BatchResult. Raises logbook.ConflictError (naming the later
        batches in ``.issues``) when later batches changed its records,
        unless ``cascade``."""
        result = self.db.rollback(batch_id, cascade=cascade)
        if self.log:
            self.log(result.to_dict())
        return result


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="The daily update on logbook, in Python.")
    ap.add_argument("--db", required=True, help="database directory")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--hearings", type=int, default=200,
                    help="hearings per day")
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--bad-rate", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-batch-processing", action="store_true",
                    help="the feature flag off: each day is one batch")
    ap.add_argument("--json", action="store_true",
                    help="print each result's to_dict() as a JSON line")
    a = ap.parse_args(argv)

    def log(d):
        if a.json:
            print(json.dumps(d))

    ok = True
    with logbook.open(a.db, sync=False) as db:
        up = DailyUpdater(db, a.batch_size,
                          False if a.no_batch_processing else None, log)
        up.setup()
        for day in range(1, a.days + 1):
            records = generate_day(day, a.hearings, a.seed, a.bad_rate,
                                   updates=a.hearings // 10 if day > 1
                                   else 0)
            results = up.run("day %d" % day, records)
            good = [r for r in results if r.success]
            bad = [r for r in results if not r.success]
            print("day %d: %d records in %d batch(es): %d committed, "
                  "%d refused (%d issues)" % (
                      day, len(records), len(results), len(good), len(bad),
                      sum(r.issues_total for r in bad)))
            for r in bad:
                i = r.issues[0]
                print("  refused %s: %s %s %s: %s" % (
                    r.label, i.kind, i.table, i.key, i.message))
            # A batch found bad later: undo the last committed one alone.
            if day == 1 and len(good) > 1:
                target = good[-1]
                before = db.last_batch
                rb = up.rollback(target.batch_id)
                print("  rolled back batch %d (%d records) as batch %d" %
                      (target.batch_id, rb.records, rb.batch_id))
                ok &= rb.batch_id == before + 1 and \
                    db.batch_info(target.batch_id).rolled_back_by == \
                    rb.batch_id
                first = good[0]
                ok &= db.batch_info(first.batch_id).standing
        rep = db.verify(replay=True)
        print("verify: %d batches, %d records: %s" % (
            rep.batches, rep.records, "ok" if rep.ok else rep.detail))
        ok &= rep.ok
        print("tables: " + ", ".join("%s %d" % (t.name, t.records)
                                     for t in db.tables()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
