#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# alter.sh: `logbook table alter`, end to end: loosening passes, tightening
# that records break prints them and writes nothing, the change is a logged
# batch that rolls back and replays, and `tables --schema` shows it.
#
# Run by `make test` with LB_BIN pointing at the built tool. Prints one line
# per failed check and a final "N passed, N failed" line.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup alter alter
current=alter

# check DESCRIPTION WANT GOT
check() { if [ "$2" = "$3" ]; then ok; else bad "$1: want '$2', got '$3'"; fi; }

cat >a.json <<'J'
{"tables": [{"name": "h", "closed": true, "fields": [{"name": "id", "type": "str", "required": true, "max_len": 10}]}]}
J
cat >tight.json <<'J'
{"tables": [{"name": "h", "closed": true, "fields": [{"name": "id", "type": "str", "required": true, "max_len": 3}]}]}
J
cat >loose.json <<'J'
{"tables": [{"name": "h", "closed": false, "fields": [{"name": "id", "type": "str", "max_len": 30}, {"name": "n", "type": "int"}]}]}
J

"$LB" init db --schema a.json >/dev/null
for i in 1 2 3; do
	echo "{\"table\":\"h\",\"key\":\"k$i\",\"value\":{\"id\":\"abcdef$i\"}}"
done >recs.jsonl
"$LB" import db recs.jsonl >/dev/null
before=$("$LB" log db --json | head -1)
last0=$("$LB" stat db --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["batches"])')

"$LB" table alter db h --schema tight.json >out 2>err
check "tightening that records break exits 1" 1 $?
check "every record that does not fit is printed" 3 "$(grep -c "field id" out)"
last1=$("$LB" stat db --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["batches"])')
check "nothing written" "$last0" "$last1"

"$LB" table alter db h --schema loose.json >out 2>err
check "loosening exits 0" 0 $?
check "a new batch" "changed the schema of table h in batch $((last0 + 1))" "$(cat out)"
"$LB" tables db --schema >printed.json
check "tables --schema shows the new schema" 1 "$(grep -c '"name":"n","type":"int"' printed.json)"
echo '{"table":"h","key":"k9","value":{"id":"a-long-identifier-here","n":7}}' >more.jsonl
"$LB" import db more.jsonl >/dev/null
check "a record of the new schema imports" 0 $?
"$LB" verify db --replay >/dev/null
check "verify --replay after the change" 0 $?

# rolling the change back needs the records to fit the old schema
"$LB" rollback db $((last0 + 1)) >out 2>err
check "rollback refused while a record breaks the old schema" 1 $?
"$LB" rollback db $((last0 + 2)) >/dev/null
"$LB" rollback db $((last0 + 1)) >out 2>err
check "then the change rolls back" 0 $?
"$LB" tables db --schema >back.json
check "the old schema is back" 1 "$(grep -c '"max_len":10' back.json)"
"$LB" get db h k1 >/dev/null
check "records kept" 0 $?
"$LB" replay db rp >/dev/null && "$LB" verify rp --replay >/dev/null
check "replayed elsewhere and verified" 0 $?
: "$before"

lb_finish
