#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# schema_rules.sh: the rules of the CLI's schema files (docs/CLI.md,
# "Schema files"): a file with every rule (enum, pattern, format, min and
# max, nullable, key_field) is taken by `init --schema` and
# `table create --schema`, printed back by `tables --schema` and taken
# again (the round trip), its mistakes refused with one clear line, and an
# import of records breaking each rule shows each issue, naming the field.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/schema_rules.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, cmp and python3.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup schema_rules rules

cat >rules.json <<'EOF'
{"tables": [
  {"name": "hearings", "closed": true, "key_field": "id", "fields": [
    {"name": "id", "type": "str", "required": true, "max_len": 32,
     "pattern": "[A-Z]{1,4}-[0-9]+"},
    {"name": "chamber", "type": "str", "required": true, "nullable": true,
     "enum": ["House", "Senate", "Joint", "\u00e9t\u00e9 \"q\""]},
    {"name": "date", "type": "str", "required": true, "format": "date"},
    {"name": "updated", "type": "str", "format": "date-time"},
    {"name": "congress", "type": "int", "enum": [117, 118, -1],
     "min": -1, "max": 200},
    {"name": "score", "type": "float", "min": -1.5, "max": 1e300},
    {"name": "share", "type": "float", "max": 0.1}]},
  {"name": "witnesses", "fields": [
    {"name": "hearing_id", "type": "str", "nullable": true,
     "ref": "hearings"},
    {"name": "n", "type": "int", "key_field_is_not_a_member": 1}]}
]}
EOF
# (the second table is fixed below: first, the unknown member is refused)

# ---------------------------------------------------------------------------
section "schema file"
st 3 "$LB" init db --schema rules.json
one_err "unknown member \"key_field_is_not_a_member\""
[ ! -e db ] && ok || bad "a failed init left db behind"
sed -i 's/, "key_field_is_not_a_member": 1//' rules.json
st 0 "$LB" init db --schema rules.json
has_out "2 tables"
st 0 "$LB" tables db
has_out "hearings .*closed, key id, 7 fields: id str required max 32 matching '\[A-Z\]{1,4}-\[0-9\]+', chamber str required nullable in {House|Senate|Joint|"
has_out "date str required date, updated str date-time, congress int in {117|118|-1} >= -1 <= 200, score float >= -1.5 <= 1e+300, share float <= 0.1"
has_out "hearing_id str nullable -> hearings"

# ---------------------------------------------------------------------------
section "round trip"
st 0 "$LB" tables db --schema
cp out printed.json
# every rule of the file is in what is printed, as the file said it
py "printed = given" '
import json, sys
def norm(doc):
    out = {}
    for t in doc["tables"]:
        fs = []
        for f in t.get("fields", []):
            f = dict(f)
            f.setdefault("type", "any")
            for k in ("required", "nullable"):
                if not f.get(k):
                    f.pop(k, None)
            fs.append(f)
        out[t["name"]] = (bool(t.get("closed")), t.get("key_field"), fs)
    return out
a = norm(json.load(open("rules.json")))
b = norm(json.load(open("printed.json")))
if a != b:
    sys.exit("differ:\n%r\n%r" % (a, b))
'
st 0 "$LB" init db2 --schema printed.json
st 0 "$LB" tables db2 --schema
same out printed.json
# one table, from a file holding one table object, with its rules
py "one table" '
import json
d = json.load(open("printed.json"))
t = d["tables"][0]
del t["name"]
json.dump(t, open("one.json", "w"))
'
st 0 "$LB" table create db2 copy --schema one.json
st 0 "$LB" tables db2 --json
has_out '"name":"copy","closed":true,"key_field":"id"'
has_out '"enum":\["House","Senate","Joint","\\u00e9t\\u00e9 \\"q\\""\]\|"enum":\["House","Senate","Joint","été \\"q\\""\]'
has_out '"pattern":"\[A-Z\]{1,4}-\[0-9\]+"'
has_out '"format":"date-time"'
has_out '"enum":\[117,118,-1\],"min":-1,"max":200'
has_out '"min":-1.5,"max":1e+300'

