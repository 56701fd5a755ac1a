#!/usr/bin/env bash
# A tiny run of logbook-bench: every system commits, rolls back, replays and
# reads 2,000 W1 records, and the bench checks every value it reads back.
# Exits non-zero if any phase fails. The full runs are `make bench` and
# `make bench-full`.
set -euo pipefail
bench="${LB_BUILD:-build}/logbook-bench"
out="$("$bench" --records 2000 --runs 1 --quiet 2>&1)" || {
	printf '%s\n' "$out"
	echo "0 passed, 1 failed"
	exit 1
}
printf '%s\n' "$out" | tail -n 3
echo "1 passed, 0 failed"
