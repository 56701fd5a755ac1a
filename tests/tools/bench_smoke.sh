#!/usr/bin/env bash
# A tiny run of logbook-bench: every system commits, rolls back, replays and
# reads 2,000 W1 records, and the bench checks every value it reads back.
# Exits non-zero if any phase fails or the repeated rollback gave no figure. The full runs are `make bench` and
# `make bench-full`.
set -euo pipefail
bench="${LB_BUILD:-build}/logbook-bench"
out="$("$bench" --records 2000 --runs 1 --quiet 2>&1)" || {
	printf '%s\n' "$out"
	echo "0 passed, 1 failed"
	exit 1
}
# the repeated rollback ran: its row holds a number for logbook
if ! printf '%s\n' "$out" |
	grep -Eq '^rollback last, repeated +ms +[0-9]'; then
	printf '%s\n' "$out"
	echo "no figure for the repeated rollback"
	echo "0 passed, 1 failed"
	exit 1
fi
printf '%s\n' "$out" | tail -n 3
echo "1 passed, 0 failed"
