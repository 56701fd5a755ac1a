# SPDX-License-Identifier: MIT
"""Performance is measured by bench/python_bench.py (docs/PYTHON.md,
"Speed"), not by timed tests. These tests check that the benchmark runs
and measures what it says: its Python W1 is byte for byte logbook-bench's
(it exits non-zero otherwise), and it reports each figure and ratio."""

import json
import os
import subprocess
import sys

from conftest import ROOT

BENCH = os.path.join(os.environ.get("LB_BUILD", os.path.join(ROOT, "build")),
                     "logbook-bench")


def test_benchmark_script_runs_on_the_same_records(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "python_bench.py"),
         "--records", "3000", "--runs", "1", "--bench", BENCH,
         "--json", str(tmp_path / "r.json")],
        env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for row in ("commit, opaque table", "commit, hearing schema",
                "point reads", "goals: "):
        assert row in out.stdout
    r = json.load(open(tmp_path / "r.json"))
    assert r["records"] == 3000
    for k in ("opaque", "schema", "get"):
        assert r["python_median"][k] > 0
    for k in ("commit_opaque", "commit_schema", "get"):
        assert r["c"][k] > 0


def test_w1_generator_is_deterministic():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import python_bench
    a, na = python_bench.workload(2500, 1000)
    b, nb = python_bench.workload(2500, 1000)
    assert a == b and na == nb
    assert [len(x) for x in a] == [1000, 1000, 500]
    assert sum(u for u, _, _, _ in a[0]) == 0  # the first batch inserts
    assert sum(u for u, _, _, _ in a[1]) == 200  # 20% updates after
    for _, k, d, raw in a[1]:
        assert len(k) == 16 and len(d) == 6 and 200 <= len(raw) <= 250
