#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""python_bench.py: the Python package against the C engine, in one run.

Generates workload W1 (bench/README.md) in Python, record for record the
one logbook-bench generates (the same splitmix64 stream, keys and msgpack
bytes: the key and value byte totals are checked against logbook-bench's),
then, in the same run:

  - logbook-bench --peers none --phases commit,get --schema: the C engine's
    commit rate on an opaque table and on the hearing schema, and its
    lb_get rate;
  - Python, opaque table: Batch.insert/update with the values as bytes;
  - Python, hearing schema: the values as dicts of six fields, packed by
    the package (what a Python user writes);
  - Python, db.get of the keys logbook-bench reads, in its order, from the
    schema table (each value decoded to a dict) and from the opaque one
    (bytes, as logbook-bench's lb_get reads them).

Each phase runs --runs times on a fresh database (no fsync, as
logbook-bench); medians are reported, with the ratios Python / C.

    PYTHONPATH=python bench/python_bench.py [--records N] [--runs R]
        [--bench build/logbook-bench] [--json FILE]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

import logbook

M64 = (1 << 64) - 1
WORDS = (
    "oversight of the federal budget review energy security health care "
    "access rural communities water resources defense programs and policy "
    "for veterans benefits nomination hearing on trade agreement small "
    "business innovation cyber threats to critical infrastructure education "
    "funding fiscal year authorization housing markets transport safety "
    "climate research drug pricing tax reform").split()
COMMITTEES = (
    "Committee on Appropriations", "Committee on Armed Services",
    "Committee on Energy and Commerce", "Committee on Finance",
    "Committee on the Judiciary", "Committee on Foreign Affairs",
    "Committee on Homeland Security", "Committee on Veterans' Affairs",
    "Committee on Ways and Means", "Committee on Agriculture",
    "Committee on Small Business",
    "Committee on Oversight and Accountability",
    "Committee on Health, Education, Labor, and Pensions",
    "Committee on Banking, Housing, and Urban Affairs",
    "Committee on Science, Space, and Technology",
    "Committee on Natural Resources")
CHAMBERS = ("House", "Senate", "Joint")

# bench/sys_logbook.c's hearing schema, as a schema dict.
HEARING_SCHEMA = {"closed": True, "fields": [
    {"name": "title", "type": "str", "required": True},
    {"name": "date", "type": "str", "required": True, "max_len": 10},
    {"name": "committee", "type": "str", "required": True},
    {"name": "chamber", "type": "str", "required": True, "max_len": 16},
    {"name": "congress", "type": "int", "required": True},
    {"name": "url", "type": "str", "required": True}]}


class Rng:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def hearing(title, date, committee, chamber, congress, url):
    return {"title": title, "date": date, "committee": committee,
            "chamber": chamber, "congress": congress, "url": url}


def make_value(rng, target):
    r = rng.next()
    congress = 104 + r % 15
    committee = COMMITTEES[(r >> 8) % len(COMMITTEES)]
    chamber = CHAMBERS[(r >> 16) % 3]
    date = "%04d-%02d-%02d" % (1995 + (r >> 20) % 30, 1 + (r >> 28) % 12,
                               1 + (r >> 32) % 28)
    url = "https://www.congress.gov/event/%dth-congress/%s-event/%06d" % (
        congress, "senate" if (r >> 16) % 3 == 1 else "house",
        (r >> 36) % 1000000)
    rest = len(msgpack.packb(hearing("", date, committee, chamber, congress,
                                     url))) - 1
    room = target - rest if target > rest + 2 else 2
    tlen = room - 2
    if tlen < 32:
        tlen = room - 1
    elif tlen >= 256:
        tlen = room - 3
    title = []
    n = 0
    while n < tlen:
        wd = WORDS[rng.next() % len(WORDS)]
        if n:
            title.append(" ")
            n += 1
        take = wd[:tlen - n]
        title.append(take)
        n += len(take)
    t = "".join(title)[:tlen]
    if tlen and t[-1] == " ":
        t = t[:-1] + "."
    return hearing(t, date, committee, chamber, congress, url)


def workload(records, batch_size, update_pct=20, value_size=225, seed=42):
    """W1's batches: lists of (is_update, key, dict, packed bytes)."""
    rng = Rng(seed)
    inserted = 0
    batches = []
    done = 0
    while done < records:
        n = min(batch_size, records - done)
        committed = inserted
        batch = []
        for j in range(n):
            upd = committed > 0 and \
                (j + 1) * update_pct // 100 > j * update_pct // 100
            r0 = rng.next()
            target = value_size + r0 % 51 - 25
            if upd:
                kidx = rng.next() % committed
            else:
                kidx = inserted
                inserted += 1
            v = make_value(rng, target)
            batch.append((upd, "h%015d" % kidx, v, msgpack.packb(v)))
        batches.append(batch)
        done += n
    return batches, inserted


def reads(nreads, keys, seed=42):
    """The keys logbook-bench reads, in its order (their own splitmix64
    stream, bench/workload.c)."""
    rng = Rng(seed ^ 0x5EEDF00DCAFEBEEF)
    return ["h%015d" % (rng.next() % keys) for _ in range(nreads)]


def commit_run(batches, dirpath, schema, as_dicts):
    with logbook.open(dirpath, sync=False) as db:
        db.create_table("hearings", schema)
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in batches:
            with db.batch() as b:
                ins, upd = b.insert, b.update
                for is_upd, key, d, raw in batch:
                    v = d if as_dicts else raw
                    (upd if is_upd else ins)("hearings", key, v)
        return time.perf_counter() - t0, time.process_time() - c0


def get_run(dirpath, keys):
    with logbook.open(dirpath, sync=False) as db:
        get = db.get
        t0, c0 = time.perf_counter(), time.process_time()
        for k in keys:
            if get("hearings", k) is None:
                raise SystemExit("get: %s missing" % k)
        return time.perf_counter() - t0, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bench", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build",
        "logbook-bench"))
    ap.add_argument("--json", help="write the figures as JSON to FILE")
    a = ap.parse_args()

    t0 = time.perf_counter()
    batches, nkeys = workload(a.records, a.batch_size)
    gen_s = time.perf_counter() - t0
    user_bytes = sum(len(k) + len(raw) for b in batches for _, k, _, raw in b)

    scratch = tempfile.mkdtemp(prefix="logbook-pybench.")
    try:
        cjson = os.path.join(scratch, "c.json")
        subprocess.run([a.bench, "--records", str(a.records), "--batch-size",
                        str(a.batch_size), "--peers", "none", "--phases",
                        "commit,get", "--schema", "--runs", str(a.runs),
                        "--quiet", "--dir", scratch, "--json=" + cjson],
                       check=True, stdout=subprocess.DEVNULL)
        c = json.load(open(cjson))
        if c["workload"]["user_bytes"] != user_bytes or \
                c["workload"]["keys"] != nkeys:
            sys.exit("python_bench: the Python W1 differs from "
                     "logbook-bench's (%d bytes/%d keys, not %d/%d)" %
                     (user_bytes, nkeys, c["workload"]["user_bytes"],
                      c["workload"]["keys"]))
        c_opaque = c["systems"]["logbook"]["phases"]["commit"]["per_s"]
        c_schema = c["systems"]["logbook+schema"]["phases"]["commit"]["per_s"]
        c_get = c["systems"]["logbook"]["phases"]["get"]["per_s"]
        c_opaque_cpu = c["systems"]["logbook"]["commit_per_cpu_s"]
        c_schema_cpu = c["systems"]["logbook+schema"]["commit_per_cpu_s"]
        nreads = c["systems"]["logbook"]["phases"]["get"]["count"]

        py = {"opaque": [], "schema": [], "get": [], "get_bytes": [],
              "opaque_cpu": [], "schema_cpu": [], "get_cpu": [],
              "get_bytes_cpu": []}
        keys = reads(nreads, nkeys)
        for run in range(a.runs):
            for name, schema, dicts in (("opaque", None, False),
                                        ("schema", HEARING_SCHEMA, True)):
                d = os.path.join(scratch, "py-%s-%d" % (name, run))
                wall, cpu = commit_run(batches, d, schema, dicts)
                py[name].append(a.records / wall)
                py[name + "_cpu"].append(a.records / cpu)
                g = "get" if name == "schema" else "get_bytes"
                wall, cpu = get_run(d, keys)
                py[g].append(nreads / wall)
                py[g + "_cpu"].append(nreads / cpu)
                shutil.rmtree(d)
        med = {k: statistics.median(v) for k, v in py.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load = os.getloadavg()[0]
    rows = [
        ("commit, opaque table (bytes), records/s", med["opaque"], c_opaque),
        ("commit, hearing schema (dicts), records/s", med["schema"],
         c_schema),
        ("commit, opaque, records per CPU second", med["opaque_cpu"],
         c_opaque_cpu),
        ("commit, schema, records per CPU second", med["schema_cpu"],
         c_schema_cpu),
        ("point reads, dicts (schema), records/s", med["get"], c_get),
        ("point reads, bytes (opaque), records/s", med["get_bytes"], c_get),
    ]
    print("W1: %d records, batches of %d, no fsync; medians of %d runs; "
          "load average %.2f; Python workload generated in %.1f s" %
          (a.records, a.batch_size, a.runs, load, gen_s))
    print("%-44s %12s %12s %7s" % ("phase", "Python", "C", "ratio"))
    for name, p, cc in rows:
        print("%-44s %12.0f %12.0f %6.2fx" % (name, p, cc, p / cc))
    print("%-44s %12.0f" % ("point reads, dicts, per CPU second",
                             med["get_cpu"]))
    print("%-44s %12.0f" % ("point reads, bytes, per CPU second",
                             med["get_bytes_cpu"]))
    print("(records per CPU second: the process's CPU time, all threads, "
          "as logbook-bench counts it; steadier than wall time on a loaded "
          "machine)")
    print("goals: commit >= 0.5x C: %s; reads >= 200k/s: %s" % (
        "PASS" if med["schema"] >= 0.5 * c_schema and
        med["opaque"] >= 0.5 * c_opaque else "FAIL",
        "PASS" if med["get"] >= 200000 else "FAIL"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"records": a.records, "batch_size": a.batch_size,
                       "runs": a.runs, "load_average": load,
                       "python": py, "python_median": med,
                       "c": {"commit_opaque": c_opaque,
                             "commit_schema": c_schema, "get": c_get,
                             "commit_opaque_cpu": c_opaque_cpu,
                             "commit_schema_cpu": c_schema_cpu}},
                      f, indent=1)


if __name__ == "__main__":
    main()
