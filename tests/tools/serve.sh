#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# serve.sh: `logbook serve` against a running server, with curl: every
# endpoint of the JSON API on a two-day database (imports, a rollback,
# a rollback-to), bad input of every kind (4xx JSON errors naming the
# parameter, never a crash), the bearer token, the Host check, the event
# stream following a commit, and that the database is never written.
#
# The server is started on a free loopback port (--listen 127.0.0.1:0, the
# port read from its first line) in a temporary directory, and always
# stopped afterwards.
#
# Run by `make test` with LB_BIN pointing at the built tool; by hand:
#   LB_BIN=build/logbook tests/tools/serve.sh
# Prints one line per failed check and a final "N passed, N failed" line;
# exits 1 if any check failed. Needs bash, curl and python3.
set -u

. "$(dirname "$0")/lib.sh"
lb_setup serve serve

# ---- a two-day database --------------------------------------------------
section setup
"$LB" init db --schema <("$LB" gen schema) >/dev/null || bad "init"
"$LB" gen hearings --records 300 --days 2 --day 1 >d1.jsonl
"$LB" gen hearings --records 300 --days 2 --day 2 >d2.jsonl
"$LB" import db d1.jsonl --batch-size 100 >/dev/null || bad "import day 1"
"$LB" import db d2.jsonl --batch-size 100 --mode upsert --allow-repeats >/dev/null ||
	bad "import day 2"
