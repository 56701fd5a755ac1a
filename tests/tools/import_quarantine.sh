#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# import_quarantine.sh: `logbook import --on-error record` and reject files.
#
#   - 500,000 generated hearings with 0.1% broken records, in batches of
#     1000 and 10000: every record that is neither broken nor depends on a
#     broken one is committed, counted from the generator's own knowledge
#     (gen --truth), and committed + set aside = input lines; the committed
#     tables equal the input minus the set-aside lines imported in one go
#   - the reject file: one JSON line per line not committed, with its file,
#     line, reasons (a dependency names the line it needs) and the line
#     verbatim; lines that are not JSON as "raw" strings; in both modes
#   - --from-rejects: the fixed rejects load, and the database then equals
#     the fixed input imported at once
#   - issue lines name the input file (text and --json)
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/import_quarantine.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, python3, cmp.
set -u

LB=${LB_BIN:-build/logbook}
case "$LB" in
/*) ;;
*) LB=$PWD/$LB ;;
esac
if [ ! -x "$LB" ]; then
	echo "import_quarantine.sh: $LB is not an executable (build it with make)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-quarantine.XXXXXX") || exit 1
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
has_out() { if grep -q -- "$1" out; then ok; else bad "stdout lacks '$1': $(head -c 400 out)"; fi; }
has_err() { if grep -q -- "$1" err; then ok; else bad "stderr lacks '$1': $(head -c 400 err)"; fi; }
same() { if cmp -s "$1" "$2"; then ok; else bad "$1 and $2 differ: $(cmp "$1" "$2" 2>&1 | head -1)"; fi; }
eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', want '$2'"; fi; }
# num FIELD: the integer value of "FIELD": in out's last line.
num() { tail -n 1 out | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
# py SCRIPT ARGS...: a python check; its stdout explains a failure.
py() {
	local what=$1 msg
	shift
	if msg=$(python3 - "$@" 2>&1); then ok; else bad "$what: $msg"; fi
}

"$LB" gen schema >schema.json

# ---------------------------------------------------------------------------
section "500,000 records, 0.1% broken"
"$LB" gen hearings --records 500000 --bad-rate 0.001 --truth truth.txt >h.jsonl
lines=$(wc -l <h.jsonl)
aside=$(wc -l <truth.txt)
eq "$lines" 500000 "generated lines"
[ "$aside" -gt 500 ] && ok || bad "the generator broke only $aside records"
grep -q ' - [0-9]' truth.txt && ok || bad "no dependent record in the truth file"
for bs in 1000 10000; do
	"$LB" init q$bs --schema schema.json >/dev/null
	st 1 "$LB" import q$bs h.jsonl --on-error record --batch-size $bs \
		--nosync --json --reject-file rej$bs.jsonl
	cp out report$bs.jsonl
	eq "$(num records)" 500000 "batch size $bs: records"
	eq "$(num records_committed)" "$((lines - aside))" \
		"batch size $bs: committed = lines - broken - dependents"
	eq "$(num records_set_aside)" "$aside" "batch size $bs: set aside"
	eq "$(($(num records_committed) + $(num records_set_aside)))" "$lines" \
		"batch size $bs: committed + set aside = lines"
	eq "$(num batches_failed)" 0 "batch size $bs: every batch committed"
	has_err "$aside of 500000 records set aside"
	eq "$(wc -l <rej$bs.jsonl)" "$aside" "batch size $bs: reject lines"
	# The records in the tables are the committed ones.
	n=$("$LB" stat q$bs --json | grep -o '"records":[0-9]*' |
		cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
	eq "$n" "$((lines - aside))" "batch size $bs: records in the tables"
	# Every reject is a truth line, for the same reasons: its own issue
	# kind, and a dependency on the very line the generator broke.
	py "batch size $bs: rejects against the truth" truth.txt rej$bs.jsonl h.jsonl <<'EOF'
import json, sys
truth = {}
for l in open(sys.argv[1]):
    n, kind, dep = l.split()
    truth[int(n)] = (kind, None if dep == "-" else int(dep))
src = open(sys.argv[3], encoding="utf-8").read().split("\n")
seen = set()
for raw in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(raw)
    n = o["line"]
    assert o["file"] == "h.jsonl", o["file"]
    assert n in truth, "line %d set aside, not broken: %s" % (n, o)
    assert n not in seen, "line %d twice" % n
    seen.add(n)
    kind, dep = truth[n]
    kinds = [r["kind"] for r in o["reasons"]]
    deps = [r["depends_on"] for r in o["reasons"] if r["kind"] == "dependency"]
    if kind != "-":
        assert kind in kinds, (n, kind, kinds)
    else:
        assert set(kinds) == {"dependency"}, (n, kinds)
    assert deps == ([dep] if dep else []), (n, dep, deps)
    for r in o["reasons"]:
        assert set(r) >= {"kind", "table", "key", "field", "message"}, r
    # the record is the line, verbatim
    rec = raw[raw.index('"record":') + 9:].rstrip("\n")[:-1]
    assert rec == src[n - 1], (n, rec[:80])
missing = set(truth) - seen
assert not missing, "not set aside: %s" % sorted(missing)[:10]
EOF
done
# The tables hold exactly the input minus the set-aside lines.
awk 'NR == FNR { drop[$1] = 1; next } !(FNR in drop)' truth.txt h.jsonl >kept.jsonl
"$LB" init kept --schema schema.json >/dev/null
st 0 "$LB" import kept kept.jsonl --batch-size 10000000 --nosync
"$LB" export kept >kept.export
"$LB" export q1000 >q1000.export
"$LB" export q10000 >q10000.export
same q1000.export kept.export
same q10000.export kept.export
# Whole-batch validation (the default) commits far less of the same file.
"$LB" init whole --schema schema.json >/dev/null
st 1 "$LB" import whole h.jsonl --nosync --json
c=$(num records_committed)
[ "${c:-0}" -lt "$((lines - aside))" ] && ok ||
	bad "--on-error batch committed $c records, record mode $((lines - aside))"
eq "$(($(num records_committed) + $(num records_failed)))" "$lines" \
	"batch mode: committed + failed = lines"

# ---------------------------------------------------------------------------
section "rejects: format, both modes, issue lines"
H1='{"table":"hearings","key":"H1","value":{"id":"H1","title":"One","date":"2024-01-01","committee":"c","chamber":"House","congress":118}}'
H2bad='{"table":"hearings","key":"H2","value":{"id":"H2","title":"Two","committee":"c","chamber":"House","congress":118}}'
W1='{"table":"witnesses","key":"W1","value":{"id":"W1","hearing_id":"H1","name":"Ann"}}'
W2dep='{"table":"witnesses","key":"W2","value":{"id":"W2","hearing_id":"H2","name":"Bob"}}'
W3dangle='{"table":"witnesses","key":"W3","value":{"id":"W3","hearing_id":"NOPE","name":"Cy"}}'
D1dep='{"table":"documents","key":"D1","value":{"id":"D1","hearing_id":"H2","type":"t","url":"u"}}'
{
	echo "$H1"
	echo "$H2bad"
	echo "$W1"
	echo "$W2dep"
	echo '{"table":"hearings","key":"H1" oops'
	echo "$W3dangle"
	echo '{"table":"nope","key":"x","value":{}}'
	printf '{"table":"hearings","key":"\xff"}\n'
	echo "$H1"
	echo "$D1dep"
} >small.jsonl
"$LB" init s1 --schema schema.json >/dev/null
st 1 "$LB" import s1 small.jsonl --on-error record --batch-size 4 --reject-file s1.rej
has_out "^batch [0-9]* committed: lines 1-4, 2 records, 2 set aside$"
has_out "^  small.jsonl:2: format hearings H2 field date: "
has_out "^  small.jsonl:4: dependency witnesses W2 field hearing_id: .*line 2, which was set aside"
has_out "^10 records: 2 committed, 8 set aside (6 with issues, 2 depending on them)$"
st 0 "$LB" get s1 witnesses W1
st 1 "$LB" get s1 witnesses W2
py "small rejects" s1.rej small.jsonl <<'EOF'
import json, sys
rej = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
src = open(sys.argv[2], "rb").read().split(b"\n")
assert [o["line"] for o in rej] == [2, 4, 5, 6, 7, 8, 9, 10], [o["line"] for o in rej]
by = {o["line"]: o for o in rej}
kinds = {n: [r["kind"] for r in o["reasons"]] for n, o in by.items()}
assert kinds == {2: ["format"], 4: ["dependency"], 5: ["parse"],
                 6: ["foreign_key"], 7: ["table"], 8: ["parse"],
                 9: ["duplicate"], 10: ["dependency"]}, kinds
assert by[4]["reasons"][0]["depends_on"] == 2 and by[10]["reasons"][0]["depends_on"] == 2
assert by[4]["reasons"][0]["table"] == "witnesses" and by[4]["reasons"][0]["key"] == "W2"
assert by[4]["reasons"][0]["field"] == "hearing_id"
# JSON lines are the record itself; the others are text ("raw")
assert by[2]["record"]["key"] == "H2" and "raw" not in by[2]
assert by[5]["raw"] is True and by[5]["record"].encode() == src[4]
assert by[8]["raw"] is True and by[8]["record"] == {"base64": "eyJ0YWJsZSI6ImhlYXJpbmdzIiwia2V5Ijoi/yJ9"}
for o in rej:
    assert list(o) in (["file", "line", "reasons", "record"],
                       ["file", "line", "reasons", "raw", "record"]), list(o)
    assert o["file"] == "small.jsonl"
EOF
# JSON output names the file in every issue.
"$LB" init s2 --schema schema.json >/dev/null
st 1 "$LB" import s2 small.jsonl --on-error record --json
py "issues in --json name the file" out <<'EOF'
import json, sys
issues = [i for l in open(sys.argv[1]) for o in [json.loads(l)] if "batch" in o for i in o["issues"]]
assert len(issues) >= 8 and all(i["file"] == "small.jsonl" for i in issues), issues
assert any(i.get("depends_on") == 2 for i in issues)
EOF
# Batch mode: every line of a failed batch, the clean ones with a "batch"
# reason; issue lines name the file too.
"$LB" init s3 --schema schema.json >/dev/null
st 1 "$LB" import s3 small.jsonl --batch-size 5 --reject-file s3.rej
has_out "^  small.jsonl:2: format hearings H2"
py "batch-mode rejects" s3.rej <<'EOF'
import json, sys
rej = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert [o["line"] for o in rej] == list(range(1, 11)), [o["line"] for o in rej]
by = {o["line"]: o for o in rej}
assert [r["kind"] for r in by[1]["reasons"]] == ["batch"], by[1]
assert "lines 1-5" in by[1]["reasons"][0]["message"]
assert [r["kind"] for r in by[2]["reasons"]] == ["format"]
EOF

# ---------------------------------------------------------------------------
section "--from-rejects"
# Fix the rejects: the hearing gets its date, the dangling witness a
# hearing, the broken JSON line is written whole; the rest stays as it is.
python3 - s1.rej >s1.fixed <<'EOF'
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(l)
    if o["line"] == 2:
        o["record"]["value"]["date"] = "2024-01-02"
    elif o["line"] == 6:
        o["record"]["value"]["hearing_id"] = "H1"
    elif o["line"] == 5:
        o["record"] = '{"table":"hearings","key":"H5","value":{"id":"H5","title":"Five","date":"2024-01-05","committee":"c","chamber":"Senate","congress":118}}'
    print(json.dumps(o))
EOF
st 1 "$LB" import s1 s1.fixed --from-rejects --on-error record --reject-file s1b.rej
has_out "^8 records: 5 committed, 3 set aside (3 with issues, 0 depending on them)$"
py "what stays rejected" s1b.rej <<'EOF'
import json, sys
rej = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
# left: the unknown table, the non-UTF-8 line, the duplicate H1
assert [o["file"] for o in rej] == ["s1.fixed"] * 3, rej
assert sorted(r["kind"] for o in rej for r in o["reasons"]) == ["duplicate", "parse", "table"], rej
EOF
for k in "hearings H2" "hearings H5" "witnesses W2" "witnesses W3" "documents D1"; do
	st 0 "$LB" get s1 $k
done
# The same as importing the fixed input in one go.
python3 - small.jsonl >fixed.jsonl <<'EOF'
import sys
out = []
for n, l in enumerate(open(sys.argv[1], "rb").read().split(b"\n")[:-1], 1):
    if n == 2:
        # (member order as the fixed reject has it: the date last)
        l = l.replace(b'"congress":118}}', b'"congress":118,"date":"2024-01-02"}}')
    elif n == 6:
        l = l.replace(b'"NOPE"', b'"H1"')
    elif n == 5:
        l = b'{"table":"hearings","key":"H5","value":{"id":"H5","title":"Five","date":"2024-01-05","committee":"c","chamber":"Senate","congress":118}}'
    out.append(l)
sys.stdout.buffer.write(b"\n".join(out) + b"\n")
EOF
"$LB" init s4 --schema schema.json >/dev/null
st 1 "$LB" import s4 fixed.jsonl --on-error record
"$LB" export s1 >s1.export
"$LB" export s4 >s4.export
same s1.export s4.export
# Rejects of rejects, in batch mode, re-import the same way.
"$LB" init s5 --schema schema.json >/dev/null
st 1 "$LB" import s5 s1.rej --from-rejects --batch-size 100 --reject-file s5.rej
eq "$(wc -l <s5.rej)" 8 "batch mode from rejects: every line rejected again"
st 1 "$LB" import s5 s5.rej --from-rejects --on-error record
has_out "8 records: 1 committed"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
