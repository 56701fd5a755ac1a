#!/usr/bin/env bash
# A tiny run of logbook-bench: every system commits, rolls back, replays and
# reads 2,000 W1 records, and the bench checks every value it reads back.
# Exits non-zero if any phase fails, the repeated rollback (or the commits
# between its rounds) gave no figure, a goal line lacks its verdict and
# ratio, or the --svg chart is not a well-formed SVG with a bar per system
# and phase. The full runs are
# `make bench` and `make bench-full`.
set -euo pipefail
bench="${LB_BUILD:-build}/logbook-bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
out="$("$bench" --records 2000 --runs 1 --quiet --svg "$tmp/chart.svg" 2>&1)" || {
	printf '%s\n' "$out"
	echo "0 passed, 1 failed"
	exit 1
}
# the repeated rollbacks ran, warm and reopened, with the commits between
# their rounds: each row holds a number for logbook
for row in 'rollback last, repeated' 'commit last again, repeated' \
	'rollback last, reopened' 'commit last again, reopened'; do
	if ! printf '%s\n' "$out" | grep -Eq "^$row +ms +[0-9]"; then
		printf '%s\n' "$out"
		echo "no figure for '$row'"
		echo "0 passed, 1 failed"
		exit 1
	fi
done
# each goal of the issue is judged, with the measured ratio
for goal in 'commit >= 0.65x raw LMDB' 'commit >= 2.5x SQLite\+session' \
	'rollback of last batch >= 1.5x SQLite' 'replay from empty >= 2.5x SQLite' \
	'rollback of last batch <= its commit, fresh open' \
	'rollback of last batch <= its commit, warm' \
	'point reads >= 0.8x raw LMDB'; do
	if ! printf '%s\n' "$out" |
		grep -Eq "^  (PASS|MISS)  $goal.* [0-9]+\.[0-9]+x"; then
		printf '%s\n' "$out"
		echo "goal '$goal' not judged with a ratio"
		echo "0 passed, 1 failed"
		exit 1
	fi
done
# the two rollback-against-commit goals are judged on the pairs of rows
# measured in turns: warm on the repeated ones, fresh open on the reopened
printf '%s\n' "$out" >"$tmp/out.txt"
python3 - "$tmp/out.txt" <<'PY' || {
import re, sys
out = open(sys.argv[1]).read()
def row(name):
    m = re.search(r"^%s +ms +([0-9.]+)" % re.escape(name), out, re.M)
    return float(m.group(1))
for goal, rb, cm in (("fresh open", "rollback last, reopened",
                      "commit last again, reopened"),
                     ("warm", "rollback last, repeated",
                      "commit last again, repeated")):
    m = re.search(r"its commit, %s +[0-9.]+x \(([0-9.]+) vs ([0-9.]+) ms\)"
                  % goal, out)
    assert m, goal
    shown = (float(m.group(1)), float(m.group(2)))
    want = (row(rb), row(cm))
    # the goal shows 2 decimals of the figure the row shows with more
    assert all(abs(a - b) <= 0.0051 for a, b in zip(shown, want)), \
        (goal, shown, want)
PY
	printf '%s\n' "$out"
	echo "a rollback goal is not judged on its pair of rows"
	echo "0 passed, 1 failed"
	exit 1
}
# the --sync goal is not judged on a nosync run
if ! printf '%s\n' "$out" | grep -Eq '^  n/a   --sync commit .*\(a --sync goal\)'; then
	printf '%s\n' "$out"
	echo "the --sync goal was judged on a nosync run"
	echo "0 passed, 1 failed"
	exit 1
fi
# the chart: well-formed SVG, 4 systems x 5 phases of bars, minus the
# phases raw LMDB and the peers lack (raw LMDB has no rollback or replay)
python3 - "$tmp/chart.svg" <<'PY' || {
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
titles = sorted(r.find(ns + "title").text for r in bars)
for want in ("logbook commit", "lmdb commit", "sqlite commit",
             "naive commit", "logbook rollback last batch",
             "logbook replay from empty", "logbook point reads"):
    assert any(t.startswith(want + ":") for t in titles), (want, titles)
assert len(bars) == 18, (len(bars), titles)
for r in bars:
    assert float(r.get("height")) > 0, r.get("height")
PY
	echo "the --svg chart is not as expected"
	echo "0 passed, 1 failed"
	exit 1
}
printf '%s\n' "$out" | tail -n 3
echo "1 passed, 0 failed"
