#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# cli16.sh: the `logbook` tool as an operator meets it after a day's import:
# rollback and rollback-to dry runs that tell the real outcome (the batches
# undone, the records written, every blocker), `stat` after `prune`,
# `compact`, `log` with awkward labels and rollback-to batches, `verify` of
# a database too damaged to open, messages without C names and with plurals
# right, and what `make install` puts beside the manual page.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/cli16.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, awk, cmp, python3 and make.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup cli16 cli16

# Every output of the commands run through `run` is kept in all.out and
# all.err, for the checks on words at the end.
: >all.out
: >all.err
run_log=1

"$LB" gen schema >schema.json
H1='{"id":"H1","title":"one","date":"2024-01-01","committee":"c","chamber":"House","congress":118}'

# ---------------------------------------------------------------------------
section "help"
st 0 "$LB" help
has_out "^  compact  *give back the space of pruned segments and deleted records$"
st 0 "$LB" compact --help
has_out "^usage: logbook compact DIR \[--json\]$"
st 0 "$LB" rollback-to --help
has_out "^usage: logbook rollback-to DIR BATCH \[--dry-run\] \[--json\]$"

# ---------------------------------------------------------------------------
section "rollback --dry-run lists what it would undo"
"$LB" init rb --schema schema.json >/dev/null                     # 1-3
"$LB" put rb hearings H1 "$H1" >/dev/null                           # 4
"$LB" put rb hearings H2 "${H1//H1/H2}" >/dev/null                  # 5
"$LB" put rb hearings H1 "${H1/one/one, revised}" >/dev/null        # 6
"$LB" put rb witnesses W1 '{"id":"W1","hearing_id":"H2","name":"N"}' >/dev/null # 7
cp -r rb rb0
# strict, no conflict: the one batch, with its label and records
st 0 "$LB" rollback rb 7 --dry-run
has_out "^rollback of batch 7 would write 1 record; no conflicts (dry run)$"
has_out "^would undo batch 7$"
has_out "^  batch 7 (1 record): put witnesses W1$"
eq "$(marks rb)" "$(marks rb0)" "a dry run marks nothing"
eq "$(last_batch rb)" 7 "a dry run writes no batch"
# conflict: the key and the batch that changed it; the way on
st 1 "$LB" rollback rb 4 --dry-run
has_out "^conflict: hearings H1 was changed by batch 6$"
one_err "Use --cascade to also roll back batch 6 (and any batch depending on it), or --force to restore over its changes"
has_err "nothing would be written"
# a foreign-key blocker: the batch holding the referrer and the flag
st 1 "$LB" rollback rb 5 --dry-run
has_out "^foreign key: hearings H2: .*still referenced by witnesses 'W1' (the referrer was written by batch 7: --cascade also undoes it)$"
one_err "Use --cascade to also roll back batch 7, which wrote the records referring to its keys"
st 1 "$LB" rollback rb 5 --force --dry-run
has_out "batch 7: --cascade also undoes it"
st 1 "$LB" rollback rb 5 --dry-run --json
py "FK blocker in JSON" '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["dry_run"] and not o["success"] and o["error"] == "validation", o
assert o["undone"] == [], o
i = o["issues"][0]
assert i["kind"] == "foreign_key" and i["batch"] == 7 and i["key"] == "H2", i
' out
# forced: the one batch
st 0 "$LB" rollback rb 4 --force --dry-run
has_out "^rollback of batch 4 would write 1 record; no conflicts (dry run)$"
has_out "^would undo batch 4$"
# cascade: every batch the cascade would undo
st 0 "$LB" rollback rb 5 --cascade --dry-run
has_out "^rollback of batch 5 would write 2 records; no conflicts (dry run)$"
has_out "^would undo batches 7, 5$"
has_out "^  batch 7 (1 record): put witnesses W1$"
has_out "^  batch 5 (1 record): put hearings H2$"
cp out dry.txt
st 0 "$LB" rollback rb 5 --cascade --dry-run --json
py "cascade dry run in JSON" '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["success"] and o["dry_run"] and o["records"] == 2, o
assert o["undone"] == [7, 5], o
' out
eq "$(marks rb)" "$(marks rb0)" "dry runs mark nothing"
st 0 "$LB" rollback rb 5 --cascade
has_out "^rolled back batch 5 in batch 8 (2 records)$"
has_out "^undid batches 7, 5$"

