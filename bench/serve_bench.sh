#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# serve_bench.sh: the speed of `logbook serve` on a W1 database (bench/
# README.md, docs/SERVE.md "Speed"), measured with wrk:
#   - /api/log of 100 batches, median latency, one client;
#   - /api/batch/N of a 1,000-record batch, median latency, one client;
#   - /api/get/TABLE/KEY of random keys, requests/s from 8 concurrent
#     clients (wrk -t2 -c8).
# Peers, measured in the same run: the CLI's answer to the same questions
# (`logbook log --json --limit 100`, `logbook show --json N`, whole
# process, median of farm-bench runs when farm-bench is there, else of 5
# timed runs), and the server's floor, /api/log?limit=1 from the same 8
# clients.
#
# Usage: bench/serve_bench.sh [--records N] [--seconds S] [--db DIR]
#   --records N  W1 records (default 1000000), in batches of 1,000
#   --seconds S  seconds per wrk run (default 10)
#   --db DIR     use (or, if missing, make and keep) the database in DIR
# Environment: LB_BIN (default build/logbook). Needs wrk, curl, python3.
set -euo pipefail

records=1000000
seconds=10
db=
while [ $# -gt 0 ]; do
	case "$1" in
	--records) records=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--db) db=$2; shift 2 ;;
	-h | --help) sed -n '4,/^set -eu/{/^set/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "serve_bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
LB=${LB_BIN:-$root/build/logbook}
for t in wrk curl python3; do
	command -v $t >/dev/null || { echo "serve_bench: needs $t" >&2; exit 2; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/serve-bench.XXXXXX")
SPID=
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
[ -n "$db" ] || db=$T/w1

echo "serve_bench: W1, $records records in batches of 1,000; $(nproc) cores;" \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -f "$db/data.mdb" ]; then
	# W1: keys h%015llu, a 6-field hearing map of ~200-250 bytes, each batch
	# 80% inserts of new keys and 20% updates of random earlier keys,
	# splitmix64 seed 42 (the same shape as logbook-bench's W1).
	echo "making the database ($records records)..."
	cat >"$T/schema.json" <<'EOF'
{"tables": [{"name": "hearings", "fields": [
 {"name": "title", "type": "str"}, {"name": "date", "type": "str"},
 {"name": "committee", "type": "str"}, {"name": "chamber", "type": "str"},
 {"name": "congress", "type": "int"}, {"name": "url", "type": "str"}]}]}
EOF
	"$LB" init "$db" --schema "$T/schema.json" >/dev/null
	python3 - "$records" <<'EOF' | "$LB" import "$db" - --batch-size 1000 --mode upsert --allow-repeats --nosync >/dev/null
import json, sys
M = (1 << 64) - 1
s = 42
def rnd():
    global s
    s = (s + 0x9E3779B97F4A7C15) & M
    z = s
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
words = "oversight budget energy health defense water farm trade border tax".split()
n = int(sys.argv[1]); made = 0; out = sys.stdout
for i in range(n):
    if made and i % 1000 >= 800:
        k = rnd() % made
    else:
        k = made; made += 1
    r = rnd()
    t = " ".join(words[(r >> (4 * j)) % 10] for j in range(6 + r % 8))
    v = {"title": "Hearing on " + t, "date": "20%02d-%02d-%02d" % (r % 25, 1 + r % 12, 1 + r % 28),
         "committee": "Committee on " + words[r % 10].title(), "chamber": "House" if r & 1 else "Senate",
         "congress": 100 + r % 20, "url": "https://www.congress.gov/event/%d/%015d" % (r % 1000, k)}
    out.write(json.dumps({"table": "hearings", "key": "h%015d" % k, "value": v}) + "\n")
EOF
fi

"$LB" serve "$db" --listen 127.0.0.1:0 >"$T/serve.out" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$T/serve.out")
	[ -n "$port" ] && break
	sleep 0.1
done
U=http://127.0.0.1:$port
last=$(curl -s "$U/api/log?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last"])')
mid=$((last / 2 + 1))
keys=$(curl -s "$U/api/stat" | python3 -c 'import json,sys; print(json.load(sys.stdin)["table_records"])')
brec=$(curl -s "$U/api/batch/$mid?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "database: $last batches, $keys keys; batch $mid has $brec records"

# wrk's median latency (ms) of one client on PATH
median_ms() {
	wrk -t1 -c1 -d"${seconds}s" --latency "$U$1" >"$T/wrk.txt"
	awk '$1 == "50%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v }' "$T/wrk.txt"
}
# median wall ms of a whole CLI run
cli_ms() {
	if command -v farm-bench >/dev/null; then
		farm-bench -n 7 -- "$@" 2>&1 | awk '/^A wall s/ { printf "%.2f", $5 * 1000; exit }'
	else
		python3 - "$@" <<'EOF'
import subprocess, sys, time
t = []
for _ in range(7):
    a = time.monotonic()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    t.append(time.monotonic() - a)
print("%.2f" % (sorted(t)[3] * 1000))
EOF
	fi
}

curl -s -o /dev/null "$U/api/batch/$mid?limit=1000" # warm the page cache
log_ms=$(median_ms "/api/log?limit=100")
batch_ms=$(median_ms "/api/batch/$mid?limit=1000")
cli_log_ms=$(cli_ms "$LB" log "$db" --json --limit 100)
cli_show_ms=$(cli_ms "$LB" show "$db" "$mid" --json)

cat >"$T/get.lua" <<EOF
local n = $keys
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/get/hearings/h%015d", math.random(0, n - 1)))
end
EOF
wrk -t2 -c8 -d"${seconds}s" -s "$T/get.lua" "$U" >"$T/get.txt"
get_rps=$(awk '/^Requests\/sec/ { print $2 }' "$T/get.txt")
get_non2xx=$(awk '/Non-2xx/ { print $NF }' "$T/get.txt")
wrk -t2 -c8 -d"${seconds}s" "$U/api/log?limit=1" >"$T/floor.txt"
floor_rps=$(awk '/^Requests\/sec/ { print $2 }' "$T/floor.txt")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-40s %12s %12s %8s\n' "measure" "serve" "peer" "ratio"
printf '%-40s %9s ms %9s ms %8s   goal <= 20 ms\n' "/api/log?limit=100, median (1 client)" \
	"$log_ms" "$cli_log_ms" "$(ratio "$log_ms" "$cli_log_ms")"
printf '%-40s %9s ms %9s ms %8s   goal <= 20 ms\n' "/api/batch/N (1,000 records), median" \
	"$batch_ms" "$cli_show_ms" "$(ratio "$batch_ms" "$cli_show_ms")"
printf '%-40s %10s/s %10s/s %8s   goal >= 5000/s\n' "/api/get random keys, 8 clients" \
	"$get_rps" "$floor_rps" "$(ratio "$get_rps" "$floor_rps")"
echo "peers: the CLI's whole process for the same answer (log --json --limit 100;"
echo "show --json N); for /api/get, /api/log?limit=1 from the same 8 clients."
[ -z "$get_non2xx" ] || echo "warning: $get_non2xx non-2xx answers to /api/get"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