# ---------------------------------------------------------------------------
section "refused schema files"
# refuse FILE-CONTENT WANT: init refuses the file with one line naming WANT
# and leaves no directory behind.
refuse() {
	printf '%s\n' "$1" >bad.json
	st 3 "$LB" init bad --schema bad.json
	one_err "$2"
	[ ! -e bad ] && ok || bad "a failed init left bad behind ($2)"
	rm -rf bad
}
F='{"tables": [{"name": "t", "fields": [{"name": "a", '
refuse "$F"'"type": "str", "enum": []}]}]}' '"enum" must be a non-empty array'
refuse "$F"'"type": "str", "enum": "House"}]}]}' '"enum" must be a non-empty array'
refuse "$F"'"type": "str", "enum": ["a", 1]}]}]}' 'only strings or only integers'
refuse "$F"'"type": "str", "enum": [1, 2]}]}]}' 'the "enum" of a str field must hold strings'
refuse "$F"'"type": "int", "enum": ["1"]}]}]}' 'the "enum" of an int field must hold integers'
refuse "$F"'"type": "float", "enum": [1]}]}]}' "an enum applies to str and int fields only"
refuse "$F"'"type": "str", "enum": ["a", "b", "a"]}]}]}' "enum value 2 ('a') is listed twice"
refuse "$F"'"type": "str", "pattern": 5}]}]}' '"pattern" must be a non-empty string'
refuse "$F"'"type": "str", "pattern": ""}]}]}' '"pattern" must be a non-empty string'
refuse "$F"'"type": "str", "pattern": "a)"}]}]}' "pattern 'a)': a ')' without its '('"
refuse "$F"'"type": "str", "pattern": "(a*)*"}]}]}' "something that can match the empty string"
refuse "$F"'"type": "str", "pattern": "\\w+"}]}]}' "a backslash before a letter or digit"
refuse "$F"'"type": "int", "pattern": "1"}]}]}' "a pattern applies to str fields only"
refuse "$F"'"type": "str", "format": "time"}]}]}' '"format" must be "date" or "date-time"'
refuse "$F"'"type": "int", "format": "date"}]}]}' "a format applies to str fields only"
refuse "$F"'"type": "int", "min": "5"}]}]}' '"min" must be a number'
refuse "$F"'"type": "int", "max": null}]}]}' '"max" must be a number'
refuse "$F"'"type": "int", "min": 9007199254740993}]}]}' '"min" 9007199254740993 is not exact as a double'
refuse "$F"'"type": "int", "min": 5, "max": 4}]}]}' "min 5 is greater than max 4"
refuse "$F"'"type": "str", "min": 5}]}]}' "min and max apply to int and float fields only"
refuse "$F"'"type": "str", "nullable": "yes"}]}]}' '"nullable" must be true or false'
refuse '{"tables": [{"name": "t", "key_field": "b", "fields": [{"name": "a"}]}]}' "key_field 'b' is not a field of the schema"
refuse '{"tables": [{"name": "t", "key_field": "a", "fields": [{"name": "a", "type": "float"}]}]}' "a key field must be of type any, str, bin or int"
refuse '{"tables": [{"name": "t", "key_field": 1, "fields": []}]}' '"key_field" must be the name of a field'
refuse '{"tables": [{"name": "t", "key_field": "a"}]}' '"key_field" needs "fields"'