# Every batch of a longer history, in every mode: the dry run names the
# batches the real call undoes, with the same record count, issues and
# exit status.
"$LB" init dr >/dev/null
"$LB" table create dr t >/dev/null # 1
for v in 1 2 3; do "$LB" put dr t a "\"$v\"" >/dev/null; done # 2-4
"$LB" put dr t b '"x"' >/dev/null                              # 5
# a batch of three ops (an import: its first makes the table of runs)
printf '{"table":"t","key":"a","value":"9"}\n{"table":"t","key":"b","delete":true}\n{"table":"t","key":"c","value":"c"}\n' >dr6.jsonl
"$LB" import dr dr6.jsonl --mode upsert >/dev/null
"$LB" rollback dr 3 --force >/dev/null
"$LB" put dr t c '"c2"' >/dev/null
"$LB" rollback dr "$(last_batch dr)" >/dev/null
"$LB" put dr t d '"d"' >/dev/null
n=$(last_batch dr)
for b in $(seq 1 "$n"); do
	for mode in "" --force --cascade; do
		rm -rf drx && cp -r dr drx
		run "$LB" rollback drx "$b" $mode --dry-run --json
		dry_rc=$rc
		cp out dry.json
		run "$LB" rollback drx "$b" $mode --json
		real_rc=$rc
		cp out real.json
		eq "$real_rc" "$dry_rc" "rollback $b $mode: exit status of the dry run"
		[ "$real_rc" = 3 ] && continue
		"$LB" log drx --json >log.json
		# the dry run agrees with the real call, and what the real
		# call says it undid is what the marks say
		py "rollback $b $mode: dry run, real call and marks" '
import json, sys
d = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
for k in ("success", "records", "error", "conflicting_batches", "issues"):
    assert d[k] == r[k], (k, d[k], r[k])
assert d["undone"] == r["undone"], (d, r)
if d["success"] and d["records"]:
    assert d["batch"] in d["undone"], d
n = r["new_batch"]
if n:
    marked = sorted((o["id"] for o in map(json.loads, open(sys.argv[4]))
                     if o["rolled_back_by"] == n), reverse=True)
    assert marked == r["undone"], (marked, r["undone"])
' dry.json real.json "$mode" log.json
	done
done

