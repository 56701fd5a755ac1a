#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# serve_browser.sh: the page of `logbook serve` in a real browser. Headless
# Chromium (Debian `chromium`) loads it against a generated two-day
# database and the test checks the rendered DOM:
#  - the timeline lists every batch of the log;
#  - the rolled-back batch is marked, and links to the batch that undid it;
#  - the batch view of a day-2 batch shows a field-level change (a row of
#    a revised record whose field changed, before and after);
#  - the rollback preview of a day-1 batch with cascade lists the batches
#    the cascade would undo (the same as the API's answer);
#  - the key history and the as-of lookup render;
# then saves a screenshot of the page as BUILD/test-output/serve_browser/
# page.png (the DOM dump beside it). Last, with --token: the page opened
# as /?token=... fills its timeline, opens the newest batch that is not an
# undo, follows the stream, and is refused without the token.
#
# The server runs on a free loopback port in a temporary directory and is
# always stopped afterwards. Run by `make test`; by hand:
#   LB_BIN=build/logbook tests/tools/serve_browser.sh
set -u

. "$(dirname "$0")/lib.sh"
lb_setup serve_browser browser
BUILD=${LB_BUILD:-$(dirname "$LB")}
OUT=$BUILD/test-output/serve_browser
CHROMIUM=${CHROMIUM:-chromium}
if ! command -v "$CHROMIUM" >/dev/null; then
	echo "serve_browser.sh: no $CHROMIUM (run scripts/deps.sh)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)

# ---- two days of imports, and the last batch rolled back ------------------
"$LB" init db --schema <("$LB" gen schema) >/dev/null || bad "init"
"$LB" gen hearings --records 300 --days 2 --day 1 >d1.jsonl
"$LB" gen hearings --records 300 --days 2 --day 2 >d2.jsonl
"$LB" import db d1.jsonl --batch-size 100 --label "day 1" >/dev/null ||
	bad "import day 1"
"$LB" import db d2.jsonl --batch-size 100 --mode upsert --allow-repeats --label "day 2" \
	>/dev/null || bad "import day 2"
ROLLED=$(last_batch db)
"$LB" rollback db "$ROLLED" >/dev/null || bad "rollback"

serve_start serve db --listen 127.0.0.1:0
[ -n "$PORT" ] || {
	bad "the server did not start: $(cat serve.err)"
	echo "$pass passed, $fail failed"
	exit 1
}
U=http://127.0.0.1:$PORT

# What the page must show, from the API: the batches, a day-2 batch with
# an update (a record with a before-image) and its first such record, a
# day-1 batch whose cascade undoes later batches.
curl -s "$U/api/log?limit=1000" >log.json
python3 - "$U" >facts.txt <<'EOF' || bad "reading the API"
import json, sys, urllib.request
u = sys.argv[1]
get = lambda p: json.load(urllib.request.urlopen(u + p))
log = json.load(open("log.json"))["batches"]
ids = [b["id"] for b in log]
day2 = [b["id"] for b in log if b["label"] == "day 2" and not b["rolled_back_by"]]
shown = None
for id in sorted(day2):
    ch = get("/api/batch/%d?limit=50" % id)["changes"]
    for c in ch:
        c = c["change"]
        if c["before"] and c["after"] and isinstance(c["before"], dict):
            diff = [k for k in c["after"] if c["before"].get(k) != c["after"][k]]
            if diff:
                shown = (id, c["table"], c["key"], diff[0])
                break
    if shown:
        break
day1 = min(b["id"] for b in log if b["label"] == "day 1")
pre = get("/api/rollback/%d?cascade=1" % day1)
print(" ".join(map(str, ids)))
print(shown[0], shown[1], shown[2], shown[3])
print(day1, " ".join(str(b["id"]) for b in pre["undone"]))
EOF
read -r IDS <facts.txt
read -r BATCH TABLE KEY FIELD < <(sed -n 2p facts.txt)
read -r DAY1 UNDONE < <(sed -n 3p facts.txt)

HASH="batch=$BATCH&rollback=$DAY1&cascade=1&table=$TABLE&key=$KEY&as_of=$DAY1"
browse() { # ARGS...: headless chromium on the page
	timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--disable-dev-shm-usage --no-first-run --user-data-dir="$T/profile" \
		--hide-scrollbars --window-size=1400,1000 \
		--virtual-time-budget=8000 "$@" "$U/#$HASH" 2>>chromium.err
}
browse --dump-dom >dom.html || bad "chromium --dump-dom failed: $(tail -5 chromium.err)"
cp dom.html "$OUT/dom.html"

