#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# daily-update.sh: the daily update that logbook grew from, end to end,
# driven through the `logbook` command-line tool, as an operator lives it.
#
#   1. generate three days of a hearings feed, 1 record in 1,000 broken
#   2. create a database with the hearings schema
#   3. import day 1 in validated batches of 500: a broken record fails its
#      whole batch, and the records that depend on it fail theirs
#   4. fix day 1's rejects and import them again
#   5. take a checkpoint
#   6. import day 2, rejecting only the broken records (--on-error record
#      --reject-file) where import supports it
#   7. fix day 2's rejects and import them again
#   8. learn that one of day 2's committed batches was bad: show it
#   9. an operator corrects one of its hearings by hand
#  10. a strict rollback of the bad batch is refused: a conflict
#  11. preview the rollback with --cascade (--dry-run), then do it
#  12. import day 3, interrupted half-way, then resumed (--resume where
#      import supports it); the result equals one uninterrupted import
#  13. roll back the whole day-3 run (rollback --run where supported;
#      else rollback-to, previewed with --dry-run)
#  14. the log, and the history of the corrected hearing
#  15. replay to the checkpoint's batch, and from the checkpoint to the end
#  16. verify (checksums, hash chain, and a replay compared with the tables)
#  17. prune the log before the checkpoint, compact the file, verify again
#  18. size on disk, log size and compression ratio
#
# Every step prints a short, labelled result and one throughput line, and
# checks its outcome: the script exits 1 at the first step that misbehaves.
# Where the tool lacks an option a step would use (import --on-error,
# --reject-file, --resume; rollback --run), the step says so and does the
# same by other means. Everything is written under a temporary directory in
# $TMPDIR, removed at the end. Needs python3 (to read the tool's JSON).
#
# Usage: examples/daily-update.sh [--records N] [--keep] [--save DIR]
#   --records N   records per day (default 20000)
#   --keep        keep the working directory and print its path
#   --save DIR    copy the final database to DIR (replacing a database
#                 saved there before), e.g. to browse it with
#                 `logbook serve DIR`
# Environment: LB_BIN, the logbook binary (default: build/logbook next to
# this script's directory, else `logbook` on the PATH). `make run` sets it.
# LB_DAILY_FALLBACK=1 takes the other means even where the tool has the
# options.
set -euo pipefail

records=20000
keep=0
save=
while [ $# -gt 0 ]; do
	case "$1" in
	--records)
		records=${2:?--records needs a number}
		shift 2
		;;
	--keep)
		keep=1
		shift
		;;
	--save)
		save=${2:?--save needs a directory}
		shift 2
		;;
	-h | --help)
		sed -n '4,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "daily-update: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
	esac
done
case "$records" in
'' | *[!0-9]*)
	echo "daily-update: --records needs a positive number" >&2
	exit 2
	;;
esac
if [ "$records" -lt 2000 ]; then
	echo "daily-update: --records needs at least 2000 (a day makes several batches)" >&2
	exit 2
fi