# ---------------------------------------------------------------------------
section "rollback-to --dry-run tells the real outcome"
# A history with puts, deletes, values changed back, a table created and
# removed again, a rollback and a rollback-to in between.
"$LB" init ht >/dev/null
"$LB" table create ht t >/dev/null # 1
"$LB" put ht t a '"1"' >/dev/null  # 2
"$LB" put ht t b '"2"' >/dev/null  # 3
# batches of several ops (imports: the first makes the table of runs)
printf '{"table":"t","key":"a","value":"9"}\n{"table":"t","key":"b","delete":true}\n{"table":"t","key":"d","value":"4"}\n' >ht4.jsonl
"$LB" import ht ht4.jsonl --mode upsert >/dev/null
"$LB" rollback ht "$(last_batch ht)" >/dev/null
printf '{"table":"t","key":"a","value":"10"}\n{"table":"t","key":"f","value":"6"}\n' >ht6.jsonl
"$LB" import ht ht6.jsonl --mode upsert >/dev/null
h6=$(last_batch ht)
"$LB" table create ht u >/dev/null
"$LB" put ht u x '"1"' >/dev/null
"$LB" rollback-to ht "$h6" >/dev/null
"$LB" put ht t a '"1"' >/dev/null # a as after batch 2
"$LB" del ht t f >/dev/null
"$LB" put ht t g '"7"' >/dev/null
"$LB" table create ht v >/dev/null
hv=$(last_batch ht)
"$LB" put ht v y '{"base64":"AAE="}' >/dev/null
n=$(last_batch ht)
"$LB" log ht --json >ht-log0.json
py "the history" '
import json, sys
b = {o["id"]: o for o in map(json.loads, open(sys.argv[1]))}
n, h6 = int(sys.argv[2]), int(sys.argv[3])
assert sum(1 for o in b.values() if o["undoes"] and not o["rollback_to"]) == 1, b
assert sum(1 for o in b.values() if o["rollback_to"] and o["undoes"] == h6) == 1, b
assert len(b) == n
' ht-log0.json "$n" "$h6"
"$LB" log ht --json >ht-log.json
for x in $(seq 0 "$n"); do
	rm -rf htx && cp -r ht htx
	st 0 "$LB" rollback-to htx "$x" --dry-run --json
	cp out dry.json
	"$LB" log htx --json >log-dry.json
	same log-dry.json ht-log.json
	st 0 "$LB" rollback-to htx "$x" --json
	cp out real.json
	"$LB" log htx --json >log.json
	py "rollback-to $x: dry run, real call and marks" '
import json, sys
d = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
assert d["dry_run"] and not r["dry_run"]
for k in ("success", "records", "error", "undone", "issues"):
    assert d[k] == r[k], (k, d[k], r[k])
x, n = int(sys.argv[3]), int(sys.argv[4])
new = r["new_batch"]
want = list(range(n, x, -1)) if new else []
assert r["undone"] == want, (r["undone"], want)
assert (new is None) == (r["records"] == 0), r
b = [json.loads(l) for l in open(sys.argv[5])]
if new:
    assert all(o["rolled_back_by"] == new for o in b if x < o["id"] < new)
else:
    assert max(o["id"] for o in b) == n
' dry.json real.json "$x" "$n" log.json
done
# The human form: the same shape as rollback's dry run.
st 0 "$LB" rollback-to ht "$h6" --dry-run
has_out "^rollback to batch $h6 would write [0-9]* records\{0,1\}; no conflicts (dry run)$"
has_out "^would undo batches $((h6 + 1))-$n$"
has_out "^  batch $n (1 record): put v y$"
st 0 "$LB" rollback-to ht "$n" --dry-run
has_out "^rollback to batch $n: nothing to write: the tables hold what they held right after batch $n (dry run)$"
st 0 "$LB" rollback-to ht "$hv" --dry-run
has_out "^would undo batch $n$"
st 3 "$LB" rollback-to ht $((n + 1)) --dry-run
one_err "batch $((n + 1))"
st 3 "$LB" rollback-to ht $((n + 1))
one_err "batch $((n + 1))"
st 2 "$LB" rollback-to ht x --dry-run
# more than 20 batches: the first 20, then a count
"$LB" init many >/dev/null
"$LB" table create many t >/dev/null
for i in $(seq 1 25); do "$LB" put many t "k$i" '"v"' >/dev/null; done # 2-26
st 0 "$LB" rollback-to many 1 --dry-run
has_out "^rollback to batch 1 would write 25 records; no conflicts (dry run)$"
has_out "^would undo batches 2-26$"
eq "$(grep -c '^  batch ' out)" 20 "batch lines shown"
has_out "^  ... and 5 more (logbook log)$"
# a pruned batch after the target: the same refusal as the real call
"$LB" checkpoint many many-ck >/dev/null
"$LB" prune many --before 10 >/dev/null
st 3 "$LB" rollback-to many 3 --dry-run
has_err "pruned"
st 3 "$LB" rollback-to many 3
has_err "pruned"
# the real rollback-to names what it undid; log shows it
st 0 "$LB" rollback-to many 20
has_out "^rolled back to batch 20 in batch 27 (6 records)$"
has_out "^undid batches 21-26$"

