#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# feed_cli.sh: the feed commands of `logbook` on workload W1, timed as whole
# processes: `changes --json` to /dev/null (records/s; goal >= 200k), and
# `export T --as-of N` (N within the last 1% of batches) against a plain
# `export T` (goal >= 0.5x its speed). W1 is loaded with `import` into an
# opaque table: N records (default 1,000,000) in batches of 1,000, keys
# h%015d, 20% of each batch updates of earlier keys, values of about 225
# bytes, seed 42. R runs of each (default 5), alternating (export, export
# --as-of, ...) so that a busy machine's drift hits both alike; prints
# every run, the medians and their ratio, and the load average.
#
# Usage: bench/feed_cli.sh [--records N] [--runs R]
# Environment: LB_BIN (default build/logbook), TMPDIR.
set -euo pipefail

records=1000000
runs=5
. "$(dirname "$0")/lib.sh"
bench_args feed_cli "$@"
T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-feedcli.XXXXXX")
trap 'rm -rf "$T"' EXIT

w1_jsonl "$records" >"$T/w1.jsonl"
"$LB" init "$T/db" >/dev/null
"$LB" table create "$T/db" w1 >/dev/null
"$LB" import "$T/db" "$T/w1.jsonl" --mode upsert --allow-repeats --batch-size 1000 --nosync >/dev/null
last=$("$LB" log "$T/db" --limit 1 --json | sed 's/.*"id":\([0-9]*\).*/\1/')
nb=$((last - 1))
asof=$((last - nb / 100))
recs=$("$LB" changes "$T/db" --json | wc -l)
echo "W1: $records records, $last batches (the last is the import run's own), as of batch $asof; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# timed FILE CMD...: append "wall cpu" (cpu = user + system) of CMD to FILE
TIMEFORMAT='%R %U %S'
timed() {
	local f=$1 t
	shift
	t=$( { time "$@" >/dev/null 2>&1; } 2>&1)
	echo "$t" | awk '{print $1, $2 + $3}' >>"$f"
}
: >"$T/ch"
: >"$T/ex"
: >"$T/ea"
for r in $(seq "$runs"); do
	timed "$T/ch" "$LB" changes "$T/db" --json
	timed "$T/ex" "$LB" export "$T/db" w1
	timed "$T/ea" "$LB" export "$T/db" w1 --as-of "$asof"
	echo "run $r (wall cpu, s): changes $(tail -1 "$T/ch"), export $(tail -1 "$T/ex"), export --as-of $(tail -1 "$T/ea")"
done
div() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }
col() { cut -d' ' -f"$1" <"$2" | median; }
ch=$(col 1 "$T/ch"); chc=$(col 2 "$T/ch")
ex=$(col 1 "$T/ex"); exc=$(col 2 "$T/ex")
ea=$(col 1 "$T/ea"); eac=$(col 2 "$T/ea")
printf 'changes --json: %d records; median %.3f s wall, %.3f s CPU: %.0f records/s, %.0f per CPU second (goal >= 200000/s)\n' \
	"$recs" "$ch" "$chc" "$(div "$recs" "$ch")" "$(div "$recs" "$chc")"
printf 'export: median %.3f s wall, %.3f s CPU; export --as-of %d: %.3f s wall, %.3f s CPU; speed ratio %.2f wall, %.2f CPU (goal >= 0.5)\n' \
	"$ex" "$exc" "$asof" "$ea" "$eac" "$(div "$ex" "$ea")" "$(div "$exc" "$eac")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
