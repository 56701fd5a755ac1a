#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# replication.sh: a follower over NATS JetStream, end to end, on workload
# W1. One nats-server (JetStream, a store in a temporary directory, a free
# loopback port), a primary loaded with `logbook import` (N records,
# default 1,000,000, in batches of 1,000, keys h%015d, 20% of each batch
# updates of earlier keys, values of about 225 bytes, seed 42; --nosync),
# `logbook ship --follow` from it and `logbook follow --follow --nosync`
# into a follower, all running at once. Per run it reports the primary's
# commit rate (records / import time), the follower's apply rate (records /
# time from the import's start until the follower holds the last batch),
# their ratio (goal >= 0.8), and how long after the last commit the
# follower caught up (goal <= 1 s); `replica status` is sampled while the
# import runs, to show the lag. R runs (default 3), medians, and the load
# average before and after.
#
# Usage: bench/replication.sh [--records N] [--runs R]
# Environment: LB_BIN (default build/logbook), TMPDIR.
set -euo pipefail

records=1000000
runs=3
. "$(dirname "$0")/lib.sh"
bench_args replication "$@"
command -v nats-server >/dev/null || { echo "replication.sh: nats-server is missing (scripts/deps.sh)" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-repl.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nats-server -js -sd "$T/js" -p "$port" -a 127.0.0.1 >"$T/nats.log" 2>&1 &
pids+=($!)
url=nats://127.0.0.1:$port
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

w1_jsonl "$records" >"$T/w1.jsonl"

now() { date +%s.%N; }
applied() {
	"$LB" replica status "$1" --nats "$url" --stream "$2" --json 2>/dev/null |
		sed -n 's/.*"applied":\([0-9]*\).*/\1/p'
}

echo "W1 end to end: $records records, batches of 1000, nosync; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$T/res"
for r in $(seq "$runs"); do
	p=$T/p$r f=$T/f$r s=W1R$r
	"$LB" init "$p" >/dev/null
	"$LB" table create "$p" w1 >/dev/null
	"$LB" ship "$p" --nats "$url" --stream "$s" >/dev/null
	"$LB" ship "$p" --nats "$url" --stream "$s" --follow >/dev/null 2>"$T/ship$r.err" &
	sp=$!
	pids+=($sp)
	"$LB" follow "$f" --nats "$url" --stream "$s" --follow --nosync >/dev/null 2>"$T/follow$r.err" &
	fp=$!
	pids+=($fp)
	t0=$(now)
	"$LB" import "$p" "$T/w1.jsonl" --mode upsert --allow-repeats --batch-size 1000 --nosync >/dev/null &
	ip=$!
	maxlag=0
	while kill -0 "$ip" 2>/dev/null; do
		lag=$("$LB" replica status "$f" --nats "$url" --stream "$s" --json 2>/dev/null |
			sed -n 's/.*"lag_batches":\([0-9]*\).*/\1/p')
		[ -n "$lag" ] && [ "$lag" -gt "$maxlag" ] && maxlag=$lag
		sleep 0.5
	done
	wait "$ip"
	t1=$(now)
	last=$("$LB" log "$p" --limit 1 --json | sed 's/.*"id":\([0-9]*\).*/\1/')
	while [ "$(applied "$f" "$s")" != "$last" ]; do sleep 0.02; done
	t2=$(now)
	kill "$sp" "$fp"
	wait "$sp" "$fp" || true
	awk -v n="$records" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v r="$r" -v lag="$maxlag" 'BEGIN {
		pr = n / (t1 - t0); fr = n / (t2 - t0);
		printf "run %d: primary %.0f rec/s, follower %.0f rec/s (%.2fx), caught up %.2f s after the last commit, largest lag seen %d batches\n", r, pr, fr, fr / pr, t2 - t1, lag
		print pr, fr, fr / pr, t2 - t1 > "/dev/stderr"
	}' 2>>"$T/res"
	rm -rf "$p" "$f"
done
echo "medians: primary $(cut -d' ' -f1 "$T/res" | median | awk '{printf "%.0f", $1}') rec/s," \
	"follower $(cut -d' ' -f2 "$T/res" | median | awk '{printf "%.0f", $1}') rec/s," \
	"ratio $(cut -d' ' -f3 "$T/res" | median | awk '{printf "%.2f", $1}') (goal >= 0.8)," \
	"catch-up $(cut -d' ' -f4 "$T/res" | median | awk '{printf "%.2f", $1}') s (goal <= 1)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
