#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# exports.sh: the shared library exports exactly the functions that
# include/logbook.h declares with LB_API: none missing (a forgotten LB_API
# under -fvisibility=hidden) and nothing else (no lb__ internals, no
# stray globals). Run by `make test` from the repository root, with
# LB_BUILD naming the build directory.
set -euo pipefail

build=${LB_BUILD:-build}
so=$build/liblogbook.so
header=include/logbook.h

if [ ! -e "$so" ]; then
  echo "exports.sh: $so not found (is the library built?)" >&2
  exit 1
fi

declared=$(sed -n 's/^LB_API .*[ *]\(lb_[A-Za-z0-9_]*\)(.*/\1/p' "$header" |
  sort -u)
if [ -z "$declared" ]; then
  echo "exports.sh: found no LB_API functions in $header" >&2
  exit 1
fi

# Defined dynamic symbols, minus what the linker and sanitizer runtimes add.
exported=$(nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' |
  sed 's/@.*//' |
  grep -Ev '^(_init|_fini|_edata|_end|__bss_start|__(odr_)?asan.*|___asan.*|__ubsan.*|__sanitizer.*)$' |
  sort -u)

missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))

status=0
if [ -n "$missing" ]; then
  echo "declared with LB_API in $header but not exported by $so:"
  echo "$missing" | sed 's/^/  /'
  status=1
fi
if [ -n "$extra" ]; then
  echo "exported by $so but not declared with LB_API in $header:"
  echo "$extra" | sed 's/^/  /'
  status=1
fi
if [ $status -eq 0 ]; then
  echo "$(echo "$declared" | wc -l) functions exported, nothing else"
fi
exit $status