case "$save" in
'' | /*) ;;
*) save=$PWD/$save ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lb=${LB_BIN:-$root/build/logbook}
if [ ! -x "$lb" ] && [ -z "${LB_BIN:-}" ] && command -v logbook >/dev/null; then
	lb=$(command -v logbook)
fi
if [ ! -x "$lb" ]; then
	echo "daily-update: no logbook binary at $lb (run 'make' first)" >&2
	exit 2
fi
command -v python3 >/dev/null || {
	echo "daily-update: needs python3" >&2
	exit 2
}

batch_size=500
bad_rate=0.001 # 1 record in 1,000 is broken: a realistic feed
seed=42

work=$(mktemp -d "${TMPDIR:-/tmp}/daily-update.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "(kept $work)"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
cd "$work"
db=hearings.db

# ---- what the tool can do ----------------------------------------------------
# Options being added to the tool are used once `--help` lists them.
has_opt() { # has_opt COMMAND OPTION
	[ "${LB_DAILY_FALLBACK:-0}" != 1 ] &&
		"$lb" "$1" --help 2>/dev/null | grep -q -- "$2"
}
on_error=0
if has_opt import --on-error && has_opt import --reject-file; then on_error=1; fi
resume=0
if has_opt import --resume; then resume=1; fi
run_opt=0
if has_opt rollback --run; then run_opt=1; fi

# ---- helpers ---------------------------------------------------------------

stepno=0
step_title=
step() {
	stepno=$((stepno + 1))
	step_title=$1
	printf '\n== %d. %s\n' "$stepno" "$1"
}

fail() {
	printf 'daily-update: step %d (%s) FAILED: %s\n' "$stepno" \
		"$step_title" "$*" >&2
	exit 1
}

note() { printf '   (%s)\n' "$*"; }

# Microseconds since the epoch (bash 5 has EPOCHREALTIME; else date).
now_us() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo "$t"
	else
		date +%s%6N
	fi
}
t0=0
clock() { t0=$(now_us); }
# rate N WHAT: the throughput line of the step since `clock` (N WHATs
# processed; N 0: the time only).
rate() {
	local us=$(($(now_us) - t0))
	awk -v n="$1" -v what="${2:-}" -v us="$us" 'BEGIN {
		s = us / 1e6; if (s <= 0) s = 1e-6
		if (n == 0) printf "   -> %.2f s\n", s
		else if (n == 1) printf "   -> 1 %s in %.2f s\n", substr(what, 1, length(what) - 1), s
		else printf "   -> %d %s in %.2f s: %.0f %s/s\n", n, what, s, n / s, what
	}'
}

# run EXPECTED OUT CMD...: run the logbook command CMD with stdout and
# stderr in file OUT; fail unless it exits with status EXPECTED.
run() {
	local want=$1 out=$2 rc=0
	shift 2
	"$lb" "$@" >"$out" 2>&1 || rc=$?
	if [ "$rc" != "$want" ]; then
		sed 's/^/   | /' "$out" | head -20 >&2
		fail "'logbook $*' exited with $rc, expected $want"
	fi
}

# Show a file's lines indented, values cut to fit a terminal.
show() { cut -c1-"${2:-110}" "$1" | sed 's/^/   /'; }

# A number from a line of text: field FIELD (awk) of the first line
# matching PATTERN.
num() { awk -v f="$3" "/$2/ { print \$f + 0; exit }" "$1"; }

last_batch() {
	"$lb" log "$db" --limit 1 --json | sed -n 's/^{"id":\([0-9]*\),.*/\1/p'
}

table_records() {
	"$lb" stat "$1" --json | python3 -c '
import json, sys
print(sum(t["records"] for t in json.load(sys.stdin)["tables"]))'
}

# The helpers that read the tool's JSON and the feed: `report` (what an
# import did, and its rejects), `fix` (the operator's corrections).
cat >feed.py <<'EOF'
import json, sys

def n_(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)