# ---------------------------------------------------------------------------
section "log: states and labels keep their columns"
"$LB" init lg >/dev/null
"$LB" table create lg t >/dev/null # 1
long=$(printf 'L%.0s' $(seq 1 255))
printf '{"table":"t","key":"a","value":"1"}\n' >lg.jsonl
"$LB" import lg lg.jsonl --label "$long" >/dev/null
b_long=$(last_batch lg)
printf '{"table":"t","key":"b","value":"2"}\n' >lg.jsonl
"$LB" import lg lg.jsonl --label $'two\nlines\tand a tab' >/dev/null
b_multi=$(last_batch lg)
"$LB" put lg t c '"3"' >/dev/null
"$LB" rollback-to lg 1 >/dev/null
b_rt=$(last_batch lg)
"$LB" rollback lg "$b_rt" >/dev/null
b_rb=$(last_batch lg)
st 0 "$LB" log lg
eq "$(wc -l <out)" "$((b_rb + 1))" "log: one line per batch and the header"
has_out "^ *$b_multi  .* two\\\\nlines\\\\tand a tab$"
has_out "^ *$b_long  .* $long$"
has_out "  rolls back to 1 (undid 2-$((b_rt - 1))), rolled back by $b_rb  rollback to batch 1$"
has_out "  undoes $b_rt  *rollback of batch $b_rt$"
# LABEL starts at the same column on every line
col=$(awk 'NR == 1 { print index($0, "LABEL") }' out)
py "log: the LABEL column" '
import sys
lines = open(sys.argv[1]).read().split("\n")[:-1]
col = int(sys.argv[2]) - 1
for l in lines[1:]:
    assert l[col - 2:col] == "  " and l[col] != " ", (col, l)
' out "$col"
st 0 "$LB" log lg --json
py "log --json: rollback_to" '
import json, sys
b = {o["id"]: o for o in map(json.loads, open(sys.argv[1]))}
rt, rb, multi = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert b[rt]["rollback_to"] is True and b[rt]["undoes"] == 1
assert b[rb]["rollback_to"] is False and b[rb]["undoes"] == rt
assert b[multi]["label"] == "two\nlines\tand a tab"
' out "$b_rt" "$b_rb" "$b_multi"
st 0 "$LB" show lg "$b_multi"
has_out "^label two\\\\nlines\\\\tand a tab$"
has_out "^batch $b_multi  .*  [0-9]* records\{0,1\}  -$"
st 0 "$LB" history lg t b
has_out "^batch $b_multi  .*  two\\\\nlines\\\\tand a tab$"
# rollback-to 0 (undoes 0) is told apart too
"$LB" init lz >/dev/null
"$LB" table create lz t >/dev/null
"$LB" put lz t a '"1"' >/dev/null
"$LB" rollback-to lz 0 >/dev/null 2>&1
st 0 "$LB" log lz --limit 1
has_out "rolls back to 0 (undid 1-2)"