# ---------------------------------------------------------------------------
section "import"
# One good record, then one record per broken rule (each line breaks one
# rule, naming one field), in one input batch: the batch fails with exactly
# these issues, and commits without them.
cat >good.jsonl <<'EOF'
{"table": "hearings", "key": "HR-1", "value": {"id": "HR-1", "chamber": "House", "date": "2024-02-29", "updated": "2024-03-14T09:30:00.5+01:00", "congress": 118, "score": -1.5, "share": 0.1}}
{"table": "hearings", "key": "HR-2", "value": {"id": "HR-2", "chamber": null, "date": "2000-02-29"}}
{"table": "witnesses", "key": "w1", "value": {"hearing_id": null}}
{"table": "witnesses", "key": "w2", "value": {"hearing_id": "HR-1"}}
EOF
cat >broken.jsonl <<'EOF'
{"table": "hearings", "key": "HR-10", "value": {"id": "HR-11", "chamber": "House", "date": "2024-01-01"}}
{"table": "hearings", "key": "hr-12", "value": {"id": "hr-12", "chamber": "House", "date": "2024-01-01"}}
{"table": "hearings", "key": "HR-13", "value": {"id": "HR-13", "chamber": "Senat", "date": "2024-01-01"}}
{"table": "hearings", "key": "HR-14", "value": {"id": "HR-14", "chamber": 3, "date": "2024-01-01"}}
{"table": "hearings", "key": "HR-15", "value": {"id": "HR-15", "chamber": "Joint", "date": "2023-02-29"}}
{"table": "hearings", "key": "HR-16", "value": {"id": "HR-16", "chamber": "Joint", "date": "2024-01-01", "updated": "2024-03-14 09:30:00Z"}}
{"table": "hearings", "key": "HR-17", "value": {"id": "HR-17", "chamber": "Joint", "date": "2024-01-01", "congress": 119}}
{"table": "hearings", "key": "HR-18", "value": {"id": "HR-18", "chamber": "Joint", "date": "2024-01-01", "score": -1.75}}
{"table": "hearings", "key": "HR-19", "value": {"id": "HR-19", "chamber": "Joint", "date": "2024-01-01", "share": 0.10000000000000002}}
{"table": "hearings", "key": "HR-20", "value": {"id": "HR-20", "chamber": "Joint", "date": null}}
{"table": "witnesses", "key": "w3", "value": {"hearing_id": 7}}
EOF
cat good.jsonl broken.jsonl >all.jsonl
st 1 "$LB" import db all.jsonl --json
cp out report.jsonl
py "the issues" '
import json, sys
want = [  # line, key, field, part of the message
    (5, "HR-10", "id", "field \x27id\x27 is \x27HR-11\x27 but the record\x27s key is \x27HR-10\x27 (the table\x27s key_field)"),
    (6, "hr-12", "id", "field \x27id\x27 is \x27hr-12\x27, which does not match the pattern \x27[A-Z]{1,4}-[0-9]+\x27 (the whole value must match)"),
    (7, "HR-13", "chamber", "field \x27chamber\x27 is \x27Senat\x27, not one of the allowed values \x27House\x27, \x27Senate\x27, \x27Joint\x27, "),
    (8, "HR-14", "chamber", "field \x27chamber\x27 must be str or nil, not int"),
    (9, "HR-15", "date", "field \x27date\x27 is \x272023-02-29\x27, not a date (YYYY-MM-DD): the day is past the end of the month (not a leap year)"),
    (10, "HR-16", "updated", "not a date-time (RFC 3339, like 2024-03-14T09:30:00Z)"),
    (11, "HR-17", "congress", "field \x27congress\x27 is 119, not one of the allowed values 117, 118, -1"),
    (12, "HR-18", "score", "field \x27score\x27 is -1.75, below the minimum -1.5"),
    (13, "HR-19", "share", "field \x27share\x27 is 0.10000000000000002, above the maximum 0.1"),
    (14, "HR-20", "date", "field \x27date\x27 must be str, not nil"),
    (15, "w3", "hearing_id", "field \x27hearing_id\x27 must be a key of hearings (str or nil), not int"),
]
rep = [json.loads(l) for l in open("report.jsonl")]
batches = [r for r in rep if "batch" in r]
if len(batches) != 1 or batches[0]["success"]:
    sys.exit("want one failed batch: %r" % batches)
got = batches[0]["issues"]
if len(got) != len(want):
    sys.exit("%d issues, want %d: %r" % (len(got), len(want), got))
for g, (line, key, field, msg) in zip(got, want):
    if (g["line"], g["kind"], g["key"], g["field"]) != (line, "format", key, field) or msg not in g["message"]:
        sys.exit("issue %r, want line %d key %s field %s: %s" % (g, line, key, field, msg))
'
st 0 "$LB" tables db
has_out "hearings  *0 "
# the good records alone commit
st 0 "$LB" import db good.jsonl
st 0 "$LB" get db hearings HR-2
has_out '"chamber":null'
# human output names the field and the rule too
st 1 "$LB" import db broken.jsonl
has_out "1: format hearings HR-10 field id: hearings: field 'id' is 'HR-11' but the record's key is 'HR-10'"
has_out "10: format hearings HR-20 field date: hearings: field .date. must be str, not nil"

lb_finish
