#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# feed.sh: the log as a feed from the command line:
#   1. changes: one JSON line per record, in log order, with batch, label,
#      op (insert/update/delete/table), key, before, after and undoes;
#      --since, --until and --table select;
#   2. get --as-of and export --as-of equal get and export of a replay to
#      that batch, for every batch of a history with a rollback;
#   3. diff lists the keys that differ, in key order, both ways;
#   4. changes --follow and log --follow print batches another process
#      commits, and end with exit 0 on SIGINT;
#   5. changes --follow --consumer killed with SIGKILL resumes after the
#      last batch it acknowledged: the output, with the one batch a kill may
#      repeat removed, is exactly `changes`;
#   6. consumers: listing, prune refused while a consumer lags, limits,
#      a lost consumer, --drop.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/feed.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup feed feed
# the follow processes still running at exit are killed outright
bg_signal=KILL

# wait_for FILE PATTERN: up to 10 s for PATTERN to appear in FILE
wait_for() {
	local i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
	return 0
}

# ---------------------------------------------------------------------------
section "changes"
cat >s.json <<'EOF'
{"tables": [{"name": "h", "fields": [
  {"name": "id", "type": "str", "required": true},
  {"name": "n", "type": "int"}]}]}
EOF
"$LB" init db --schema s.json >/dev/null
"$LB" table create db o >/dev/null                   # 2
"$LB" put db h a '{"id":"a","n":1}' >/dev/null       # 3
"$LB" put db o k '"x"' >/dev/null                    # 4
"$LB" put db h a '{"id":"a","n":2}' >/dev/null       # 5
"$LB" put db h b '{"id":"b"}' >/dev/null             # 6
"$LB" del db o k >/dev/null                          # 7
"$LB" rollback db 5 >/dev/null                       # 8
"$LB" put db o m '"y"' >/dev/null                    # 9
st 0 "$LB" changes db
eq "$(wc -l <out)" 9 "records"
eq "$(sed -n 1p out | grep -c '"batch":1,.*"op":"table","table":"h","key":null,"before":null')" 1 "table line"
has_out '"batch":3,"time":"[^"]*","label":"put h a","op":"insert","table":"h","key":"a","before":null,"after":{"id":"a","n":1},"undoes":null}'
has_out '"batch":5,.*"op":"update","table":"h","key":"a","before":{"id":"a","n":1},"after":{"id":"a","n":2}'
has_out '"batch":7,.*"op":"delete","table":"o","key":"k","before":"x","after":null'
has_out '"batch":8,.*"op":"update","table":"h","key":"a","before":{"id":"a","n":2},"after":{"id":"a","n":1},"undoes":5}'
# log order
eq "$(grep -o '"batch":[0-9]*' out | tr -d '"batch:' | tr '\n' ' ')" "1 2 3 4 5 6 7 8 9 " "batch order"
st 0 "$LB" changes db --since 4 --until 7
eq "$(grep -o '"batch":[0-9]*' out | tr -d '"batch:' | tr '\n' ' ')" "5 6 7 " "since/until"
st 0 "$LB" changes db --table o
eq "$(wc -l <out)" 4 "table o records"
st 0 "$LB" changes db --since 9
eq "$(wc -c <out)" 0 "nothing after the last"
st 2 "$LB" changes db --since x

# ---------------------------------------------------------------------------
section "as-of against replay"
for n in 1 2 3 4 5 6 7 8 9; do
	"$LB" replay db "r$n" --to "$n" >/dev/null 2>&1 || bad "replay to $n"
	for tk in "h a" "h b" "o k" "o m"; do
		set -- $tk
		"$LB" get "r$n" "$1" "$2" >want 2>/dev/null
		w=$?
		"$LB" get db "$1" "$2" --as-of "$n" >got 2>/dev/null
		g=$?
		# a table that did not exist yet: the replay says so (3)
		[ $w = 3 ] && w=1
		eq "$g" "$w" "get $1 $2 --as-of $n status"
		same got want
	done
	for t in h o; do
		"$LB" export "r$n" "$t" >want 2>/dev/null || : >want
		"$LB" export db "$t" --as-of "$n" >got 2>err || bad "export $t --as-of $n: $(cat err)"
		same got want
	done