LAST=$("$LB" log db --json --limit 1 |
	python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
"$LB" rollback db "$LAST" >/dev/null || bad "rollback of the last batch"
ROLLED=$LAST
"$LB" rollback-to db $((LAST + 1)) >/dev/null 2>&1 # nothing to undo
LAST=$("$LB" log db --json --limit 1 |
	python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
# the first batch of day 1 with records (after the table batches)
FIRST=$("$LB" log db --json | python3 -c '
import json,sys
ids=[json.loads(l) for l in sys.stdin]
print(min(b["id"] for b in ids if b["records"] > 1))')

start_server() { # ARGS...: starts, sets PORT and SPID
	serve_start serve db "$@"
	[ -n "$PORT" ] || bad "server did not start: $(cat serve.err)"
}
start_server --listen 127.0.0.1:0
U=http://127.0.0.1:$PORT

# req PATH [CURL ARGS...]: body in body.json, status in $code
req() {
	local path=$1
	shift
	code=$(curl -s -o body.json -w '%{http_code}' "$@" "$U$path")
}
# j EXPR: a python expression over the parsed body (d)
j() {
	python3 -c "import json,sys; d=json.load(open('body.json')); print($1)" 2>/dev/null
}
expect() { # STATUS PATH [CURL ARGS...]
	local want=$1 path=$2
	shift 2
	req "$path" "$@"
	if [ "$code" != "$want" ]; then
		bad "$path: status $code, want $want: $(head -c 300 body.json)"
		return 1
	fi
	ok
}
# An error: status, and a JSON body naming the parameter.
expect_err() { # STATUS PARAM PATH [CURL ARGS...]
	local want=$1 param=$2 path=$3
	shift 3
	expect "$want" "$path" "$@" || return
	if [ "$(j "d['param'] == '$param' and d['status'] == $want and len(d['error']) > 0")" != True ]; then
		bad "$path: want an error naming $param, got $(head -c 300 body.json)"
	else
		ok
	fi
}
check() { # DESCRIPTION PYTHON-BOOLEAN
	if [ "$(j "$2")" = True ]; then ok; else bad "$1: $(head -c 300 body.json)"; fi
}

# ---- the API -------------------------------------------------------------
section log
expect 200 "/api/log"
check "log lists every batch, newest first" \
	"d['last'] == $LAST and [b['id'] for b in d['batches']] == list(range($LAST, 0, -1))"
check "the rolled-back batch names its undoer" \
	"[b for b in d['batches'] if b['id'] == $ROLLED][0]['rolled_back_by'] == $ROLLED + 1"
expect 200 "/api/log?limit=3"
check "limit and next_before" \
	"len(d['batches']) == 3 and d['next_before'] == $LAST - 2"
expect 200 "/api/log?since=$((LAST - 2))"
check "since" "[b['id'] for b in d['batches']] == [$LAST, $LAST - 1]"
expect 200 "/api/log?before=3&limit=10"
check "before" "[b['id'] for b in d['batches']] == [2, 1] and d['next_before'] is None"

section batch
expect 200 "/api/batch/$FIRST"
check "a batch: header and every record" \
	"d['batch']['id'] == $FIRST and d['total'] == d['batch']['records'] and len(d['changes']) == d['total'] and not d['more']"
check "schema values are JSON objects" \
	"isinstance(d['changes'][0]['change']['after'], dict) and d['changes'][0]['change']['before'] is None"
expect 200 "/api/batch/$FIRST?offset=10&limit=5"
check "pagination" "[c['i'] for c in d['changes']] == [10, 11, 12, 13, 14] and d['more']"
expect 200 "/api/batch/1"
check "a table creation" "d['changes'][0]['change']['op'] == 'table'"

section history
KEY=$(python3 -c "import json;print(json.loads(open('d1.jsonl').readline())['key'])")
TABLE=$(python3 -c "import json;print(json.loads(open('d1.jsonl').readline())['table'])")
expect 200 "/api/history/$TABLE/$KEY"
check "history of a key" "len(d['changes']) >= 1 and d['changes'][-1]['change']['before'] is None and d['key'] == '$KEY'"
expect 200 "/api/history/$TABLE/no-such-key"
check "a key that never existed" "d['changes'] == []"

section get
expect 200 "/api/get/$TABLE/$KEY"
check "get" "d['value']['id'] == '$KEY' and d['as_of'] is None"
expect_err 404 key "/api/get/$TABLE/no-such-key"
expect_err 404 key "/api/get/$TABLE/$KEY?as_of=0"
expect 200 "/api/get/$TABLE/$KEY?as_of=$FIRST"
check "as of the batch that inserted it" "d['value']['id'] == '$KEY' and d['as_of'] == $FIRST"
expect_err 404 as_of "/api/get/$TABLE/$KEY?as_of=$((LAST + 1))"

section diff
expect 200 "/api/diff?from=0&to=$LAST&limit=5"
check "diff from empty: tables, then keys; bounded" \
	"d['changes'][0]['op'] == 'table' and len(d['changes']) == 5 and d['truncated'] and d['total'] > 5"
expect 200 "/api/diff?from=$((ROLLED - 1))&to=$((ROLLED + 1))"
check "a batch and its rollback: no difference" "d['total'] == 0 and d['changes'] == []"

section tables-stat-verify
expect 200 "/api/tables"
check "tables with schemas" \
	"sorted(t['name'] for t in d['tables']) == ['documents', 'hearings', 'witnesses'] and all(t['schema'] for t in d['tables'])"
expect 200 "/api/stat"
check "stat" "d['last_batch'] == $LAST and d['tables'] == 3 and d['log']['rolled_back'] >= 1 and d['read_only'] == False"
expect 200 "/api/verify"
check "verify" "d['ok'] and d['chain_ok'] and d['batches'] == $LAST and d['replay_ok'] is None"
expect_err 403 replay "/api/verify?replay=1"

section rollback-preview
expect 200 "/api/rollback/$FIRST"
check "a batch later batches changed: a conflict, nothing undone" \
	"not d['ok'] and d['error'] == 'conflict' and d['conflicting_batches'] and d['undone'] == [] and d['dry_run']"
expect 200 "/api/rollback/$FIRST?cascade=1"
check "the cascade preview lists the batches it would undo" \
	"d['ok'] and len(d['undone']) >= 2 and d['undone'][-1]['id'] == $FIRST and d['records'] > 0"
expect 200 "/api/rollback/$FIRST?force=true"
check "force: restores over later changes, or names the blockers" "d['force'] and (d['ok'] or d['blocking_batches'] != [])"
expect_err 409 id "/api/rollback/$ROLLED"
expect_err 404 id "/api/rollback/$((LAST + 1))"

section bad-input
expect_err 400 id "/api/batch/x"
expect_err 400 id "/api/batch/0"
expect_err 400 id "/api/batch/-1"
expect_err 400 id "/api/batch/99999999999999999999999"
expect_err 404 id "/api/batch/$((LAST + 1))"
expect_err 400 id "/api/batch/"
expect_err 400 id "/api/rollback/1e3"
expect_err 404 table "/api/history/nosuch/k"
expect_err 404 table "/api/get/nosuch/k"
expect_err 400 table "/api/get/bad%20name/k"
expect_err 400 table "/api/get/$(printf 't%.0s' $(seq 1 65))/k"
expect_err 400 key "/api/get/$TABLE/$(printf 'k%.0s' $(seq 1 512))"
expect 404 "/api/get/$TABLE/$(printf 'k%.0s' $(seq 1 511))" # longest key: fine
expect_err 400 key "/api/get/$TABLE/%zz"
expect_err 400 key "/api/history/$TABLE/ab%4"
expect_err 400 key "/api/history/$TABLE/%"
expect_err 400 limit "/api/log?limit=0"
expect_err 400 limit "/api/log?limit=1001"
expect_err 400 limit "/api/log?limit=ten"
expect_err 400 since "/api/log?since=%3"
expect_err 400 since "/api/log?since=1&since=2"
expect_err 400 nope "/api/log?nope=1"
expect_err 400 as_of "/api/batch/1?as_of=1"
expect_err 400 from "/api/diff?to=3"
expect_err 400 to "/api/diff?from=3&to=3"
expect_err 400 to "/api/diff?from=0&to=5000"
expect_err 404 to "/api/diff?from=0&to=$((LAST + 1))"
expect_err 400 force "/api/rollback/$FIRST?cascade=1&force=1"
expect_err 400 cascade "/api/rollback/$FIRST?cascade=maybe"
expect_err 400 token "/api/log?token=abc"
expect_err 404 path "/api/nope"
expect_err 404 path "/etc/passwd"
expect_err 404 path "/api/../../etc/passwd"
expect_err 404 path "/index.html/x"
expect_err 405 method "/api/log" -X POST
expect_err 405 method "/api/rollback/$FIRST" -X DELETE
expect_err 403 Host "/api/log" -H "Host: evil.example"
expect 200 "/api/log?limit=1" -H "Host: localhost:$PORT"
# a binary key, percent-encoded, reaches the library intact
expect 200 "/api/history/$TABLE/%00%ff%2F"
check "binary key" "d['key'] == {'base64': 'AP8v'} and d['changes'] == []"

section page
expect 200 "/"
grep -q '<ol id="timeline">' body.json && ok || bad "the page"
curl -s -D headers.txt -o /dev/null "$U/"
grep -qi '^Content-Security-Policy: default-src .none.' headers.txt && ok ||
	bad "the page's CSP: $(cat headers.txt)"
grep -Eq 'https?://' body.json && bad "the page refers to another site" || ok

section stream
curl -s -N -m 8 "$U/api/changes" >sse.txt 2>/dev/null &
CPID=$!
bg="$bg $CPID"
sleep 1
"$LB" put db "$TABLE" "$KEY" \
	"$(curl -s "$U/api/get/$TABLE/$KEY" | python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; v["title"]="Revised in the stream test"; print(json.dumps(v))')" \
	>/dev/null || bad "put"
for _ in $(seq 1 50); do
	grep -q "^id: $((LAST + 1))\$" sse.txt && break
	sleep 0.1
done
grep -q '^event: hello' sse.txt && grep -q "^id: $((LAST + 1))\$" sse.txt &&
	grep -q '^event: batch' sse.txt && ok || bad "the stream did not follow the commit: $(cat sse.txt)"
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
LAST=$((LAST + 1))
curl -s -N -m 2 "$U/api/changes?since=$((LAST - 2))" >sse2.txt 2>/dev/null
[ "$(grep -c '^event: batch' sse2.txt)" = 2 ] && ok || bad "since: $(cat sse2.txt)"

section read-only
before=$("$LB" log db --json | md5sum)
for _ in 1 2 3; do
	curl -s -o /dev/null "$U/api/rollback/$FIRST?cascade=1"
	curl -s -o /dev/null "$U/api/rollback/$FIRST?force=1"
done
after=$("$LB" log db --json | md5sum)
[ "$before" = "$after" ] && ok || bad "previews wrote to the log"

section stop
kill -TERM "$SPID"
wait "$SPID"
src=$?
[ "$src" = 0 ] && ok || bad "serve exit status $src on SIGTERM"

# ---- the token -----------------------------------------------------------
section token
"$LB" serve db --listen 0.0.0.0:0 >/dev/null 2>err.txt
[ $? = 2 ] && grep -q -- '--token' err.txt && ok || bad "off loopback without --token: $(cat err.txt)"
"$LB" serve db --listen 300.1.1.1:80 >/dev/null 2>&1
[ $? = 2 ] && ok || bad "a bad --listen"
printf 's3cret-token-0123456789\n' >token.txt
"$LB" serve db --listen 127.0.0.1:0 --token missing.txt >/dev/null 2>&1
[ $? = 3 ] && ok || bad "a missing token file"
start_server --listen 127.0.0.1:0 --token token.txt
U=http://127.0.0.1:$PORT
expect_err 401 token "/api/log"
expect_err 401 token "/api/log" -H "Authorization: Bearer wrong"
expect_err 401 token "/api/log" -H "Authorization: Bearer s3cret-token-012345678"
expect_err 401 token "/api/log" -H "Authorization: Bearer s3cret-token-01234567890"
expect 200 "/api/log" -H "Authorization: Bearer s3cret-token-0123456789"
expect_err 401 token "/"
expect 200 "/?token=s3cret-token-0123456789"
expect_err 401 token "/api/log?token=s3cret-token-0123456789"
expect_err 401 token "/api/changes"
kill -TERM "$SPID"
wait "$SPID" 2>/dev/null

lb_finish