# ---------------------------------------------------------------------------
section "stat after prune counts what remains"
"$LB" init sp --schema schema.json >/dev/null
"$LB" gen hearings --records 2000 --seed 9 >sp.jsonl
"$LB" import sp sp.jsonl >/dev/null
"$LB" checkpoint sp sp-ck >/dev/null
splast=$(last_batch sp)
st 0 "$LB" stat sp --json
cp out before.json
"$LB" log sp --json >log.json
st 0 "$LB" prune sp --before "$splast"
st 0 "$LB" stat sp --json
cp out after.json
py "stat after prune" '
import json, sys
b = json.load(open(sys.argv[1])); a = json.load(open(sys.argv[2]))
log = [json.loads(l) for l in open(sys.argv[3])]
p = int(sys.argv[4])
kept = [o for o in log if o["id"] >= p]
gone = [o for o in log if o["id"] < p]
assert a["pruned"] == p - 1 and b["pruned"] == 0
assert a["log_records"] == sum(o["records"] for o in kept), a
assert a["segments"] == sum(o["segments"] for o in kept), a
assert a["log_raw_bytes"] == sum(o["raw_bytes"] for o in kept), a
assert a["log_stored_bytes"] == sum(o["stored_bytes"] for o in kept), a
assert a["pruned_records"] == sum(o["records"] for o in gone), a
assert a["pruned_segments"] == sum(o["segments"] for o in gone), a
assert a["pruned_stored_bytes"] == sum(o["stored_bytes"] for o in gone), a
assert a["log_records"] + a["pruned_records"] == b["log_records"]
assert b["pruned_records"] == 0 and b["pruned_segments"] == 0
assert a["checkpoints"][0]["present"] is True
' before.json after.json log.json "$splast"
# the human form says the same
want=$(python3 -c '
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
p = int(sys.argv[2])
n = lambda v, one, many: "%d %s" % (v, one if v == 1 else many)
kept = [o for o in log if o["id"] >= p]
gone = [o for o in log if o["id"] < p]
print("log        %s in %s" % (n(sum(o["records"] for o in kept), "record", "records"),
      n(sum(o["segments"] for o in kept), "segment", "segments")))
print("pruned     %s, %s in %s (" % (n(len(gone), "batch", "batches"),
      n(sum(o["records"] for o in gone), "record", "records"),
      n(sum(o["segments"] for o in gone), "segment", "segments")))
' log.json "$splast")
st 0 "$LB" stat sp
eq "$(grep -E '^(log  |pruned  )' out | sed 's/(.*/(/')" "$want" "stat: the log and the pruned batches"
has_out "^batches    $splast (0 rolled back, 0 rollbacks, $((splast - 1)) pruned)$"
# a checkpoint whose directory went is marked
"$LB" checkpoint sp sp-ck2 >/dev/null
rm -rf sp-ck2
st 0 "$LB" stat sp
has_out "sp-ck2  (missing: no database there)$"
st 0 "$LB" stat sp --json
has_out '"present":false'

# ---------------------------------------------------------------------------
section "compact"
"$LB" init cp --schema schema.json >/dev/null
"$LB" gen hearings --records 20000 --seed 3 >cp.jsonl
"$LB" import cp cp.jsonl --nosync --batch-size 2000 >/dev/null
ckb=$("$LB" checkpoint cp cp-ck | sed -n 's/^checkpoint at batch \([0-9]*\).*/\1/p')
"$LB" prune cp --before "$ckb" >/dev/null
"$LB" export cp >cp-before.jsonl
"$LB" log cp --json >cp-log-before.json
size_before=$(stat -c %s cp/data.mdb)
st 0 "$LB" compact cp
has_out "^compacted cp at batch $ckb: .* -> .* given back)$"
no_err
size_after=$(stat -c %s cp/data.mdb)
[ "$size_after" -lt "$size_before" ] && ok || bad "compact: $size_before -> $size_after bytes"
"$LB" export cp >cp-after.jsonl
same cp-before.jsonl cp-after.jsonl
"$LB" log cp --json >cp-log-after.json
same cp-log-before.json cp-log-after.json
st 0 "$LB" verify cp --replay
has_out "^verify: ok$"
eq "$(ls -A . | grep -c '^\.cp\.compact-')" 0 "no temporary directory left"
eq "$(stat -c %h cp/data.mdb)" 1 "data.mdb has one name"
# the checkpoint the pruned log is replayed from stays registered
st 0 "$LB" stat cp --json
has_out "\"checkpoints\":\\[{\"batch\":$ckb,"
# writable and readable afterwards, by this and other processes
"$LB" put cp hearings X1 "$H1" >/dev/null
st 0 "$LB" get cp hearings X1
st 0 "$LB" compact cp --json
py "compact --json" '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["dir"] == "cp" and o["batch"] == int(sys.argv[2]) and o["checkpoints"] == 1, o
assert o["file_bytes"] > 0 and o["file_bytes_before"] >= o["file_bytes"], o
' out "$(last_batch cp)"
# deleted records give their pages back too
"$LB" export cp witnesses | sed 's/"value":.*/"delete":true}/' >cp-del.jsonl
"$LB" import cp cp-del.jsonl --nosync >/dev/null
s1=$(stat -c %s cp/data.mdb)
st 0 "$LB" compact cp
s2=$(stat -c %s cp/data.mdb)
[ "$s2" -lt "$s1" ] && ok || bad "compact after deletes: $s1 -> $s2 bytes"
st 0 "$LB" verify cp --replay
# refused while another process has it open; nothing changes
"$LB" export cp >cp-x.jsonl
sum1=$(cksum <cp/data.mdb)
{ sleep 3; } | "$LB" import cp - >/dev/null 2>&1 &
holder=$!
sleep 0.5
st 3 "$LB" compact cp
one_err "open in another process (pid [0-9]*): compact needs the database to itself"
eq "$(cksum <cp/data.mdb)" "$sum1" "a refused compact changes nothing"
wait "$holder"
st 0 "$LB" compact cp
# not a database: refused, nothing created
mkdir notdb
st 3 "$LB" compact notdb
one_err "no logbook database there"
eq "$(ls -A notdb)" "" "compact of an empty directory creates nothing"
st 2 "$LB" compact
# Processes that open the database while it is being compacted wait for
# it and then see the compacted file: readers in a loop, and a writer.
"$LB" init cc --schema schema.json >/dev/null
"$LB" gen hearings --records 60000 --seed 4 >cc.jsonl
"$LB" import cc cc.jsonl --nosync --batch-size 5000 >/dev/null
"$LB" checkpoint cc cc-ck >/dev/null
"$LB" prune cc --before "$(last_batch cc)" >/dev/null
printf '{"table":"hearings","key":"LATE","value":{"id":"LATE","title":"t","date":"2024-01-01","committee":"c","chamber":"House","congress":118}}\n' >late.jsonl
(
	i=0
	while [ ! -e stop ] && [ $i -lt 400 ]; do
		"$LB" stat cc --json >/dev/null 2>>readers.err || echo "reader failed" >>readers.err
		i=$((i + 1))
	done
) &
readers=$!
sleep 0.2
"$LB" compact cc >compact.out 2>compact.err &
compactor=$!
"$LB" import cc late.jsonl >late.out 2>&1
late_rc=$?
wait "$compactor"
compact_rc=$?
touch stop
wait "$readers"
eq "$late_rc" 0 "the import beside the compaction"
case "$compact_rc" in
0 | 3) ok ;; # 3: a reader or the import had it open first
*) bad "compact beside readers exited $compact_rc: $(cat compact.err)" ;;
esac
eq "$(cat readers.err 2>/dev/null)" "" "readers beside the compaction"
st 0 "$LB" get cc hearings LATE
st 0 "$LB" verify cc --replay
st 0 "$LB" compact cc
st 0 "$LB" verify cc --replay