def report(report, feed, rejects, counts):
    """Print what an import did from its --json report. Its rejects are
    the reject file the import wrote (--reject-file); an import without
    that option leaves none, and then they are built here in the same
    form ({"file", "line", "reasons", "record"} per line): every line of a
    failed batch, and the lines named by issues of batches that committed
    the rest. Writes "rejected total committed last_batch" to counts."""
    reasons, lines, failed, batches, summary = {}, set(), [], 0, {}
    for l in open(report):
        o = json.loads(l)
        if o.get("summary"):
            summary = o
            continue
        if "batch" not in o:
            continue
        batches += 1
        for i in o.get("issues", []):
            if i.get("line"):
                reasons.setdefault(i["line"], []).append(i)
                lines.add(i["line"])
        if not o.get("success"):
            failed.append(o)
            lines.update(range(o["first_line"], o["last_line"] + 1))
    try:
        rej = [json.loads(l) for l in open(rejects) if l.strip()]
    except FileNotFoundError:
        rej = []
        for n, text in enumerate(open(feed), 1):
            if n in lines and text.strip():
                rej.append({"file": feed, "line": n, "reasons": [
                    {k: i.get(k) for k in ("kind", "table", "key", "field", "message")}
                    for i in reasons.get(n, [])], "record": json.loads(text)})
        with open(rejects, "w") as f:
            for o in rej:
                f.write(json.dumps(o, ensure_ascii=False) + "\n")
    # a reason of kind "batch": rejected with its batch, for another
    # record's issue
    own = lambda o: [i for i in o.get("reasons", []) if i.get("kind") != "batch"]
    by_kind = {}
    for o in rej:
        for i in own(o):
            by_kind[i["kind"]] = by_kind.get(i["kind"], 0) + 1
    for o in failed[:4]:
        first = o["issues"][0] if o["issues"] else {}
        print("   batch %d FAILED (lines %d-%d): %s, first: line %s %s %s %s" % (
            o["batch"], o["first_line"], o["last_line"],
            n_(o["issues_total"], "issue", "issues"), first.get("line"), first.get("kind"),
            first.get("table"), first.get("field") or ""))
    if len(failed) > 4:
        print("   ... and %s" % n_(len(failed) - 4, "more failed batch", "more failed batches"))
    committed = summary.get("records_committed", 0)
    print("   %s: %d committed whole, %d with records set aside, %d failed" % (
        n_(batches, "batch", "batches"), batches - len(failed) - summary.get("batches_partial", 0),
        summary.get("batches_partial", 0), len(failed)))
    print("   %s: %d committed, %d rejected (%d with an issue of their own: %s)" % (
        n_(summary.get("records", 0), "record", "records"), committed, len(rej),
        sum(1 for o in rej if own(o)),
        ", ".join("%s %d" % kv for kv in sorted(by_kind.items()))))
    runb = summary.get("run_batches") or []
    open(counts, "w").write("%d %d %d %d %s\n" % (
        len(rej), summary.get("records", 0), committed, max(runb) if runb else 0,
        summary.get("run") or 0))

def fix(rejected, fixed, unfixable, plain, existing=None):
    """The operator's corrections of rejected records: a title cut to the
    schema's 200 characters, a congress number out of "118th", a missing
    or mistyped date, name or URL marked unknown. A reference to a hearing
    that exists nowhere, and (with existing, the export of the database,
    for an import in insert mode) a second record under one key, cannot be
    fixed here: those go back to the feed's owner. Records rejected only
    because of others are imported again as they are. fixed is in the
    reject file's form (for import --from-rejects), plain holds the bare
    records."""
    n_fixed = n_same = n_bad = 0
    keys = None
    if existing:
        keys = set((o["table"], json.dumps(o["key"])) for o in map(json.loads, open(existing)))
    with open(fixed, "w") as f, open(unfixable, "w") as u, open(plain, "w") as p:
        for l in open(rejected):
            o = json.loads(l)
            r = o["record"]
            v = r.get("value") if isinstance(r.get("value"), dict) else {}
            kinds = [i["kind"] for i in o.get("reasons", [])]
            changed = False
            k = (r["table"], json.dumps(r["key"]))
            if ("duplicate" in kinds or "-X" in str(v.get("hearing_id", ""))
                    or (keys is not None and k in keys)):
                u.write(json.dumps(o, ensure_ascii=False) + "\n")
                n_bad += 1
                continue
            if keys is not None:
                keys.add(k)
            if r["table"] == "hearings":
                if len(v.get("title", "")) > 200:
                    v["title"] = v["title"][:200].rstrip()
                    changed = True
                if not isinstance(v.get("date"), str):
                    v["date"] = "unknown"
                    changed = True
                if not isinstance(v.get("congress"), int):
                    v["congress"] = int("".join(c for c in str(v.get("congress")) if c.isdigit()) or 0)
                    changed = True
            for field in {"witnesses": "name", "documents": "url"}.get(r["table"], "").split():
                if not isinstance(v.get(field), str):
                    v[field] = "(unknown)"
                    changed = True
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
            p.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
            n_fixed += changed
            n_same += not changed
    print("   %s fixed, %d imported again as they were (rejected with others), "
          "%d that cannot be fixed here (kept for the feed's owner)" % (
              n_(n_fixed, "record", "records"), n_same, n_bad))

