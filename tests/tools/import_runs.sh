#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# import_runs.sh: import runs, end to end.
#
#   - `logbook runs`: id, state, counts, the content hash, the batches
#   - the same content again is refused, naming the run; --again imports it
#   - one import per database: --no-wait fails (exit 3) while another holds
#     the lock, without it the second waits and says so
#   - an import interrupted by SIGINT ends its batch cleanly (exit 130) and
#     says where to go on; --resume (another batch size) finishes it, and
#     the database equals an uninterrupted import, record mode and batch
#     mode alike; a file with nothing left to resume is refused
#   - rollback --run: always in one new batch (the run's batches are the
#     last, or a batch outside the run follows them: refused as a whole,
#     or with --cascade taken along), --dry-run and its --json
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/import_runs.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, python3, sha256sum, mkfifo.
set -u

LB=${LB_BIN:-build/logbook}
case "$LB" in
/*) ;;
*) LB=$PWD/$LB ;;
esac
if [ ! -x "$LB" ]; then
	echo "import_runs.sh: $LB is not an executable (build it with make)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-runs.XXXXXX") || exit 1
bg=""
cleanup() {
	# only the processes this script started
	for p in $bg; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1

pass=0
fail=0
rc=0
current=""

ok() { pass=$((pass + 1)); }
bad() {
	fail=$((fail + 1))
	echo "FAIL [$current]: $*"
}
section() {
	[ -n "${LB_TEST_VERBOSE:-}" ] && [ "$LB_TEST_VERBOSE" != 0 ] &&
		echo "$(date +%T) $1"
	current=$1
}
run() {
	"$@" >out 2>err
	rc=$?
}
st() {
	local want=$1
	shift
	run "$@"
	if [ "$rc" = "$want" ]; then
		ok
	else
		bad "'$*' exited $rc, want $want; stderr: $(head -c 400 err)"
	fi
}
has_out() { if grep -q -- "$1" out; then ok; else bad "stdout lacks '$1': $(head -c 600 out)"; fi; }
has_err() { if grep -q -- "$1" err; then ok; else bad "stderr lacks '$1': $(head -c 400 err)"; fi; }
same() { if cmp -s "$1" "$2"; then ok; else bad "$1 and $2 differ: $(cmp "$1" "$2" 2>&1 | head -1)"; fi; }
eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', want '$2'"; fi; }
num() { tail -n 1 out | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
last_batch() { "$LB" log "$1" --limit 1 --json | sed -n 's/^{"id":\([0-9]*\),.*/\1/p'; }
# run_field DIR RUN FIELD: a field of `runs --json` for one run.
run_field() {
	"$LB" runs "$1" --json | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o["run"] == int(sys.argv[1]):
        v = o[sys.argv[2]]
        print(",".join(map(str, v)) if isinstance(v, list) else v)' "$2" "$3"
}
# wait_for SECONDS CMD...: until CMD succeeds (polled every 50 ms).
wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

"$LB" gen schema >schema.json