done
st 3 "$LB" get db h a --as-of 99
st 3 "$LB" export db h --as-of 99

# ---------------------------------------------------------------------------
section "diff"
st 0 "$LB" diff db 2 9 --json
eq "$(wc -l <out)" 3 "differences 2..9"
eq "$(sed -n 1p out)" '{"op":"insert","table":"h","key":"a","before":null,"after":{"id":"a","n":1}}' "first"
eq "$(sed -n 2p out)" '{"op":"insert","table":"h","key":"b","before":null,"after":{"id":"b"}}' "second"
eq "$(sed -n 3p out)" '{"op":"insert","table":"o","key":"m","before":null,"after":"y"}' "third"
st 0 "$LB" diff db 9 2 --json
eq "$(sed -n 3p out)" '{"op":"delete","table":"o","key":"m","before":"y","after":null}' "reversed"
st 0 "$LB" diff db 4 4
eq "$(wc -c <out)" 0 "same batch"
st 0 "$LB" diff db 0 1 --json
has_out '"op":"table","table":"h"'
st 3 "$LB" diff db 1 99

# ---------------------------------------------------------------------------
section "follow"
"$LB" changes db --since 9 --follow >follow.out 2>follow.err &
fp=$!
"$LB" log db --since 9 --follow --json >logf.out 2>logf.err &
lp=$!
bg="$fp $lp"
sleep 0.3
"$LB" put db o f1 '"1"' >/dev/null
"$LB" put db o f2 '"2"' >/dev/null
wait_for follow.out '"key":"f2"' || bad "changes --follow did not print batch 11"
wait_for logf.out '"id":11' || bad "log --follow did not print batch 11"
kill -INT $fp $lp
wait $fp
eq "$?" 0 "changes --follow exit on SIGINT"
wait $lp
eq "$?" 0 "log --follow exit on SIGINT"
bg=""
eq "$(grep -c . follow.out)" 2 "followed records"
eq "$(grep -o '"id":[0-9]*' logf.out | tr '\n' ' ')" '"id":10 "id":11 ' "followed batches"

# ---------------------------------------------------------------------------
section "consumer killed and resumed"
: >c.out
for round in 1 2 3 4; do
	"$LB" changes db --follow --consumer c1 >>c.out 2>c.err &
	cp=$!
	bg="$cp"
	for i in 1 2 3; do "$LB" put db o "c$round-$i" "\"$i\"" >/dev/null; done
	wait_for c.out "\"key\":\"c$round-3\"" || bad "round $round: not followed"
	kill -9 $cp
	wait $cp 2>/dev/null
	bg=""
done
"$LB" changes db --consumer c1 >>c.out 2>c.err || bad "final consumer run: $(cat c.err)"
"$LB" changes db >all.out
# a kill between a batch's lines and its acknowledgement repeats that
# batch, at most once per kill: drop exact repeats of earlier lines
awk '!seen[$0]++' c.out >c.dedup
same c.dedup all.out
run "$LB" consumers db --json
has_out '"name":"c1","acked":23'

# ---------------------------------------------------------------------------
section "consumers and prune"
"$LB" checkpoint db ck >/dev/null
"$LB" put db o p1 '"1"' >/dev/null                  # 24
st 0 "$LB" changes db --consumer slow --until 5
st 3 "$LB" prune db --before 20
has_err "slow"
st 0 "$LB" consumers db
has_out "slow"
st 0 "$LB" consumers db --max-lag 10
st 0 "$LB" prune db --before 20
st 3 "$LB" changes db --consumer slow
has_err "lost"
run "$LB" consumers db --json
has_out '"name":"slow","acked":5,"time":"[^"]*","lost":true'
st 0 "$LB" consumers db --drop slow
st 3 "$LB" consumers db --drop slow
st 0 "$LB" consumers db --max-lag 0
st 3 "$LB" get db o k --as-of 5 # its value then is in pruned batch 7
has_err "pruned"
st 1 "$LB" get db o p1 --as-of 23
st 0 "$LB" get db o p1 --as-of 24
has_out '"1"'


lb_finish