if __name__ == "__main__":
    if sys.argv[1] == "report":
        report(*sys.argv[2:6])
    elif sys.argv[1] == "fix":
        fix(*sys.argv[2:7])
EOF

# import_day DAY FILE REPORT [OPTIONS]: import one day with --json (into
# REPORT), print what it did, leave its rejects in rejects-DAY.jsonl (the
# import's reject file, where it has --reject-file), and check that
# committed and rejected records add up to the input.
import_day() {
	local day=$1 file=$2 report=$3
	shift 3
	local lines before rc=0 nrej total committed last run
	lines=$(grep -c . "$file")
	before=$(last_batch)
	rm -f "rejects-$day.jsonl"
	set -- --batch-size "$batch_size" --json "$@"
	[ "$on_error" = 1 ] && set -- "$@" --reject-file "rejects-$day.jsonl"
	clock
	"$lb" import "$db" "$file" "$@" >"$report" 2>"$report.err" || rc=$?
	rate "$lines" records
	# 0: every record committed; 1: some were rejected
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || {
		show "$report.err"
		fail "import exited with $rc"
	}
	python3 feed.py report "$report" "$file" "rejects-$day.jsonl" counts.txt
	read -r nrej total committed last run <counts.txt
	[ "$total" = "$lines" ] || fail "the import read $total records of $lines"
	[ "$((committed + nrej))" = "$lines" ] ||
		fail "records do not add up: $committed committed + $nrej rejected != $lines"
	[ "$nrej" -ge 1 ] || fail "nothing rejected: the feed has broken records"
	[ "$rc" = 1 ] || fail "import exited 0 although records were rejected"
	# the last batch that holds records of the file (a run whose last
	# batches failed ends with a batch holding only the run's record)
	last=$("$lb" log "$db" --since "$before" --json | python3 -c '
import json, sys
ids = [o["id"] for o in map(json.loads, sys.stdin)
       if o["label"].startswith("import %s from line " % sys.argv[1])]
print(max(ids) if ids else 0)' "$file")
	[ "$last" -gt "$before" ] || fail "no batch committed"
	if [ "$run" != 0 ]; then
		echo "   run $run: batches $((before + 1))..$last; rejects in rejects-$day.jsonl"
	else
		echo "   committed as batches $((before + 1))..$last"
	fi
	last_committed=$last
}

# fix_rejects DAY MODE: correct rejects-DAY.jsonl and import the
# corrections in MODE (import --from-rejects where the tool has it);
# every batch must commit.
fix_rejects() {
	local day=$1 mode=$2 n before existing=
	if [ "$mode" = insert ]; then
		# a key the database holds already is a duplicate
		"$lb" export "$db" >"existing-$day.jsonl"
		existing=existing-$day.jsonl
	fi
	python3 feed.py fix "rejects-$day.jsonl" "fixed-$day.jsonl" \
		"unfixable-$day.jsonl" "fixed-$day.records.jsonl" $existing
	n=$(grep -c . "fixed-$day.jsonl" || true)
	before=$(last_batch)
	clock
	if [ "$on_error" = 1 ]; then
		run 0 "fixed-$day.out" import "$db" "fixed-$day.jsonl" --from-rejects \
			--batch-size "$batch_size" --mode "$mode"
	else
		run 0 "fixed-$day.out" import "$db" "fixed-$day.records.jsonl" \
			--batch-size "$batch_size" --mode "$mode"
	fi
	rate "$n" records
	grep -E '^[0-9]+ (batch|record)' "fixed-$day.out" | sed 's/^/   /'
	grep -q ' 0 failed$' "fixed-$day.out" || fail "a batch of corrected records failed"
	echo "   committed as batches $((before + 1))..$(last_batch)"
}

start=$(now_us)
echo "logbook daily update: $records records a day, batches of $batch_size, 1 record in 1,000 broken"
echo "($("$lb" --version))"

# ---- 1. generate -----------------------------------------------------------
step "Generate three days of a hearings feed"
clock
for d in 1 2 3; do
	"$lb" gen hearings --days 3 --day "$d" --records "$records" \
		--seed "$seed" --bad-rate "$bad_rate" >"day$d.jsonl"
done
"$lb" gen schema >schema.json
rate "$((3 * records))" records
for d in 1 2 3; do
	n=$(grep -c . "day$d.jsonl")
	[ "$n" = "$records" ] || fail "day$d.jsonl has $n records, not $records"
	printf '   day%d.jsonl: %s\n' "$d" "$(sed 's/^{"table":"\([a-z]*\)".*/\1/' \
		"day$d.jsonl" | sort | uniq -c | awk '{ printf "%s%d %s", s, $1, $2; s = ", " }')"
done
echo "   revised hearings on day 2: $(grep -c '(revised)' day2.jsonl)"

# ---- 2. create -------------------------------------------------------------
step "Create the database with the hearings schema"
clock
run 0 init.out init "$db" --schema schema.json
rate 0
show init.out

# ---- 3. day 1 --------------------------------------------------------------
# Whole batches are validated: one broken record fails its batch, and a
# witness whose hearing was in a failed batch fails in turn, so a few
# broken records cost many batches.
step "Import day 1 in batches of $batch_size (a broken record fails its batch)"
import_day day1 day1.jsonl import1.json

# ---- 4. fix day 1 ----------------------------------------------------------
step "Fix day 1's rejects and import them again"
fix_rejects day1 insert

# ---- 5. checkpoint ---------------------------------------------------------
step "Checkpoint after day 1"
n=$(table_records "$db")
clock
run 0 ck.out checkpoint "$db" checkpoint-day1
rate "$n" records
show ck.out
ck_batch=$(sed -n 's/^checkpoint at batch \([0-9]*\).*/\1/p' ck.out)
[ "$ck_batch" = "$(last_batch)" ] ||
	fail "checkpoint at batch '$ck_batch', the last batch is $(last_batch)"

# ---- 6. day 2 --------------------------------------------------------------
# Day 2 revises some of day 1's hearings, so it is imported as upserts.
if [ "$on_error" = 1 ]; then
	step "Import day 2, setting aside only the broken records (--on-error record)"
	import_day day2 day2.jsonl import2.json --mode upsert --allow-repeats --on-error record
else
	step "Import day 2 in batches of $batch_size (upsert: it revises day 1)"
	note "this logbook's import has no --on-error record / --reject-file: whole batches are rejected, and their lines taken from its report"
	import_day day2 day2.jsonl import2.json --mode upsert --allow-repeats
fi
day2_last=$last_committed

# ---- 7. fix day 2 ----------------------------------------------------------
step "Fix day 2's rejects and import them again"
fix_rejects day2 upsert

# ---- 8. the bad batch --------------------------------------------------------
# The feed's last delivery of day 2 turns out to be wrong.
bad=$day2_last
step "Day 2's last batch, $bad, turns out to be bad: what did it change?"
clock
run 0 show.out show "$db" "$bad" --json
changes=$(($(wc -l <show.out) - 1))
rate "$changes" changes
run 0 show-short.out show "$db" "$bad" --limit 2
show show-short.out
echo "   ... $changes $([ "$changes" = 1 ] && echo change || echo changes) in all"
# The hearing the operator corrects in step 9: the first one the batch wrote.
key=$(grep -m1 '"op":"put","table":"hearings"' show.out |
	sed 's/.*"key":"\([^"]*\)".*/\1/')
[ -n "$key" ] || fail "batch $bad wrote no hearing"
# Its value before the bad batch: null, or a flat JSON object.
before=$(grep -m1 "\"table\":\"hearings\",\"key\":\"$key\"" show.out |
	sed 's/.*"before":\(null\|{[^}]*}\),"after":.*/\1/')

# ---- 9. a later batch depends on it ------------------------------------------
# An operator corrects a hearing of the bad batch by hand, in a batch of its
# own: now a later batch depends on the bad one.
step "An operator corrects hearing $key by hand"
value=$("$lb" get "$db" hearings "$key")
fixed=$(printf '%s' "$value" |
	sed 's/"title":"[^"]*"/"title":"Corrected title (by hand)"/')
clock
run 0 put.out put "$db" hearings "$key" "$fixed"
rate 1 records
show put.out
put_batch=$(last_batch)

# ---- 10. strict rollback: refused ------------------------------------------
step "Roll back batch $bad (strict): a later batch changed its data"
clock
run 1 rb-strict.out rollback "$db" "$bad"
rate "$changes" changes
head -5 rb-strict.out | fold -s -w 106 | sed 's/^/   /'
grep -q "^conflict: hearings $key was changed by batch $put_batch" \
	rb-strict.out || fail "the conflict on $key (batch $put_batch) is not shown"
[ "$(last_batch)" = "$put_batch" ] || fail "a refused rollback wrote a batch"

# ---- 11. cascade ------------------------------------------------------------
step "Roll back batch $bad with --cascade: first the dry run, then for real"
clock
run 0 rb-dry.out rollback "$db" "$bad" --cascade --dry-run
rate "$changes" changes
show rb-dry.out
[ "$(last_batch)" = "$put_batch" ] || fail "a dry run wrote a batch"
grep -q "^  batch $put_batch (1 record): " rb-dry.out ||
	fail "the dry run does not name batch $put_batch"
dry_records=$(sed -n 's/.* would write \([0-9]*\) records\{0,1\};.*/\1/p' rb-dry.out)
clock
run 0 rb.out rollback "$db" "$bad" --cascade
rb_records=$(sed -n 's/.*(\([0-9]*\) records\{0,1\}).*/\1/p' rb.out)
rate "${rb_records:-0}" records
show rb.out
[ "$rb_records" = "$dry_records" ] ||
	fail "the dry run said $dry_records records, the rollback wrote $rb_records"
rb_batch=$(last_batch)
grep -q "rolled back batch $bad in batch $rb_batch" rb.out ||
	fail "unexpected output"
"$lb" log "$db" --since "$((bad - 1))" --json >states.out
for b in "$bad" "$put_batch"; do
	grep -q "^{\"id\":$b,.*\"rolled_back_by\":$rb_batch," states.out ||
		fail "batch $b is not marked as rolled back by $rb_batch"
done
rc=0
"$lb" get "$db" hearings "$key" >now.out 2>/dev/null || rc=$?
if [ "$before" = null ]; then
	[ "$rc" = 1 ] || fail "$key still exists after the rollback"
	echo "   hearing $key is gone again, as before batch $bad"
else
	if [ "$rc" != 0 ] || [ "$(cat now.out)" != "$before" ]; then
		fail "$key does not hold its value from before batch $bad"
	fi
	echo "   hearing $key holds its value from before batch $bad again"
fi

# ---- 12. day 3: interrupted, resumed ---------------------------------------
# The import of day 3 is stopped half-way (SIGTERM, as a shutdown would;
# a script's background job ignores Ctrl-C's SIGINT). What it committed
# stays; the rest is imported after. The reference is the same import, in
# one go, into a replay of the database as it is now.
step "Import day 3, interrupted half-way, then resumed"
before3=$(last_batch)
"$lb" export "$db" >before-day3.jsonl
run 0 ref.out replay "$db" ref-day3
"$lb" import ref-day3 day3.jsonl --batch-size 100 --mode upsert --allow-repeats --nosync \
	>/dev/null 2>&1 || true
lines3=$(grep -c . day3.jsonl)
clock
"$lb" import "$db" day3.jsonl --batch-size 100 --mode upsert --allow-repeats \
	>import3a.out 2>&1 &
pid=$!
# wait for a few batches, then interrupt
for _ in $(seq 1 400); do
	kill -0 "$pid" 2>/dev/null || break
	[ "$(last_batch)" -ge $((before3 + 5)) ] && break
	sleep 0.01
done
kill -TERM "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
us=$(($(now_us) - t0))
mid=$(last_batch)
# the line after the last batch of day3.jsonl that committed
last_line=$("$lb" log "$db" --since "$before3" --json | python3 -c '
import json, re, sys
n = 0
for o in map(json.loads, sys.stdin):
    m = re.fullmatch(r"import day3\.jsonl from line (\d+)", o["label"])
    if m:
        n = max(n, int(m.group(1)) + 99)
print(n)')
# the import says where it stopped (lines of failed batches are done too)
done_line=$(sed -n 's/^interrupted after line \([0-9]*\);.*/\1/p' import3a.out)
[ -n "$done_line" ] || done_line=$last_line
t0=$(($(now_us) - us))
rate "$done_line" lines
if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
	note "the import finished before it could be interrupted: nothing left to resume"
else
	echo "   interrupted (exit status $rc) after batch $mid"
	grep -E '^(interrupted|run [0-9]+:)' import3a.out | sed 's/^/   /' || true
fi
clock
rc=0
if [ "$resume" = 1 ]; then
	"$lb" import "$db" day3.jsonl --batch-size 100 --mode upsert --allow-repeats --resume \
		>import3b.out 2>&1 || rc=$?
else
	note "this logbook's import has no --resume: the rest is imported from line $((last_line + 1)), after the last batch that committed"
	tail -n +"$((last_line + 1))" day3.jsonl >day3-rest.jsonl
	"$lb" import "$db" day3-rest.jsonl --batch-size 100 --mode upsert --allow-repeats \
		>import3b.out 2>&1 || rc=$?
fi
if [ "$resume" = 1 ]; then rate "$((lines3 - done_line))" lines; else rate "$((lines3 - last_line))" lines; fi
[ "$rc" = 0 ] || [ "$rc" = 1 ] || {
	show import3b.out
	fail "the resumed import exited with $rc"
}
grep -E '^[0-9]+ (batch|record)|^run [0-9]+' import3b.out | sed 's/^/   /'
"$lb" export "$db" >after-day3.jsonl
"$lb" export ref-day3 >ref-day3.jsonl
cmp -s after-day3.jsonl ref-day3.jsonl ||
	fail "the interrupted and resumed import differs from one import in one go"
echo "   equals one uninterrupted import of day 3, record for record ($(wc -l <after-day3.jsonl) records)"
after3=$(last_batch)

# ---- 13. roll back the run ---------------------------------------------------
# The whole import of day 3, both of its parts, is taken back: first a dry
# run that names every batch it would undo, then the real call.
step "Day 3 was the wrong file: roll back its whole run (batches $((before3 + 1))..$after3)"
clock
if [ "$run_opt" = 1 ]; then
	# the runs that imported day 3 (--resume goes on with the same run)
	runs3=$("$lb" runs "$db" --json | python3 -c '
import json, sys
print(" ".join(str(o["run"]) for o in sorted(map(json.loads, sys.stdin),
      key=lambda o: -o["run"]) if o["file"].startswith("day3")))')
	[ -n "$runs3" ] || fail "no run of day 3 is recorded"
	for r in $runs3; do
		run 0 rt-dry.out rollback "$db" --run "$r" --dry-run
		show rt-dry.out
		[ "$(last_batch)" = "$after3" ] || fail "a dry run wrote a batch"
		run 0 run.out rollback "$db" --run "$r"
		show run.out
	done
else
	run 0 rt-dry.out rollback-to "$db" "$before3" --dry-run
	show rt-dry.out
	grep -q "^would undo batches $((before3 + 1))-$after3$" rt-dry.out ||
		fail "the dry run does not name batches $((before3 + 1))-$after3"
	[ "$(last_batch)" = "$after3" ] || fail "a dry run wrote a batch"
	note "this logbook's rollback has no --run: the run's batches are the last ones, so rollback-to the batch before them undoes exactly the run"
	run 0 run.out rollback-to "$db" "$before3"
	show run.out
fi
rate "$(sed -n 's/.*(\([0-9]*\) records\{0,1\}).*/\1/p' run.out | head -1)" records
"$lb" export "$db" >now.jsonl
cmp -s now.jsonl before-day3.jsonl ||
	fail "the database does not hold what it held before day 3"
echo "   the tables hold what they held before day 3, record for record"
"$lb" log "$db" --since "$before3" --json | python3 -c '
import json, sys
left = [o["id"] for o in map(json.loads, sys.stdin)
        if o["label"].startswith("import day3") and not o["rolled_back_by"]]
sys.exit("batches still standing: %s" % left if left else 0)' ||
	fail "a batch of day 3 still stands"

# ---- 14. log and history ------------------------------------------------------
step "The log (newest first) and the history of hearing $key"
clock
run 0 log.out log "$db" --limit 6
run 0 hist.out history "$db" hearings "$key"
rate "$(($(wc -l <log.out) - 1 + $(grep -c '^batch ' hist.out)))" rows
show log.out 150
echo
awk '/^batch / { print; getline; print }' hist.out | cut -c1-106 | sed 's/^/   /'

# ---- 15. replay ------------------------------------------------------------
step "Replay: to the checkpoint's batch $ck_batch, then from the checkpoint to the end"
clock
run 0 rp1.out replay "$db" "past-$ck_batch" --to "$ck_batch"
rate "$(sed -n 's/.*(\([0-9]*\) records\{0,1\} applied.*/\1/p' rp1.out)" records
show rp1.out
"$lb" export "checkpoint-day1" >a.jsonl
"$lb" export "past-$ck_batch" >b.jsonl
cmp -s a.jsonl b.jsonl || fail "the replay to batch $ck_batch differs from the checkpoint"
echo "   equals the checkpoint, record for record ($(wc -l <a.jsonl) records)"
clock
run 0 rp2.out replay "$db" now --from checkpoint-day1
rate "$(sed -n 's/.*(\([0-9]*\) records\{0,1\} applied.*/\1/p' rp2.out)" records
show rp2.out
"$lb" export "$db" >a.jsonl
"$lb" export now >b.jsonl
cmp -s a.jsonl b.jsonl || fail "the replay from the checkpoint differs from the database"
echo "   equals the live database, record for record ($(wc -l <a.jsonl) records)"

# ---- 16. verify ------------------------------------------------------------
step "Verify: segment checksums, hash chain, and a replay against the tables"
clock
run 0 verify.out verify "$db" --replay
rate "$(num verify.out '^batches' 6)" records
show verify.out
grep -q '^verify: ok' verify.out || fail "verify did not say ok"

# ---- 17. prune and compact ---------------------------------------------------
step "Prune the log before the checkpoint, compact the file, verify again"
clock
run 0 prune.out prune "$db" --before "$((ck_batch + 1))"
show prune.out
run 0 stat1.out stat "$db"
grep -E '^(size|log|pruned) ' stat1.out | sed 's/^/   /'
run 0 compact.out compact "$db"
show compact.out
n=$(table_records "$db")
run 0 verify2.out verify "$db" --replay
grep -q '^verify: ok' verify2.out || fail "verify after compact did not say ok"
rate "$n" records
"$lb" export "$db" >b.jsonl
cmp -s a.jsonl b.jsonl || fail "compact changed the tables"
echo "   verify: ok; the tables are unchanged"

# ---- 18. stat --------------------------------------------------------------
step "Size on disk, log size and compression"
clock
run 0 stat.out stat "$db"
rate "$(table_records "$db")" records
grep -E '^(size|tables|batches|log|log bytes|pruned) ' stat.out | sed 's/^/   /'

if [ -n "$save" ]; then
	if [ -e "$save" ] && [ ! -f "$save/data.mdb" ]; then
		fail "--save $save: exists and holds no database; not replacing it"
	fi
	rm -rf "$save"
	mkdir -p "$(dirname "$save")"
	cp -r "$db" "$save"
	echo
	echo "saved the database as $save"
fi

total_us=$(($(now_us) - start))
printf '\ndaily-update: all %d steps OK in %s s\n' "$stepno" \
	"$(awk -v us="$total_us" 'BEGIN { printf "%.1f", us / 1e6 }')"
