#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# import_input.sh: what `logbook import` makes of its input, line by line.
#
#   - a UTF-8 byte-order mark starting the file is skipped (not at the
#     start of a later line, nor on stdin's second line)
#   - a line that is not UTF-8 is a parse issue naming the first bad byte
#     and, when they can be read, its table and key (text and --json),
#     in batch and record mode; nothing crashes and nothing else is lost
#   - --mode upsert: a key repeated in one input batch is a DUPLICATE issue
#     naming the line it repeats, unless --allow-repeats (the last line
#     wins); repeats across batches are no issue; record mode commits the
#     first and sets the repeat aside; --allow-repeats needs upsert
#   - text output names each committed batch by its id in the database
#     ("batch 7 committed: lines 1-500, 500 records")
#   - --dry-run reports the issues a real import reports, field for field
#     and word for word, for every schema rule (enum, pattern, format,
#     min/max, nullable, key_field, closed, required, max_len), records
#     breaking several rules at once, duplicates and missing keys
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/import_input.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash and python3.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup import_input input

cat >schema.json <<'EOF'
{"tables": [
  {"name": "h", "closed": true, "key_field": "id", "fields": [
    {"name": "id", "type": "str", "required": true, "max_len": 8,
     "pattern": "H[0-9]+"},
    {"name": "kind", "type": "str", "nullable": true,
     "enum": ["open", "closed"]},
    {"name": "date", "type": "str", "format": "date"},
    {"name": "at", "type": "str", "format": "date-time"},
    {"name": "n", "type": "int", "min": 1, "max": 10},
    {"name": "title", "type": "str", "max_len": 5}]}
]}
EOF
rec() { printf '{"table":"h","key":"%s","value":{"id":"%s"%s}}\n' "$1" "$1" "${2:-}"; }

# ---------------------------------------------------------------------------
section "byte-order mark"
"$LB" init b1 --schema schema.json >/dev/null
{ printf '\xef\xbb\xbf'; rec H1; rec H2; } >bom.jsonl
st 0 "$LB" import b1 bom.jsonl
has_out "^batch [0-9]* committed: lines 1-2, 2 records$"
st 0 "$LB" get b1 h H1
# only at the start: a mark on a later line is a parse issue
{ rec H3; printf '\xef\xbb\xbf'; rec H4; } >bom2.jsonl
st 1 "$LB" import b1 bom2.jsonl --on-error record
has_out "^  bom2.jsonl:2: parse"
st 0 "$LB" get b1 h H3
# stdin, and --table records
printf '\xef\xbb\xbf{"id":"H5"}\n{"id":"H6"}\n' | "$LB" import b1 - --table h >out 2>err
eq "$?" 0 "a BOM on stdin with --table"
st 0 "$LB" get b1 h H5

# ---------------------------------------------------------------------------
section "not UTF-8"
"$LB" init u1 --schema schema.json >/dev/null
{
	rec H1
	printf '{"table":"h","key":"H2","value":{"id":"H2","title":"a\xffb"}}\n'
	printf '{"table":"h","key":"H\xfe3","value":{"id":"H3"}}\n'
	printf '\xc3\x28\n'
	rec H4
} >bad8.jsonl
st 1 "$LB" import u1 bad8.jsonl --on-error record
has_out "^  bad8.jsonl:2: parse h H2: not UTF-8: byte 0xFF at column 54"
has_out "^  bad8.jsonl:3: parse h: not UTF-8: byte 0xFE at column 22"
has_out "^  bad8.jsonl:4: parse: not UTF-8: byte 0xC3 at column 1"
st 0 "$LB" get u1 h H1
st 0 "$LB" get u1 h H4
st 1 "$LB" get u1 h H2
st 1 "$LB" import u1 bad8.jsonl --json --again
pyin "--json names the line, table and key" out <<'EOF'
import json, sys
o = [json.loads(l) for l in open(sys.argv[1])]
iss = {i["line"]: i for b in o if "batch" in b for i in b["issues"]}
assert iss[2]["kind"] == "parse" and iss[2]["table"] == "h" and iss[2]["key"] == "H2", iss[2]
assert "0xFF" in iss[2]["message"], iss[2]
assert iss[3]["table"] == "h" and iss[3]["key"] is None, iss[3]
assert iss[4]["table"] is None and iss[4]["key"] is None, iss[4]
assert iss[2]["file"] == "bad8.jsonl"
EOF
# --table records: the table is --table's, the key its field's
printf '{"id":"H7","title":"\xff"}\n' >bad8t.jsonl
st 1 "$LB" import u1 bad8t.jsonl --table h
has_out "^  bad8t.jsonl:1: parse h H7: not UTF-8"

