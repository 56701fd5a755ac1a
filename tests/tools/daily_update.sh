#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# daily_update.sh: the `make run` scenario (examples/daily-update.sh) as a
# test. The script checks every step's outcome itself and exits non-zero at
# the first one that misbehaves; it writes only under $TMPDIR. LB_BIN names
# the logbook binary (scripts/run-tests.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash examples/daily-update.sh "$@"