# ---------------------------------------------------------------------------
section "runs, the same content twice"
"$LB" gen hearings --records 3000 --seed 5 >a.jsonl
cp a.jsonl a-copy.jsonl
"$LB" init db --schema schema.json >/dev/null
st 0 "$LB" runs db
has_out "no import runs recorded in db"
st 0 "$LB" import db a.jsonl
# batches 1-3: the schema's tables; 4: logbook.runs; the run is 5-7
has_out "^run 5: a.jsonl, batches 5-7; done$"
st 0 "$LB" runs db
sha=$(sha256sum a.jsonl | cut -c1-12)
has_out "^     5  done  .*  3000        3000          0          -  $sha  a.jsonl  batches 5-7$"
st 0 "$LB" runs db --json
py_ok=$(python3 -c '
import json, sys
o = json.loads(open("out").readline())
assert o["run"] == 5 and o["state"] == "done" and o["lines"] == 3000
assert o["committed"] == 3000 and o["set_aside"] == 0 and o["batches"] == [5, 6, 7]
assert o["sha256"] == sys.argv[1] and o["file"] == "a.jsonl" and o["next_line"] is None
assert o["mode"] == "insert" and o["on_error"] == "batch"
print("ok")' "$(sha256sum a.jsonl | cut -d' ' -f1)" 2>&1)
eq "$py_ok" ok "runs --json"
# The tables, the export and stat leave the table of runs out.
st 0 "$LB" tables db
grep -q logbook out && bad "tables lists logbook.runs" || ok
st 0 "$LB" stat db
has_out "^tables     3$"
"$LB" export db | grep -q '"table":"logbook' && bad "export holds logbook.runs" || ok
st 3 "$LB" table create db logbook.x
has_err "reserved"
# The same content under another name: refused, naming the run.
before=$(last_batch db)
st 1 "$LB" import db a-copy.jsonl
has_err "a-copy.jsonl: this content was imported already: run 5 (a.jsonl, started "
has_err "3000 records, 3000 committed, 0 set aside, done); nothing written. Use --again"
eq "$(last_batch db)" "$before" "a refused import writes nothing"
st 1 "$LB" import db a.jsonl --resume
has_err "imported already: run 5"
# --again: a new run (its batches fail: every key exists)
st 1 "$LB" import db a-copy.jsonl --again --json
eq "$(num batches_failed)" 3 "--again imports it again"
# A dry run is no run and is not refused; nor is a pipe (stdin from a
# file is hashed: refused)
st 0 "$LB" import db a.jsonl --dry-run --mode upsert --allow-repeats
st 1 "$LB" import db - --mode upsert --allow-repeats <a.jsonl
has_err "stdin: this content was imported already: run 5"
# (batches of 700: the last one is cut by the end of the input, which
# says the run is done; a last batch that is full ends the run only if the
# end of the pipe is there already when it commits)
cat a.jsonl | "$LB" import db - --mode upsert --allow-repeats --batch-size 700 >out 2>err
eq "$?" 0 "a pipe"
has_out "^run 8: stdin, batches 8-12; done$"
st 0 "$LB" runs db
has_out "^     8  done  .*  -  *stdin  batches 8-12$"
st 2 "$LB" import db - --resume <a.jsonl
st 2 "$LB" import db a.jsonl --resume --again
st 2 "$LB" import db a.jsonl --on-error sometimes

# ---------------------------------------------------------------------------
section "one import at a time"
mkfifo feed
"$LB" gen hearings --records 1500 --seed 6 >b.jsonl
"$LB" gen hearings --records 500 --seed 7 --days 2 --day 2 >c.jsonl
# An import reading from a pipe that stays open holds the lock (the
# writer ends when the file "release" appears).
"$LB" import db - --mode upsert --allow-repeats <feed >holder.out 2>&1 &
holder=$!
(
	cat b.jsonl
	while [ ! -e release ]; do sleep 0.05; done
) >feed &
writer=$!
bg="$bg $holder $writer"
# Its first batch commits once line 1001 arrives: then it is a run.
wait_for 20 sh -c "'$LB' runs db | grep -q running" && ok ||
	bad "the import holding the lock is not shown running: $("$LB" runs db)"
st 3 "$LB" import db c.jsonl --no-wait
has_err "another import is running (process $holder, stdin, run 13); not waiting (--no-wait)"
"$LB" import db c.jsonl --mode upsert --allow-repeats >waiter.out 2>waiter.err &
waiter=$!
bg="$bg $waiter"
wait_for 20 grep -q "waiting for it to end" waiter.err 2>/dev/null && ok ||
	bad "the second import does not say it waits: $(cat waiter.err)"
kill -0 "$waiter" 2>/dev/null && ok || bad "the second import did not wait"
touch release
wait "$writer"
wait "$holder"
eq "$?" 0 "the first import"
wait "$waiter"
eq "$?" 0 "the second import, after the first"
grep -q "^run 13: stdin, batches 13, 14; done$" holder.out && ok ||
	bad "holder: $(tail -3 holder.out)"
grep -q "^run 15: c.jsonl, batch 15; done$" waiter.out && ok ||
	bad "waiter: $(tail -3 waiter.out)"
bg=""

# ---------------------------------------------------------------------------
section "interrupt and resume"
"$LB" gen hearings --records 200000 --bad-rate 0.001 --seed 8 >big.jsonl
# batches_from DB N: the log of DB holds batch N.
batches_from() { [ "$(last_batch "$1")" -ge "$2" ]; }
# interrupted DB MODE ARGS...: import big.jsonl into DB with fsync (slow
# enough to interrupt), send SIGINT once 25 batches are in; sets $run (the
# run) and $resume_at (where it goes on).
interrupted() {
	local db=$1 mode=$2 n pid
	shift 2
	"$LB" init "$db" --schema schema.json >/dev/null
	"$LB" import "$db" big.jsonl --on-error "$mode" "$@" >int.out 2>int.err &
	pid=$!
	bg="$bg $pid"
	wait_for 60 batches_from "$db" 25 || bad "$db: the import did not get going"
	kill -INT "$pid"
	wait "$pid"
	eq "$?" 130 "$db: exit status after SIGINT"
	bg=""
	grep -q "^interrupted after line [0-9]*; to go on from line [0-9]*: logbook import $db big.jsonl --resume$" int.out &&
		ok || bad "$db: no resume point: $(tail -3 int.out)"
	grep -q "^logbook: import: big.jsonl: interrupted; lines up to [0-9]* are done (run [0-9]*); --resume goes on at line [0-9]*$" int.err &&
		ok || bad "$db: stderr: $(cat int.err)"
	n=$(sed -n 's/^interrupted after line \([0-9]*\);.*/\1/p' int.out)
	run=$(sed -n 's/.*(run \([0-9]*\)).*/\1/p' int.err)
	resume_at=$((n + 1))
	[ "$n" -gt 0 ] && [ "$n" -lt 200000 ] && ok || bad "$db: interrupted after line '$n'"
	eq "$(run_field "$db" "$run" state)" interrupted "$db: state"
	eq "$(run_field "$db" "$run" next_line)" "$resume_at" "$db: next line"
	eq "$(run_field "$db" "$run" lines)" "$n" "$db: lines done"
}
"$LB" init straight --schema schema.json >/dev/null
"$LB" import straight big.jsonl --on-error record --nosync >/dev/null 2>&1
"$LB" export straight >straight.export
interrupted r1 record --batch-size 500
# Go on with another batch size: the same records go in.
st 1 "$LB" import r1 big.jsonl --resume --batch-size 777 --nosync --json
eq "$(num records)" "$((200000 - resume_at + 1))" "resume reads the lines after the resume point only"
eq "$(num resumed_at)" "$resume_at" "resumed_at"
eq "$(num run)" "$run" "the resumed run"
eq "$(run_field r1 "$run" state)" done "r1: done after resuming"
eq "$(run_field r1 "$run" lines)" 200000 "r1: every line in the run"
"$LB" export r1 >r1.export
same r1.export straight.export
st 1 "$LB" import r1 big.jsonl --resume
has_err "imported already: run $run"
# Batch mode with broken records: resumed with the same batch size, the
# batches are cut where they would have been, so the same ones fail.
"$LB" init straight2 --schema schema.json >/dev/null
"$LB" import straight2 big.jsonl --batch-size 500 --nosync >/dev/null 2>&1
"$LB" export straight2 >straight2.export
interrupted r2 batch --batch-size 500
# A resumed run keeps its options.
st 2 "$LB" import r2 big.jsonl --resume --on-error record
has_err "run $run was imported with --on-error batch"
st 1 "$LB" import r2 big.jsonl
has_err "this content is the file of run $run (big.jsonl, .*interrupted after line $((resume_at - 1))); nothing written. Use --resume"
# The file changed since: --resume refuses rather than start over.
cp big.jsonl big.orig
echo '{"table":"hearings","key":"LATE","value":{}}' >>big.jsonl
st 1 "$LB" import r2 big.jsonl --resume
has_err "big.jsonl: the content is not that of run $run (big.jsonl, .*(it changed since); nothing written"
mv big.orig big.jsonl
st 1 "$LB" import r2 big.jsonl --resume --batch-size 500 --nosync
"$LB" export r2 >r2.export
same r2.export straight2.export
eq "$(run_field r2 "$run" set_aside)" "$("$LB" runs straight2 --json | grep -o '"set_aside":[0-9]*' | cut -d: -f2)" "r2: set aside"

# ---------------------------------------------------------------------------
section "rollback --run"
"$LB" init rr --schema schema.json >/dev/null
"$LB" gen hearings --records 2000 --days 2 --day 1 --seed 9 >d1.jsonl
"$LB" gen hearings --records 2000 --days 2 --day 2 --seed 9 >d2.jsonl
"$LB" import rr d1.jsonl >/dev/null # run 5: batches 5, 6
"$LB" export rr >rr-d1.export
"$LB" import rr d2.jsonl --mode upsert --allow-repeats >/dev/null # run 7: 7, 8
st 0 "$LB" rollback rr --run 7 --dry-run
has_out "^rollback of run 7 (d2.jsonl, batches 7, 8) would write [0-9]* records in one batch; no conflicts (dry run)$"
eq "$(last_batch rr)" 8 "a dry run writes nothing"
# The run's batches are the last ones: one new batch.
st 0 "$LB" rollback rr --run 7
has_out "^rolled back run 7 (d2.jsonl) in batch 9 ([0-9]* records)$"
has_out "^undid batches 7, 8$"
"$LB" export rr >out.export
same out.export rr-d1.export
st 0 "$LB" runs rr
has_out "^     5  done"
grep -q "d2.jsonl" out && bad "run 7 is still listed" || ok
# Rolled back, the file may be imported again.
st 0 "$LB" import rr d2.jsonl --mode upsert --allow-repeats
has_out "^run 10: d2.jsonl, batches 10, 11; done$"
# A later batch outside the run changed one of its keys: refused as a
# whole, nothing written; --cascade takes the later batch along.
key=$(head -1 d1.jsonl | sed 's/.*"key":"\([^"]*\)".*/\1/')
"$LB" put rr hearings "$key" "$("$LB" get rr hearings "$key" | sed 's/"title":"[^"]*"/"title":"by hand"/')" >/dev/null # 12
st 1 "$LB" rollback rr --run 5
has_out "^conflict: hearings HRG-[0-9-]* was changed by batch 1[012]$"
has_err "run 5 has keys changed by later batches outside the run; nothing written. Use --cascade"
eq "$(last_batch rr)" 12 "a refused rollback writes nothing"
st 1 "$LB" rollback rr --run 5 --dry-run --json
python3 -c '
import json
o = json.loads(open("out").readline())
assert not o["success"] and o["error"] == "conflict" and o["new_batches"] == [], o
assert o["issues"] and {i["batch"] for i in o["issues"]} <= {10, 11, 12}, o
' && ok || bad "rollback --run --dry-run --json (conflict)"
st 0 "$LB" rollback rr --run 5 --cascade --dry-run --json
python3 -c '
import json
o = json.loads(open("out").readline())
assert o["success"] and o["dry_run"] and o["method"] == "one batch", o
assert o["batches"] == [5, 6] and o["new_batches"] == [] and o["records"] > 0, o
assert sorted(o["undone"]) == [5, 6, 10, 11, 12], o
' && ok || bad "rollback --run --dry-run --json: $(cat out)"
eq "$(last_batch rr)" 12 "a dry run writes nothing"
st 0 "$LB" rollback rr --run 5 --cascade
has_out "^rolled back run 5 (d1.jsonl) in batch 13 ([0-9]* records)$"
has_out "^undid batches 5, 6, 10-12$"
st 0 "$LB" export rr
eq "$(wc -l <out)" 0 "every table is empty again"
st 0 "$LB" runs rr
has_out "no import runs recorded in rr"
st 3 "$LB" rollback rr --run 99
has_err "no run 99"
st 2 "$LB" rollback rr --run 0
st 0 "$LB" verify rr --replay

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
