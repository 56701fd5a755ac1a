# SPDX-License-Identifier: MIT
#
# lib.sh: the harness the CLI test scripts share. Source it, then set up:
#
#   . "$(dirname "$0")/lib.sh"
#   lb_setup NAME TAG    NAME.sh names the script in messages; TAG names
#                        its temporary directory
#   ...checks...
#   lb_finish            prints "N passed, N failed"; fails if any failed
#
# lb_setup sets LB (the tool, absolute: $LB_BIN or build/logbook), SRC (the
# source tree), T (a fresh temporary directory, the working directory,
# removed at exit) and the counters pass and fail. A script that starts
# background processes adds their ids to bg: at exit they are sent
# $bg_signal (TERM unless the script sets it) and waited for.
#
# Checks count a pass (ok) or print "FAIL [section]: why" (bad). Most run a
# command first: run CMD... leaves its stdout in out, its stderr in err and
# its status in $rc (with run_log=1, out and err are also appended to
# all.out and all.err).

pass=0
fail=0
rc=0
current=""
bg=""
bg_signal=TERM
run_log=""

lb_cleanup() {
	local p
	# only the processes the script started
	for p in $bg; do
		kill -"$bg_signal" "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -n "${T:-}" ] && rm -rf "$T"
}

# lb_setup NAME TAG: check the tool, make the temporary directory, go there.
lb_setup() {
	local name=$1 tag=$2
	SRC=$(cd "$(dirname "$0")/../.." && pwd)
	LB=${LB_BIN:-build/logbook}
	case "$LB" in
	/*) ;;
	*) LB=$PWD/$LB ;;
	esac
	if [ ! -x "$LB" ]; then
		echo "$name.sh: $LB is not an executable (build it with make)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	T=$(mktemp -d "${TMPDIR:-/tmp}/logbook-$tag.XXXXXX") || exit 1
	trap lb_cleanup EXIT
	cd "$T" || exit 1
}

lb_finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}

ok() { pass=$((pass + 1)); }
bad() {
	fail=$((fail + 1))
	echo "FAIL [$current]: $*"
}
# section NAME: name the checks that follow (printed when verbose).
section() {
	[ -n "${LB_TEST_VERBOSE:-}" ] && [ "$LB_TEST_VERBOSE" != 0 ] &&
		echo "$(date +%T) $1"
	current=$1
}

# run CMD...: stdout to out, stderr to err, status to $rc.
run() {
	"$@" >out 2>err
	rc=$?
	if [ -n "$run_log" ]; then
		cat out >>all.out
		cat err >>all.err
	fi
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
has_out() { if grep -q -- "$1" out; then ok; else bad "stdout lacks '$1': $(head -c 600 out)"; fi; }
lacks_out() { if grep -q -- "$1" out; then bad "stdout has '$1': $(head -c 600 out)"; else ok; fi; }
has_err() { if grep -q -- "$1" err; then ok; else bad "stderr lacks '$1': $(head -c 400 err)"; fi; }
lacks_err() { if grep -q -- "$1" err; then bad "stderr has '$1': $(head -c 400 err)"; else ok; fi; }
no_err() { if [ ! -s err ]; then ok; else bad "stderr not empty: $(head -c 400 err)"; fi; }
# one_err TEXT: one clear line on stderr, starting with "logbook:" and
# naming TEXT.
one_err() {
	local n
	n=$(wc -l <err)
	if [ "$n" = 1 ] && grep -q "^logbook: " err && grep -q -- "$1" err; then
		ok
	else
		bad "want one stderr line naming '$1', got $n: $(head -c 400 err)"
	fi
}
# same FILE1 FILE2: byte for byte.
same() { if cmp -s "$1" "$2"; then ok; else bad "$1 and $2 differ: $(cmp "$1" "$2" 2>&1 | head -1)"; fi; }
# eq GOT WANT WHAT
eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', want '$2'"; fi; }
# num FIELD: the integer value of "FIELD": in out's last line.
num() { tail -n 1 out | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
# py NAME SCRIPT ARGS...: a python check (python3 -c SCRIPT ARGS...); its
# stderr explains a failure.
py() {
	local name=$1 script=$2
	shift 2
	if python3 -c "$script" "$@" 2>py.err; then ok; else bad "$name: $(head -c 600 py.err)"; fi
}
# pyin NAME ARGS... <<'EOF' SCRIPT EOF: the same with the script on stdin;
# its output explains a failure.
pyin() {
	local name=$1 msg
	shift
	if msg=$(python3 - "$@" 2>&1); then ok; else bad "$name: $msg"; fi
}
# marks DIR: "id:rolled_back_by" of every batch, oldest first.
marks() {
	"$LB" log "$1" --json | python3 -c '
import json, sys
b = [json.loads(l) for l in sys.stdin]
print(" ".join("%d:%d" % (o["id"], o["rolled_back_by"] or 0) for o in sorted(b, key=lambda o: o["id"])))'
}
# serve_start NAME ARGS...: start "$LB serve ARGS..." in the background,
# stdout to NAME.out and stderr to NAME.err; sets SPID (also added to bg)
# and PORT, the loopback port it prints (empty if none within 10 s).
serve_start() {
	local name=$1
	shift
	"$LB" serve "$@" >"$name.out" 2>"$name.err" &
	SPID=$!
	bg="$bg $SPID"
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$name.out" 2>/dev/null)
		[ -n "$PORT" ] && break
		sleep 0.1
	done
}
# last_batch DIR: the id of the last batch.
last_batch() { "$LB" log "$1" --json --limit 1 | sed -n 's/^{"id":\([0-9]*\),.*/\1/p'; }