{
python3 - "$ROLLED" "$BATCH" "$FIELD" "$DAY1" "$IDS" "$UNDONE" <<'EOF'
import sys
from html.parser import HTMLParser
rolled, batch, field, day1 = sys.argv[1:5]
ids = sys.argv[5].split()
undone = sys.argv[6].split()

class P(HTMLParser):
    def __init__(s):
        super().__init__()
        s.stack = []
        s.els = []
    def handle_starttag(s, tag, attrs):
        a = dict(attrs)
        a["_tag"] = tag
        a["_parents"] = list(s.stack)
        s.els.append(a)
        if tag not in ("input", "br", "meta", "link", "img"):
            s.stack.append(a)
    def handle_endtag(s, tag):
        while s.stack:
            if s.stack.pop()["_tag"] == tag:
                break
p = P()
p.feed(open("dom.html").read())
cls = lambda e: (e.get("class") or "").split()
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)
tl = [e for e in p.els if e["_tag"] == "li" and "batch" in cls(e)
      and any(x.get("id") == "timeline" for x in e["_parents"])]
check([e.get("data-id") for e in tl] == ids,
      "the timeline lists the batches %s, not %s" % (ids, [e.get("data-id") for e in tl]))
rb = [e.get("data-id") for e in tl if "rolled-back" in cls(e)]
check(rb == [rolled], "the rolled-back batch %s is marked (marked: %s)" % (rolled, rb))
links = [e for e in p.els if e["_tag"] == "a" and "undone-by" in cls(e)]
check(any(e.get("href") == "#batch=%d" % (int(rolled) + 1) for e in links),
      "the rolled-back batch links to its undoer")
bv = [e for e in p.els if "batch-detail" in cls(e)]
check(bv and bv[0].get("data-id") == batch, "the batch view shows batch " + batch)
rows = [e for e in p.els if e["_tag"] == "tr" and "changed" in cls(e)
        and any("batch-detail" in cls(x) for x in e["_parents"])]
check(any(e.get("data-field") == field for e in rows),
      "the batch view marks the field-level change of '%s' (changed rows: %s)"
      % (field, [e.get("data-field") for e in rows]))
un = [e.get("data-id") for e in p.els if e["_tag"] == "li" and "undone" in cls(e)]
check(len(undone) >= 2 and un == undone,
      "the rollback preview of %s lists the batches a cascade undoes: %s, not %s"
      % (day1, undone, un))
check(any("history" in cls(e) for e in p.els), "the key history renders")
check(any("asof" in cls(e) for e in p.els), "the as-of lookup renders")
for f in fails:
    print("FAIL: " + f)
print("CHECKS %d %d" % (8 - len(fails), len(fails)))
EOF
} >dom_checks.txt 2>&1
grep '^FAIL' dom_checks.txt
np=$(sed -n 's/^CHECKS \([0-9]*\) \([0-9]*\)$/\1/p' dom_checks.txt)
nf=$(sed -n 's/^CHECKS \([0-9]*\) \([0-9]*\)$/\2/p' dom_checks.txt)
if [ -z "$np" ]; then
	bad "the DOM checks did not run: $(tail -5 dom_checks.txt)"
else
	pass=$((pass + np))
	fail=$((fail + nf))
fi

rm -f "$OUT/page.png"
browse --screenshot="$OUT/page.png" >/dev/null || bad "chromium --screenshot failed"
[ -s "$OUT/page.png" ] && head -c 8 "$OUT/page.png" | od -An -c | grep -q 'P   N   G' &&
	ok || bad "no screenshot at $OUT/page.png"

# the server stops cleanly (under ASan: without a leak)
kill -TERM "$SPID"
wait "$SPID"
src=$?
SPID=
[ "$src" = 0 ] && ok || bad "serve exit status $src on SIGTERM: $(tail -20 serve.err)"

# with a token: the page, opened as /?token=..., sends it with every
# request (the timeline fills), and without it is refused
printf 'browser-token-0123456789\n' >token.txt
serve_start serve2 db --listen 127.0.0.1:0 --token token.txt
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	--disable-dev-shm-usage --no-first-run --user-data-dir="$T/profile2" \
	--virtual-time-budget=8000 --dump-dom \
	"http://127.0.0.1:$PORT/?token=browser-token-0123456789" >dom2.html 2>>chromium.err
n=$(grep -o '<li class="batch[^"]*" data-id="[0-9]*"' dom2.html | wc -l)
[ "$n" = "$(echo "$IDS" | wc -w)" ] && ok ||
	bad "with a token, the timeline lists $n batches, not $(echo "$IDS" | wc -w)"
grep -q 'id="live" class="on"' dom2.html && ok || bad "with a token, the live stream did not start"
grep -q "class=\"batch-detail\" data-id=\"$ROLLED\"" dom2.html && ok ||
	bad "opened without a view, the page does not show the newest batch ($ROLLED)"
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	--disable-dev-shm-usage --no-first-run --user-data-dir="$T/profile3" \
	--virtual-time-budget=4000 --dump-dom "http://127.0.0.1:$PORT/" >dom3.html 2>>chromium.err
grep -q 'id="timeline"' dom3.html && bad "without the token, the page was served" || ok
kill -TERM "$SPID"
wait "$SPID"
src=$?
SPID=
[ "$src" = 0 ] && ok || bad "serve --token exit status $src on SIGTERM"

lb_finish