# ---------------------------------------------------------------------------
section "repeats in upsert mode"
"$LB" init r1 --schema schema.json >/dev/null
{ rec H1 ',"title":"a"'; rec H2; rec H1 ',"title":"b"'; rec H1 ',"title":"c"'; } >rep.jsonl
st 1 "$LB" import r1 rep.jsonl --mode upsert
has_out "^  rep.jsonl:3: duplicate h H1: h: key 'H1' repeats line 1 of this batch"
has_out "^  rep.jsonl:4: duplicate h H1: h: key 'H1' repeats line 1 of this batch"
st 1 "$LB" get r1 h H2
st 0 "$LB" import r1 rep.jsonl --mode upsert --allow-repeats --again
"$LB" get r1 h H1 >out
has_out '"title":"c"'
# one line per batch: no repeat within a batch
"$LB" init r2 --schema schema.json >/dev/null
st 0 "$LB" import r2 rep.jsonl --mode upsert --batch-size 1
# record mode: the first line goes in, the repeats are set aside
"$LB" init r3 --schema schema.json >/dev/null
st 1 "$LB" import r3 rep.jsonl --mode upsert --on-error record
has_out "^4 records: 2 committed, 2 set aside"
"$LB" get r3 h H1 >out
has_out '"title":"a"'
# a dry run says the same
st 1 "$LB" import r3 rep.jsonl --mode upsert --dry-run
has_out "^  rep.jsonl:3: duplicate h H1: h: key 'H1' repeats line 1"
st 2 "$LB" import r3 rep.jsonl --allow-repeats
has_err "--allow-repeats works with --mode upsert only"
"$LB" runs r1 --json >out
pyin "runs record --allow-repeats" out <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["allow_repeats"] for r in runs), runs
EOF

# ---------------------------------------------------------------------------
section "committed batches by id"
"$LB" init c1 --schema schema.json >/dev/null
for i in 1 2 3 4 5; do rec "H$i"; done >five.jsonl
st 0 "$LB" import c1 five.jsonl --batch-size 2 --json
pyin "batch ids" out <<'EOF'
import json, sys
o = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(str(b["batch_id"]) for b in o if "batch_id" in b), file=open("ids", "w"))
EOF
read -r b1 b2 b3 <ids
"$LB" init c2 --schema schema.json >/dev/null
st 0 "$LB" import c2 five.jsonl --batch-size 2
has_out "^batch $b1 committed: lines 1-2, 2 records$"
has_out "^batch $b2 committed: lines 3-4, 2 records$"
has_out "^batch $b3 committed: lines 5-5, 1 record$"

# ---------------------------------------------------------------------------
section "dry run = real import"
"$LB" init d1 --schema schema.json >/dev/null
rec H1 ',"n":1' >base.jsonl
"$LB" import d1 base.jsonl >/dev/null
{
	rec H2 ',"kind":"ajar"'                   # enum
	rec X3                                      # pattern
	rec H4 ',"date":"2024-02-30"'             # format date
	rec H5 ',"at":"2024-01-01 10:00"'         # format date-time
	rec H6 ',"n":11'                          # max
	rec H7 ',"n":0,"kind":"x","title":"toolong"' # three rules at once
	rec H8 ',"kind":null'                     # nullable: fine
	rec H9 ',"date":null'                     # not nullable
	printf '{"table":"h","key":"H10","value":{"id":"H11"}}\n' # key_field
	rec H12 ',"extra":1'                      # closed
	printf '{"table":"h","key":"H13","value":{"title":"x"}}\n' # required
	rec H1 ',"n":2'                           # duplicate (insert)
	rec H14 ',"n":99,"kind":"no"'             # two more
} >rules.jsonl
st 1 "$LB" import d1 rules.jsonl --dry-run --json
mv out dry.json
st 1 "$LB" import d1 rules.jsonl --json
mv out real.json
pyin "the same issues" dry.json real.json <<'EOF'
import json, sys
def issues(p):
    out = []
    for l in open(p):
        o = json.loads(l)
        for i in (o["issues"] if "batch" in o else []):
            out.append((i["line"], i["kind"], i["table"], i["key"], i["field"], i["message"]))
    return sorted(out)
d, r = issues(sys.argv[1]), issues(sys.argv[2])
assert d == r, "\n".join(["dry:"] + [str(x) for x in d] + ["real:"] + [str(x) for x in r])
lines = {x[0] for x in d}
assert lines == {1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13}, lines
assert sum(1 for x in d if x[0] == 6) == 3, d
assert any("not one of the allowed values" in x[5] for x in d)
assert any("does not match the pattern" in x[5] for x in d)
EOF
# update mode: a missing key, as the real import words it
rec H99 >miss.jsonl
st 1 "$LB" import d1 miss.jsonl --mode update --dry-run --json
mv out dry.json
st 1 "$LB" import d1 miss.jsonl --mode update --json
pyin "missing, the same" dry.json out <<'EOF'
import json, sys
def issues(p):
    return [(i["kind"], i["message"]) for l in open(p) for o in [json.loads(l)] if "batch" in o for i in o["issues"]]
assert issues(sys.argv[1]) == issues(sys.argv[2]) == [("missing", "h: no key 'H99'")], (issues(sys.argv[1]), issues(sys.argv[2]))
EOF

lb_finish
