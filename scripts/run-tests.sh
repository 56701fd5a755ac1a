#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-tests.sh: run logbook's tests and print one PASS/FAIL line each, then
# a final "N passed, N failed" line. Exits 1 if anything failed. `make test`
# calls it; it can also be run by hand:
#
#   scripts/run-tests.sh BUILD_DIR [ITEM...]
#
# ITEMs are test binaries, test scripts (*.sh) and example programs, run in
# the order given. Without ITEMs it runs, in this order, BUILD_DIR/tests/test_*,
# the executable scripts tests/*/*.sh and BUILD_DIR/examples/*.
#
# Every item runs from the repository root with stdin from /dev/null, under
# `timeout`, with TMPDIR set to a fresh directory that is removed afterwards,
# and with LB_BUILD (absolute BUILD_DIR) and LB_BIN (the CLI) in the
# environment. Scripts that are not executable are skipped (they may be
# libraries sourced by other scripts). Output is shown only for failures.
#
# Environment:
#   LB_TEST_TIMEOUT   seconds per item (default 600)
#   LB_TEST_VERBOSE   1 = show the output of passing items too
#   LB_TEST_LOG_LINES most lines of a failure's output to show (default 400)
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [ITEM...]" >&2
  exit 2
fi

cd "$(dirname "$0")/.." || exit 2
build=$1
shift
case "$build" in
/*) ;;
*) build=$PWD/$build ;;
esac

timeout_s=${LB_TEST_TIMEOUT:-600}
verbose=${LB_TEST_VERBOSE:-0}
log_lines=${LB_TEST_LOG_LINES:-400}

items=("$@")
if [ ${#items[@]} -eq 0 ]; then
  shopt -s nullglob
  items=("$build"/tests/test_* tests/*/*.sh "$build"/examples/*)
  shopt -u nullglob
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/logbook-run.XXXXXX") || exit 2
trap 'rm -rf "$root"' EXIT
trap 'exit 130' INT TERM

export LB_BUILD=$build
export LB_BIN=$build/logbook

now_ms() {
  local t
  t=$(date +%s%N)
  echo $((t / 1000000))
}

passed=0
failed=0
failed_names=()
n=0
for item in "${items[@]}"; do
  case "$item" in
  *.sh)
    name=$item
    if [ ! -x "$item" ]; then
      continue
    fi
    ;;
  "$build"/examples/*) name=examples/${item##*/} ;;
  */*) name=${item##*/} ;;
  *) name=$item ;;
  esac
  case "$item" in
  /*) cmd=$item ;;
  *) cmd=./$item ;;
  esac

  n=$((n + 1))
  dir=$root/$n
  mkdir -p "$dir/tmp"
  log=$dir/log
  start=$(now_ms)
  if [ ! -x "$cmd" ]; then
    echo "not found or not executable: $item" >"$log"
    rc=127
  else
    # In a subshell whose stderr is /dev/null, so that a crash is reported
    # below rather than by bash's own "Segmentation fault" job message.
    (
      TMPDIR=$dir/tmp timeout -k 10 "$timeout_s" "$cmd" </dev/null >"$log" 2>&1
      exit $?
    ) 2>/dev/null
    rc=$?
  fi
  ms=$(($(now_ms) - start))
  took=$(printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10)))

  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    printf 'PASS  %s (%s)\n' "$name" "$took"
    if [ "$verbose" = 1 ]; then
      sed 's/^/    /' "$log"
    fi
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      why="timed out after ${timeout_s}s"
    elif [ $rc -gt 128 ]; then
      why="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else
      why="exit $rc"
    fi
    printf 'FAIL  %s (%s, %s)\n' "$name" "$why" "$took"
    total=$(wc -l <"$log")
    if [ "$total" -gt "$log_lines" ]; then
      echo "    ... $((total - log_lines)) earlier lines not shown ..."
    fi
    tail -n "$log_lines" "$log" | sed 's/^/    /'
  fi
  rm -rf "$dir"
done

if [ $failed -gt 0 ]; then
  echo "failed: ${failed_names[*]}"
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "no tests found"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
