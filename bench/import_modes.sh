#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# import_modes.sh: `logbook import --on-error record` against the default
# `--on-error batch` on the same clean input (no broken record), in the same
# run: R runs of each, alternating (batch, record, record, batch, ...) so
# that a busy machine's drift hits both alike, each into a fresh database;
# records/s are from the wall time of the whole command (hashing the file,
# the lock, opening, importing, the run records), and, steadier on a busy
# machine, per second of CPU (user + system). Prints every run, the
# medians and their ratio; the goal is record >= 0.8 x batch on wall time
# (exit 1 if missed).
#
# Usage: bench/import_modes.sh [--records N] [--runs R] [--batch-size B]
#                              [--sync] [--bad-rate X]
#   --records N     generated records (default 500000)
#   --runs R        runs of each mode (default 3)
#   --batch-size B  passed to import (default 1000)
#   --sync          fsync at each commit (default: --nosync, which measures
#                   the tool and the library rather than the disk)
#   --bad-rate X    break a share X of the records (default 0: the goal is
#                   about clean input; with X > 0 the figures are for
#                   information)
# Environment: LB_BIN (default build/logbook), TMPDIR.
set -euo pipefail

records=500000
runs=3
batch=1000
sync=--nosync
badrate=0
while [ $# -gt 0 ]; do
	case "$1" in
	--records) records=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--batch-size) batch=$2; shift 2 ;;
	--sync) sync=; shift ;;
	--bad-rate) badrate=$2; shift 2 ;;
	-h | --help)
		sed -n '4,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "import_modes.sh: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lb=${LB_BIN:-$root/build/logbook}
[ -x "$lb" ] || { echo "import_modes.sh: no $lb (run make)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/import-modes.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

"$lb" gen schema >schema.json
"$lb" gen hearings --records "$records" --bad-rate "$badrate" >in.jsonl
echo "import_modes: $records records ($(du -h in.jsonl | cut -f1)), batches of $batch, ${sync:-fsync at commit}, bad rate $badrate, $runs runs each"
echo "($("$lb" --version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"

declare -A rates cpus
one() {
	local mode=$1 i=$2 rc=0 real user sys
	rm -rf db
	"$lb" init db --schema schema.json >/dev/null
	# bash's time: wall, user and system seconds of the import
	local TIMEFORMAT='%R %U %S'
	{ time "$lb" import db in.jsonl --on-error "$mode" --batch-size "$batch" \
		$sync >out.txt 2>err.txt || rc=$?; } 2>time.txt
	read -r real user sys <time.txt
	if [ "$rc" != 0 ] && [ "$badrate" = 0 ]; then
		cat err.txt >&2
		echo "import_modes: $mode run $i exited $rc" >&2
		exit 1
	fi
	local r c
	r=$(awk -v n="$records" -v s="$real" 'BEGIN { printf "%.0f", n / s }')
	c=$(awk -v n="$records" -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", n / (u + s) }')
	rates[$mode]="${rates[$mode]:-} $r"
	cpus[$mode]="${cpus[$mode]:-} $c"
	printf '  run %d  %-6s  %6.2f s  %8d records/s   (CPU %5.2f s: %8d records/s)\n' \
		"$i" "$mode" "$real" "$r" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$c"
}
for i in $(seq 1 "$runs"); do
	if [ $((i % 2)) = 1 ]; then
		one batch "$i"
		one record "$i"
	else
		one record "$i"
		one batch "$i"
	fi
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mb=$(echo "${rates[batch]}" | median)
mr=$(echo "${rates[record]}" | median)
ratio=$(awk -v r="$mr" -v b="$mb" 'BEGIN { printf "%.3f", r / b }')
cb=$(echo "${cpus[batch]}" | median)
cr=$(echo "${cpus[record]}" | median)
printf 'median  batch   %8.0f records/s   (per CPU second %8.0f)\n' "$mb" "$cb"
printf 'median  record  %8.0f records/s   (per CPU second %8.0f)\n' "$mr" "$cr"
echo "per CPU second: record / batch = $(awk -v r="$cr" -v b="$cb" 'BEGIN { printf "%.3f", r / b }')"
if awk -v x="$ratio" 'BEGIN { exit !(x >= 0.8) }'; then
	echo "record / batch = $ratio: PASS (goal >= 0.8)"
else
	echo "record / batch = $ratio: MISS (goal >= 0.8)"
	[ "$badrate" = 0 ] && exit 1
fi
