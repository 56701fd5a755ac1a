#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# cli.sh: the `logbook` command-line tool, end to end, through its exit
# codes and output: every command, the bad inputs an operator meets, the
# export -> import round trip, and a 100,000-record import with broken
# records whose batches must add up exactly.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/cli.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, awk, cmp and python3 (for one
# binary patch, the corruption that verify must catch).
set -u

LB=${LB_BIN:-build/logbook}
case "$LB" in
/*) ;;
*) LB=$PWD/$LB ;;
esac
if [ ! -x "$LB" ]; then
	echo "cli.sh: $LB is not an executable (build it with make)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
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

# run CMD...: stdout to out, stderr to err, status to $rc.
run() {
	"$@" >out 2>err
	rc=$?
}
# st WANT CMD...: run and check the exit status.
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
has_out() { if grep -q -- "$1" out; then ok; else bad "stdout lacks '$1': $(head -c 400 out)"; fi; }
has_err() { if grep -q -- "$1" err; then ok; else bad "stderr lacks '$1': $(head -c 400 err)"; fi; }
no_err() { if [ ! -s err ]; then ok; else bad "stderr not empty: $(head -c 400 err)"; fi; }
# One clear line on stderr, starting with "logbook:" and naming $1.
one_err() {
	local n
	n=$(wc -l <err)
	if [ "$n" = 1 ] && grep -q "^logbook: " err && grep -q -- "$1" err; then
		ok
	else
		bad "want one stderr line naming '$1', got $n: $(head -c 400 err)"
	fi
}
same() { if cmp -s "$1" "$2"; then ok; else bad "$1 and $2 differ: $(cmp "$1" "$2" 2>&1 | head -1)"; fi; }
eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', want '$2'"; fi; }
# num FIELD: the integer value of "FIELD": in out's last line.
num() { tail -n 1 out | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
json_lines() {
	if python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if not isinstance(json.loads(line), dict):
        sys.exit(1)
' "$1"; then ok; else bad "$1 is not one JSON object per line"; fi
}

"$LB" gen schema >schema.json

# ---------------------------------------------------------------------------
section help
st 0 "$LB" help
has_out "import"
has_out "rollback-to"
st 0 "$LB" --version
has_out "^logbook [0-9]*\.[0-9]*\.[0-9]* (library"
st 2 "$LB"
st 2 "$LB" frobnicate
one_err "frobnicate"
st 0 "$LB" help import
has_out "usage: logbook import"
st 2 "$LB" help frobnicate
for c in init tables table import export get scan put del log show history \
	rollback rollback-to checkpoint replay verify prune stat gen; do
	st 0 "$LB" "$c" --help
	has_out "usage: logbook $c"
done
st 2 "$LB" init
one_err "missing arguments"
st 2 "$LB" log db --frob
one_err "'--frob'"
st 2 "$LB" log db --limit
one_err "needs a value"
st 2 "$LB" get a b c d
one_err "unexpected argument 'd'"

# ---------------------------------------------------------------------------
section init
st 0 "$LB" init db --schema schema.json
has_out "3 tables"
st 3 "$LB" init db
one_err "db"
echo '{"tables": [' >broken.json
st 3 "$LB" init db2 --schema broken.json
one_err "broken.json"
[ ! -e db2 ] && ok || bad "a failed init left db2 behind"
echo '{"tables": [{"name": "t", "fields": [{"name": "a", "type": "string"}]}]}' >badtype.json
st 3 "$LB" init db2 --schema badtype.json
one_err "unknown type"
echo '{"tables": [{"name": "w", "fields": [{"name": "h", "type": "str", "ref": "h"}]}, {"name": "h"}]}' >badref.json
st 3 "$LB" init db2 --schema badref.json
one_err "declared before"
echo '{"tables": [{"name": "t", "fields": [{"name": "a", "requried": true}]}]}' >typo.json
st 3 "$LB" init db2 --schema typo.json
one_err "requried"
st 3 "$LB" init db2 --schema missing.json
one_err "missing.json"
mkdir notempty && touch notempty/x
st 3 "$LB" init notempty
one_err "notempty"

# ---------------------------------------------------------------------------
section tables
st 0 "$LB" tables db
has_out "hearings"
has_out "witnesses .* 0 .*hearing_id str required -> hearings"
st 0 "$LB" tables db --json
json_lines out
eq "$(wc -l <out)" 3 "tables --json lines"
st 0 "$LB" tables db --schema
cp out schema2.json
st 0 "$LB" init db2 --schema schema2.json
st 0 "$LB" tables db2 --schema
same out schema2.json
st 3 "$LB" tables nodb
one_err "nodb"

# ---------------------------------------------------------------------------
section "table create"
st 0 "$LB" table create db blobs
has_out "opaque"
st 3 "$LB" table create db blobs
one_err "blobs"
echo '{"fields": []}' >open.json
st 0 "$LB" table create db misc --schema open.json
st 3 "$LB" table create db nosuch --schema schema.json
one_err "nosuch"
st 2 "$LB" table drop db blobs
st 0 "$LB" tables db
has_out "blobs .* opaque"
has_out "misc .* open, 0 fields"

# ---------------------------------------------------------------------------
section import
"$LB" gen hearings --records 3000 --seed 7 >h3k.jsonl
st 0 "$LB" import db h3k.jsonl
has_out "3 batches: 3 committed, 0 failed"
no_err
st 0 "$LB" import db2 h3k.jsonl --json --batch-size 500 --label day1
json_lines out
eq "$(grep -c '"success":true' out)" 6 "import --json batch objects"
eq "$(num records_committed)" 3000 "records_committed"
eq "$(num batches_failed)" 0 "batches_failed"
st 0 "$LB" log db2 --limit 1
has_out "day1"
# The same content again is refused (a run imported it): nothing written.
st 1 "$LB" import db h3k.jsonl
has_err "imported already: run 7 (h3k.jsonl"
has_err "--again"
# Insert mode again (--again): every record is now a duplicate.
st 1 "$LB" import db h3k.jsonl --json --again
eq "$(num batches_failed)" 3 "duplicates fail every batch"
has_out '"kind":"duplicate"'
one_err "3 of 3 batches"
# Upsert mode accepts them; update mode needs existing keys.
st 0 "$LB" import db h3k.jsonl --mode upsert --again
st 0 "$LB" import db h3k.jsonl --mode update --again
printf '{"table":"hearings","key":"NOPE","value":{"id":"NOPE","title":"t","date":"2024-01-01","committee":"c","chamber":"House","congress":118}}\n' >upd.jsonl
st 1 "$LB" import db upd.jsonl --mode update --json
has_out '"kind":"missing"'
# Records of --table keyed by --key; integer keys become decimal text.
printf '{"n":7,"x":1}\n{"n":8,"x":2}\n' >rec.jsonl
st 0 "$LB" import db rec.jsonl --table misc --key n
st 0 "$LB" get db misc 7
has_out '{"n":7,"x":1}'
# Delete lines.
printf '{"table":"misc","key":"8","delete":true}\n' >delete.jsonl
st 0 "$LB" import db delete.jsonl
st 1 "$LB" get db misc 8
# Stop on error: the first failed batch ends the import.
"$LB" gen hearings --records 3000 --seed 8 --bad-rate 0.01 >bad3k.jsonl
"$LB" init db3 --schema schema.json >/dev/null
st 1 "$LB" import db3 bad3k.jsonl --stop-on-error --batch-size 100 --json
eq "$(num batches_failed)" 1 "stop-on-error: one failed batch"
has_out '"stopped":true'
one_err "stop-on-error"
# Dry run commits nothing.
"$LB" init db4 --schema schema.json >/dev/null
st 0 "$LB" import db4 h3k.jsonl --dry-run
has_out "nothing was committed"
st 0 "$LB" log db4 --json
eq "$(wc -l <out)" 3 "dry run wrote no batch"
st 0 "$LB" import db4 - <h3k.jsonl
has_out "3000 committed"

# ---------------------------------------------------------------------------
section "bad input"
printf '{"table":"hearings","key":"A","value":{"id":"A"\n' >malformed.jsonl
st 1 "$LB" import db malformed.jsonl --json
has_out '"line":1,"kind":"parse"'
one_err "1 of 1 batches"
printf '[1,2]\n"text"\n42\n' >notobj.jsonl
st 1 "$LB" import db notobj.jsonl --json
eq "$(grep -o 'not a JSON object' out | wc -l)" 3 "non-object lines"
printf '{"title":"no id"}\n' >nokey.jsonl
st 1 "$LB" import db nokey.jsonl --table hearings --json
has_out '"kind":"key"'
has_out 'no key field \\"id\\"'
printf '{"table":"nope","key":"a","value":{}}\n' >notable.jsonl
st 1 "$LB" import db notable.jsonl --json
has_out "no table 'nope'"
st 3 "$LB" import db nokey.jsonl --table nope
one_err "'nope'"
st 3 "$LB" import nodb h3k.jsonl
one_err "nodb"
st 3 "$LB" import db nofile.jsonl
one_err "nofile.jsonl"
st 2 "$LB" import db h3k.jsonl --batch-size 0
one_err "--batch-size"
st 2 "$LB" import db h3k.jsonl --batch-size 20000000
one_err "--batch-size"
st 2 "$LB" import db h3k.jsonl --batch-size 12x
one_err "--batch-size"
st 2 "$LB" import db h3k.jsonl --mode sideways
one_err "--mode"
st 2 "$LB" import db h3k.jsonl --frobnicate
one_err "--frobnicate"
# Binary garbage (NUL bytes, invalid UTF-8), deterministic.
LC_ALL=C awk 'BEGIN { srand(3); for (i = 0; i < 200000; i++) printf "%c", int(rand() * 256) }' >garbage.bin
st 1 "$LB" import db - --json <garbage.bin
eq "$(num records_failed)" "$(num records)" "garbage: every record in a failed batch"
eq "$(num batches_committed)" 0 "garbage: no batch committed"
# A 100 MB line: refused with its line number, the next line still loads.
{
	printf '{"id":"'
	head -c 100000000 /dev/zero | tr '\0' a
	printf '"}\n{"id":"small","title":"t","date":"2024-01-01","committee":"c","chamber":"House","congress":118}\n'
} >huge.jsonl
st 1 "$LB" import db huge.jsonl --table hearings --batch-size 1 --json
has_out '"line":1,"kind":"parse"'
has_out 'longer than 64 MiB'
eq "$(num records_committed)" 1 "the line after the huge one"
rm -f huge.jsonl
# A value over the library's limit.
{
	printf '{"id":"big","title":"'
	head -c 17000000 /dev/zero | tr '\0' b
	printf '"}\n'
} >bigval.jsonl
st 1 "$LB" import db bigval.jsonl --table misc --json
has_out '"kind":"value"'
rm -f bigval.jsonl
# A long line, read in many pieces, loads whole.
{
	printf '{"id":"long","s":"'
	head -c 5000000 /dev/zero | tr '\0' c
	printf '"}\n'
} >long.jsonl
st 0 "$LB" import db long.jsonl --table misc
"$LB" get db misc long >out
eq "$(wc -c <out)" 5000021 "the long value"
rm -f long.jsonl
# Blank lines are not records.
printf '\n\n   \n' | "$LB" import db - --json >out 2>err
eq "$(num records)" 0 "blank lines"
st 2 "$LB" gen hearings --bad-rate 2
one_err "--bad-rate"
st 2 "$LB" gen hearings --days 2 --day 3
st 2 "$LB" gen nonsense

# ---------------------------------------------------------------------------
section "get scan put del"
st 0 "$LB" get db hearings HRG-001-000000
has_out '"id":"HRG-001-000000"'
st 0 "$LB" get db hearings HRG-001-000000 --json
has_out '^{"table":"hearings","key":"HRG-001-000000","value":{'
st 1 "$LB" get db hearings NOPE
one_err "NOPE"
st 3 "$LB" get db nope X
one_err "'nope'"
st 0 "$LB" scan db witnesses --prefix WIT-001-000001 --limit 3
eq "$(wc -l <out)" 3 "scan --limit"
has_out "^WIT-001-000001"
st 0 "$LB" scan db hearings --json --limit 2
json_lines out
H='{"id":"X1","title":"A hearing","date":"2024-01-01","committee":"c","chamber":"House","congress":118}'
st 0 "$LB" put db hearings X1 "$H"
has_out "committed batch"
st 1 "$LB" put db hearings X1 "$H" --mode insert
one_err "X1"
st 1 "$LB" put db hearings X2 '{"id":"X2"}'
one_err "X2"
has_out "missing required field"
st 1 "$LB" put db hearings X2 '{"id":"X2"}' --json
has_out '"success":false'
st 2 "$LB" put db hearings X2 '{"id":'
one_err "JSON"
st 0 "$LB" put db witnesses W1 '{"id":"W1","hearing_id":"X1","name":"N"}'
st 1 "$LB" put db witnesses W2 '{"id":"W2","hearing_id":"NOPE","name":"N"}'
has_out "foreign_key"
st 1 "$LB" del db hearings X1
one_err "X1"
st 0 "$LB" del db witnesses W1
st 0 "$LB" del db hearings X1
st 1 "$LB" del db hearings X1
one_err "X1"
st 0 "$LB" put db blobs AP8= '"binary key"' --base64-key
st 0 "$LB" get db blobs AP8= --base64-key --json
has_out '"key":{"base64":"AP8="},"value":"binary key"'
st 2 "$LB" get db blobs '%%%' --base64-key

# ---------------------------------------------------------------------------
section "log show history"
st 0 "$LB" log db
has_out "BATCH"
has_out "create table hearings"
st 0 "$LB" log db --json --limit 2
eq "$(wc -l <out)" 2 "log --limit"
json_lines out
last=$(head -1 out | grep -o '"id":[0-9]*' | cut -d: -f2)
st 0 "$LB" log db --json --since $((last - 1))
eq "$(wc -l <out)" 1 "log --since"
st 0 "$LB" show db 1
has_out "table  *hearings"
first=$("$LB" log db --json | grep '"label":"import h3k.jsonl from line 1"' |
	tail -n 1 | grep -o '"id":[0-9]*' | cut -d: -f2)
st 0 "$LB" show db "$first" --json --limit 2
json_lines out
eq "$(wc -l <out)" 3 "show: header and 2 changes"
has_out '"op":"put","table":"hearings"'
st 3 "$LB" show db 999999
one_err "999999"
st 2 "$LB" show db zero
"$LB" put db hearings X5 "$H" >/dev/null
"$LB" put db hearings X5 "${H/A hearing/Renamed}" >/dev/null
st 0 "$LB" history db hearings X5 --json
eq "$(wc -l <out)" 2 "history: two changes"
json_lines out
head -1 out | grep -q 'Renamed' && ok || bad "history is not newest first"
st 0 "$LB" history db hearings NEVER
has_out "no changes"
st 3 "$LB" history db nope X

# ---------------------------------------------------------------------------
section "export round trip"
cat >mixed.jsonl <<'EOF'
{"table":"misc","key":"k1","value":{"f":0.1,"g":1e300,"h":-0.0,"i":-9223372036854775808,"a":[1,[2,{"x":null}]],"t":true}}
{"table":"misc","key":42,"value":{"s":"caf\u00e9 \ud83d\ude00 \"q\" \\ \n\t\u0001","b":{"base64":"AAEC/w=="}}}
{"table":"misc","key":{"base64":"/w=="},"value":{}}
{"table":"misc","key":"ключ","value":{"big":1.5e-300,"e":[],"m":{}}}
{"table":"blobs","key":"t","value":"plain text"}
{"table":"blobs","key":"b","value":{"base64":"AP8A"}}
{"table":"blobs","key":"j","value":{"a":1,"b":[true,null]}}
{"table":"blobs","key":"n","value":12}
EOF
st 0 "$LB" import db mixed.jsonl
st 0 "$LB" get db blobs j
has_out '"{\\"a\\":1,\\"b\\":\[true,null\]}"'
"$LB" tables db --schema >rt-schema.json
st 0 "$LB" export db
cp out export1.jsonl
json_lines export1.jsonl
st 0 "$LB" init rt --schema rt-schema.json
st 0 "$LB" import rt export1.jsonl
st 0 "$LB" export rt
cp out export2.jsonl
same export1.jsonl export2.jsonl
st 0 "$LB" export db misc
eq "$(wc -l <out)" "$(grep -c '"table":"misc"' export1.jsonl)" "export of one table"
st 3 "$LB" export db nope
one_err "nope"

# ---------------------------------------------------------------------------
section "rollback"
"$LB" init rb --schema schema.json >/dev/null
printf '{"table":"hearings","key":"R1","value":{"id":"R1","title":"one","date":"2024-01-01","committee":"c","chamber":"House","congress":118}}\n' >r1.jsonl
printf '{"table":"hearings","key":"R2","value":{"id":"R2","title":"two","date":"2024-01-02","committee":"c","chamber":"Senate","congress":118}}\n' >r2.jsonl
sed 's/"one"/"one, revised"/' r1.jsonl >r1b.jsonl
# The first import creates the table of runs (logbook.runs) in batch 4.
"$LB" import rb r1.jsonl >/dev/null # batch 5
"$LB" export rb >at5.jsonl
"$LB" import rb r2.jsonl >/dev/null                 # batch 6
"$LB" import rb r1b.jsonl --mode upsert >/dev/null # batch 7
st 1 "$LB" rollback rb 5
has_out "conflict: hearings R1 was changed by batch 7"
one_err "--cascade"
has_err "batch 7"
st 1 "$LB" rollback rb 5 --json
has_out '"conflicting_batches":\[7\]'
st 0 "$LB" rollback rb 5 --cascade --dry-run
has_out "dry run"
st 0 "$LB" log rb --json --limit 1
has_out '"id":7'
st 2 "$LB" rollback rb 5 --cascade --force
st 0 "$LB" rollback rb 6
has_out " in batch 8 "
st 1 "$LB" get rb hearings R2
st 0 "$LB" rollback rb 5 --cascade
st 1 "$LB" get rb hearings R1
st 0 "$LB" log rb
has_out "rolled back by"
st 3 "$LB" rollback rb 999
one_err "999"
"$LB" init rt2 --schema schema.json >/dev/null
"$LB" import rt2 r1.jsonl >/dev/null # batch 5 (4: logbook.runs)
"$LB" export rt2 >at5.jsonl
"$LB" import rt2 r2.jsonl >/dev/null
"$LB" import rt2 r1b.jsonl --mode upsert >/dev/null
st 0 "$LB" rollback-to rt2 5
has_out " in batch 8 "
"$LB" export rt2 >now.jsonl
same now.jsonl at5.jsonl
st 3 "$LB" rollback-to rt2 99
one_err "99"

# ---------------------------------------------------------------------------
section "rollback --cascade: the dry run tells the real outcome"
# docs/ROLLBACK.md: a batch that a rollback took away stays away. Batch 2:
# k=1; 3: j=1; 4: k=2; 5: the table of import runs (logbook.runs); 6: j=2
# k=3 and its run's record; a cascade of 3 undoes 6 and 3; then a
# cascade of 4 undoes 4 alone (k=1, j stays absent), and its dry run says
# the same: exit status, record count, conflicts, and the batches it
# would undo (the library's res->undone), "undone" in JSON.
# marks DIR: "id:rolled_back_by" of every batch, oldest first.
marks() {
	"$LB" log "$1" --json | python3 -c '
import json, sys
b = [json.loads(l) for l in sys.stdin]
print(" ".join("%d:%d" % (o["id"], o["rolled_back_by"] or 0) for o in sorted(b, key=lambda o: o["id"])))'
}
# outcome FILE: what a dry run and the real call must agree on, in the
# human form: the record count and every conflict or issue line.
outcome() {
	head -n 1 "$1" | grep -o '[0-9]* records\{0,1\}'
	grep -E '^(conflict|issue|foreign key): |^\.\.\. and ' "$1"
}
"$LB" init ca >/dev/null
"$LB" table create ca t >/dev/null # batch 1
"$LB" put ca t k '"1"' >/dev/null  # 2
"$LB" put ca t j '"1"' >/dev/null  # 3
"$LB" put ca t k '"2"' >/dev/null  # 4
printf '{"table":"t","key":"j","value":"2"}\n{"table":"t","key":"k","value":"3"}\n' >ca5.jsonl
"$LB" import ca ca5.jsonl --mode upsert >/dev/null # 5 (logbook.runs), 6
eq "$(marks ca)" "1:0 2:0 3:0 4:0 5:0 6:0" "marks before the cascades"
st 0 "$LB" rollback ca 3 --cascade --dry-run
cp out dry.txt
st 0 "$LB" rollback ca 3 --cascade
no_err
has_out "^rolled back batch 3 in batch 7 (4 records)$"
has_out "^undid batches 6, 3$"
eq "$(outcome dry.txt)" "$(outcome out)" "cascade of 3: dry run and real call"
eq "$(marks ca)" "1:0 2:0 3:7 4:0 5:0 6:7 7:0" "marks after the cascade of 3"
st 0 "$LB" rollback ca 4 --dry-run
has_out "would write 1 record;"
rm -rf ca-json
cp -r ca ca-json # the same history, for the JSON forms
st 0 "$LB" rollback ca 4 --cascade --dry-run
no_err
has_out "would write 1 record;"
cp out dry.txt
cp err dry.err
eq "$(marks ca)" "1:0 2:0 3:7 4:0 5:0 6:7 7:0" "the dry run marks nothing"
st 0 "$LB" rollback ca 4 --cascade
no_err
has_out "^rolled back batch 4 in batch 8 (1 record)$"
has_out "^undid batch 4$"
eq "$(outcome dry.txt)" "$(outcome out)" "cascade of 4: dry run and real call"
same dry.err err
eq "$(marks ca)" "1:0 2:0 3:7 4:8 5:0 6:7 7:0 8:0" "marks after the cascade of 4"
st 0 "$LB" get ca t k
has_out '^"1"$'
st 1 "$LB" get ca t j
st 0 "$LB" verify ca --replay
st 0 "$LB" rollback ca-json 4 --cascade --dry-run --json
cp out dry.json
st 0 "$LB" rollback ca-json 4 --cascade --json
cp out real.json
if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
same = ("success", "batch", "records", "error", "conflicting_batches", "issues")
assert all(d[k] == r[k] for k in same), [(k, d[k], r[k]) for k in same]
assert d["success"] and d["records"] == 1 and not d["issues"]
assert d["dry_run"] and d["new_batch"] is None and d["undone"] == [4]
assert not r["dry_run"] and r["new_batch"] == 8 and r["undone"] == [4]
' dry.json real.json; then ok; else bad "JSON dry run and real call differ: $(cat dry.json real.json)"; fi
eq "$(marks ca-json)" "$(marks ca)" "marks after the JSON forms"

# ---------------------------------------------------------------------------
section "checkpoint replay verify prune stat"
"$LB" init cp --schema schema.json >/dev/null
"$LB" gen hearings --records 2000 --seed 5 >c2k.jsonl
head -1000 c2k.jsonl >c1.jsonl
tail -n 1000 c2k.jsonl >c2.jsonl
"$LB" import cp c1.jsonl >/dev/null # batch 5 (4: logbook.runs)
"$LB" export cp >cp5.jsonl
st 0 "$LB" checkpoint cp ck5
has_out "batch 5"
st 3 "$LB" checkpoint cp ck5
one_err "ck5"
"$LB" import cp c2.jsonl >/dev/null # batch 6
"$LB" export cp >cp6.jsonl
st 0 "$LB" replay cp r5 --to 5
"$LB" export r5 >out
same out cp5.jsonl
st 0 "$LB" replay cp r6 --from ck5
"$LB" export r6 >out
same out cp6.jsonl
st 3 "$LB" replay cp r6
one_err "r6"
st 0 "$LB" verify cp
has_out "verify: ok"
st 0 "$LB" verify cp --replay --json
has_out '"ok":true'
st 0 "$LB" stat cp
has_out "checkpoints 1"
has_out "ratio"
st 0 "$LB" stat cp --json
json_lines out
st 0 "$LB" prune cp --before 6
st 2 "$LB" prune cp
st 3 "$LB" show cp 5
one_err "batch 5"
st 0 "$LB" history cp hearings HRG-001-000000 --json
has_out '{"batch":5,"time":"[^"]*","pruned":true}'
st 0 "$LB" stat cp
has_out "5 pruned"
st 0 "$LB" verify cp
# Damage one log segment: verify must say no (exit 1), naming the batch.
# A checkpoint is compacted: no stale copies of pages to hit instead.
cp -r ck5 bad
python3 - bad/data.mdb <<'EOF'
import sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
# Segments start with the magic 0x89 'L' 'B' 'W'; the last one is the
# largest batch's. Flip a payload byte well past its 24-byte header.
at = data.rfind(b"\x89LBW")
if at < 0:
    sys.exit("no segment found")
data[at + 40] ^= 0xFF
open(p, "wb").write(data)
EOF
st 1 "$LB" verify bad
one_err "verification failed"

# ---------------------------------------------------------------------------
section "generator"
"$LB" gen hearings --records 500 --seed 3 >g1
"$LB" gen hearings --records 500 --seed 3 >g2
same g1 g2
"$LB" gen hearings --records 500 --seed 4 >g3
cmp -s g1 g3 && bad "another seed gave the same data" || ok
eq "$(wc -l <g1)" 500 "gen --records"
"$LB" gen hearings --records 400 --days 3 >all3
"$LB" gen hearings --records 400 --days 3 --day 1 >d1
"$LB" gen hearings --records 400 --days 3 --day 2 >d2
"$LB" gen hearings --records 400 --days 3 --day 3 >d3
cat d1 d2 d3 >cat3
same all3 cat3
"$LB" init days --schema schema.json >/dev/null
st 0 "$LB" import days d1
st 0 "$LB" import days d2 --mode upsert --allow-repeats
has_out "400 committed"
grep -q '(revised)' d2 && ok || bad "day 2 revises no hearing"

# ---------------------------------------------------------------------------
section "100k import"
"$LB" gen hearings --records 100000 --seed 11 --bad-rate 0.0003 >big.jsonl
"$LB" init big --schema schema.json >/dev/null
st 1 "$LB" import big big.jsonl --json --nosync
cp out big-report.jsonl
failed=$(num batches_failed)
[ "${failed:-0}" -gt 0 ] && ok || bad "no batch failed: the test proves nothing"
eq "$(num records_committed)" "$(grep '"success":true' big-report.jsonl | grep -o '"records":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')" "committed records"
sum=$(grep '"batch":' big-report.jsonl | grep -o '"records":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
eq "$sum" 100000 "committed + failed batch records = input lines"
c=$(num records_committed)
f=$(num records_failed)
eq "$((${c:-0} + ${f:-0}))" "$(wc -l <big.jsonl)" "summary adds up"
# Every issue names an input line inside its batch.
python3 - big-report.jsonl <<'EOF' && ok || bad "issues outside their batch's lines"
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "batch" not in o:
        continue
    for i in o["issues"]:
        if i["line"] is None or not o["first_line"] <= i["line"] <= o["last_line"]:
            sys.exit(1)
EOF
# The input minus the failed batches, imported in one go, gives the same
# tables as the import that skipped them.
grep '"success":false' big-report.jsonl | grep -o '"first_line":[0-9]*,"last_line":[0-9]*' |
	tr -c '0-9\n' ' ' | awk '{ print $1, $2 }' >failed-ranges
awk 'NR == FNR { lo[NR] = $1; hi[NR] = $2; n = NR; next }
	{ for (i = 1; i <= n; i++) if (FNR >= lo[i] && FNR <= hi[i]) next; print }' \
	failed-ranges big.jsonl >kept.jsonl
"$LB" init kept --schema schema.json >/dev/null
st 0 "$LB" import kept kept.jsonl --batch-size 10000000 --nosync
"$LB" export big >big-export.jsonl
"$LB" export kept >kept-export.jsonl
same big-export.jsonl kept-export.jsonl
# A dry run on an empty copy predicts exactly which batches fail.
"$LB" init dry --schema schema.json >/dev/null
"$LB" import dry big.jsonl --json --dry-run >dry-report.jsonl 2>/dev/null
grep -o '"batch":[0-9]*,"success":[a-z]*' big-report.jsonl >want
grep -o '"batch":[0-9]*,"success":[a-z]*' dry-report.jsonl >got
same got want
run "$LB" log dry --json
eq "$(wc -l <out)" 3 "the dry run committed nothing"
# No progress bar when stderr is not a terminal.
run "$LB" import dry c1.jsonl
no_err

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