# ---------------------------------------------------------------------------
section "verify: damage that keeps the database from opening"
cp -r sp-ck dmg0
for kind in empty short meta half; do
	rm -rf dmg && cp -r dmg0 dmg
	case $kind in
	empty) : >dmg/data.mdb ;;
	short) truncate -s 4096 dmg/data.mdb ;;
	meta) dd if=/dev/zero of=dmg/data.mdb bs=4096 count=2 conv=notrunc 2>/dev/null ;;
	half) truncate -s $(($(stat -c %s dmg/data.mdb) / 2)) dmg/data.mdb ;;
	esac
	st 1 "$LB" verify dmg
	has_out "^verify: FAILED$"
	one_err "dmg: damaged, it does not open"
	st 1 "$LB" verify dmg --replay --json
	py "verify --json ($kind)" '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["ok"] is False and o["opened"] is False and o["detail"], o
' out
done
st 0 "$LB" verify dmg0
st 0 "$LB" verify dmg0 --json
has_out '"ok":true,"opened":true'
st 3 "$LB" verify nodb-here
one_err "no logbook database there"

# ---------------------------------------------------------------------------
section "messages: the operator's words"
"$LB" init msg >/dev/null
"$LB" table create msg t >/dev/null
"$LB" put msg t a '"1"' >/dev/null
st 3 "$LB" prune msg --before 2
has_err "take one with 'logbook checkpoint'"
st 3 "$LB" replay msg msg-r --from no-such-checkpoint
lacks_err "LB_CREATE"
lacks_err "logbook init"
st 3 "$LB" checkpoint msg ""
one_err "empty"
st 3 "$LB" table create msg 'bad name'
st 3 "$LB" rollback msg 99
st 3 "$LB" rollback msg 1
st 0 "$LB" rollback msg 2 --dry-run
has_out "would write 1 record;"
st 0 "$LB" replay msg msg-r2 --to 2
has_out "(2 records applied)"
st 0 "$LB" replay msg msg-r3 --to 1
has_out "(1 record applied)"
st 0 "$LB" stat msg
has_out "^  t  *1 record (opaque)$"
st 0 "$LB" show msg 2
has_out "^batch 2  .*  1 record  -$"
st 0 "$LB" rollback msg 2
has_out "^rolled back batch 2 in batch 3 (1 record)$"
st 0 "$LB" stat msg
has_out "(1 rolled back, 1 rollback, 0 pruned)"
# Nothing the tool printed in this whole test names the C API or says
# "1 records".
if grep -E '(^|[^A-Za-z0-9_])(lb_[a-z]|LB_[A-Z]|MDB_[A-Z]|mdb_[a-z])' all.err all.out >names.txt; then
	bad "C names in messages: $(head -5 names.txt)"
