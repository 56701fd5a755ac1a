#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# procs.sh: the `logbook` tool where processes meet limits and each other:
#   1. read-only commands (get, log, verify --replay) under ulimit -v 600000
#      (they once mapped a writer's 1 GiB and ran out of address space);
#   2. import of a line whose table name holds a NUL ("o\u0000x") reports a
#      `table` issue and writes into no table (it once wrote into "o");
#   3. a schema whose table refers to itself is accepted by init --schema,
#      and what `tables --schema` prints of it is accepted again;
#   4. two `put` processes and an `import` at once on one database: every
#      command succeeds, the batch ids are dense, verify --replay passes and
#      every value is there.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/procs.sh
# Prints one line per failed check (and per skipped section) and a final
# "N passed, N failed" line; exits 1 if any check failed.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup procs procs

# ---------------------------------------------------------------------------
section "ulimit -v"
"$LB" init small >/dev/null
"$LB" table create small t >/dev/null
for i in 1 2 3; do "$LB" put small t "k$i" "\"v$i\"" >/dev/null; done
# limited CMD...: run CMD under the address-space limit.
limited() { (ulimit -v 600000 && exec "$@"); }
if ! limited "$LB" --version >/dev/null 2>&1; then
	# A sanitizer's runtime reserves terabytes of address space: such a
	# build cannot start under the limit at all.
	echo "SKIP [$current]: $LB does not start under ulimit -v 600000 (a sanitizer build?)"
else
	st 0 limited "$LB" get small t k2
	has_out '"v2"'
	st 0 limited "$LB" log small
	has_out "put t k3"
	st 0 limited "$LB" verify small --replay
	has_out "replay equals tables: ok"
	st 0 limited "$LB" tables small
fi

# ---------------------------------------------------------------------------
section "table name with NUL"
"$LB" init nul >/dev/null
"$LB" table create nul o >/dev/null
"$LB" table create nul ox >/dev/null
printf '%s\n' '{"table":"o\u0000x","key":"k","value":"v"}' >nul.jsonl
st 1 "$LB" import nul nul.jsonl --json
has_out '"kind":"table"'
has_out '"batches_committed":0'
st 1 "$LB" get nul o k
st 1 "$LB" get nul ox k
run "$LB" scan nul o
eq "$(wc -c <out)" 0 "scan o"
run "$LB" log nul --json
eq "$(wc -l <out)" 2 "batches (the two table creations)"

# ---------------------------------------------------------------------------
section "self-referencing schema"
cat >tree.json <<'EOF'
{"tables": [
  {"name": "tree", "closed": true, "fields": [
    {"name": "id", "type": "str", "required": true},
    {"name": "parent", "type": "str", "ref": "tree"}]},
  {"name": "leaf", "fields": [
    {"name": "in", "type": "str", "required": true, "ref": "tree"}]}
]}
EOF
st 0 "$LB" init tree --schema tree.json
st 0 "$LB" put tree tree r '{"id":"r"}'
st 0 "$LB" put tree tree c '{"id":"c","parent":"r"}'
st 1 "$LB" put tree tree d '{"id":"d","parent":"nowhere"}'
st 1 "$LB" del tree tree r
st 0 "$LB" tables tree --schema
cp out tree-out.json
has_out '"ref":"tree"'
st 0 "$LB" init tree2 --schema tree-out.json
st 0 "$LB" tables tree2 --schema
same out tree-out.json
# the same tables, the reference included
"$LB" tables tree --json | sed 's/"records":[0-9]*//' >t1
"$LB" tables tree2 --json | sed 's/"records":[0-9]*//' >t2
same t1 t2
st 1 "$LB" put tree2 tree x '{"id":"x","parent":"nowhere"}'

# ---------------------------------------------------------------------------
section "processes at once"
"$LB" init busy >/dev/null
"$LB" table create busy c >/dev/null
: >want.jsonl
for i in $(seq -w 1 200); do
	echo "{\"table\":\"c\",\"key\":\"i$i\",\"value\":\"import-$i\"}"
done >imp.jsonl
cat imp.jsonl >>want.jsonl
putter() {
	local w=$1 i
	for i in $(seq -w 1 30); do
		"$LB" put busy c "p$w-$i" "\"put-$w-$i\"" --json || return 1
	done
}
putter 1 >put1.out 2>put1.err &
p1=$!
putter 2 >put2.out 2>put2.err &
p2=$!
"$LB" import busy imp.jsonl --batch-size 10 --json >imp.out 2>imp.err &
p3=$!
wait $p1
eq $? 0 "put process 1 ($(head -c 300 put1.err))"
wait $p2
eq $? 0 "put process 2 ($(head -c 300 put2.err))"
wait $p3
eq $? 0 "import ($(head -c 300 imp.err))"
for w in 1 2; do
	for i in $(seq -w 1 30); do
		echo "{\"table\":\"c\",\"key\":\"p$w-$i\",\"value\":\"put-$w-$i\"}"
	done
done >>want.jsonl
st 0 "$LB" verify busy --replay
has_out "replay equals tables: ok"
st 0 "$LB" export busy c
sort out >got
sort want.jsonl >want
same got want
# batch ids: each reported once, and with the batches the import writes
# for itself (its run's table, a batch holding only its run's record),
# every batch of the log, which verify found dense
eq "$(grep -c '"success":true' put1.out put2.out imp.out | awk -F: '{s += $2} END {print s}')" 80 "successful batches"
grep -o '"batch_id":[0-9]*' put1.out put2.out imp.out | cut -d: -f3 >ids
"$LB" log busy --json >log.jsonl
grep -E '"label":"(create table c|create table logbook\.runs|import imp\.jsonl: run [0-9]+ ends at line 200)"' log.jsonl |
	grep -o '^{"id":[0-9]*' | cut -d: -f2 >>ids
sort -n ids >ids-sorted
seq 1 "$(wc -l <log.jsonl)" >want-ids
same ids-sorted want-ids

lb_finish