else
	ok
fi
if grep -E '(^|[^0-9.])1 (records|batches|issues|segments|rollbacks|keys|conflicts|changes)([^A-Za-z]|$)' all.out all.err >plurals.txt; then
	bad "plurals: $(head -5 plurals.txt)"
else
	ok
fi

# ---------------------------------------------------------------------------
section "make install puts in place what the manual pages name"
# Every file a manual page names under FILES is installed where the page
# says: a dry run of the install target with a test prefix, then the
# page's paths with the same prefix.
if [ -f "$SRC/Makefile" ] && command -v make >/dev/null; then
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s -n -C "$SRC" install \
		PREFIX=/opt/lbtest DESTDIR="$T/dest" LB_NO_DEPS=1 \
		BUILD="${LB_BUILD:-build}" >install.txt 2>install.err
	for m in "$SRC"/man/*.1; do
		for f in $(sed -n '/^\.SH FILES/,/^\.SH /{s/^\.I \(\/[^ ]*\).*/\1/p}' "$m" | sed 's/\\-/-/g'); do
			rel=${f#/usr/local/share/doc/logbook/}
			[ "$rel" != "$f" ] || { bad "$m names $f, outside the documentation directory"; continue; }
			[ -f "$SRC/$rel" ] && ok || bad "$m names $rel, which the tree lacks"
			dir=${rel%/*}
			[ "$dir" = "$rel" ] && dir=
			if grep -q -- "$rel.*'$T/dest/opt/lbtest/share/doc/logbook/$dir/\{0,1\}'" install.txt; then
				ok
			else
				bad "make install does not install $rel into share/doc/logbook/$dir"
			fi
		done
	done
	grep -q "sed 's|/usr/local/share/doc/logbook|/opt/lbtest/share/doc/logbook|g'" install.txt &&
		ok || bad "the installed manual pages do not name the installed documents"
else
	ok
fi

lb_finish
