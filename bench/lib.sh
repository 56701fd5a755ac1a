# SPDX-License-Identifier: MIT
#
# lib.sh: what the benchmark scripts share. Source it after setting the
# defaults of records and runs:
#
#   bench_args NAME "$@"  parses --records N, --runs R and --help (the
#                         script's header comment); sets LB, the tool,
#                         absolute ($LB_BIN or build/logbook)
#   w1_jsonl N            workload W1 as import lines on stdout: N records
#                         in batches of 1,000, keys h%015d, 20% of each
#                         batch updates of earlier keys, values of about
#                         225 bytes, seed 42, table w1
#   median                the median of the numbers on stdin

bench_args() {
	local name=$1
	shift
	while [ $# -gt 0 ]; do
		case "$1" in
		--records) records=$2; shift 2 ;;
		--runs) runs=$2; shift 2 ;;
		-h | --help)
			sed -n '4,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"
			exit 0 ;;
		*) echo "$name.sh: unknown option $1" >&2; exit 2 ;;
		esac
	done
	LB=${LB_BIN:-build/logbook}
	case "$LB" in /*) ;; *) LB=$PWD/$LB ;; esac
}

w1_jsonl() {
	python3 - "$1" <<'PY'
import json, random, sys
n = int(sys.argv[1]); rng = random.Random(42); keys = 0; out = sys.stdout
for b in range(0, n, 1000):
    m = min(1000, n - b); base = keys
    for i in range(m):
        if base and rng.random() < 0.2:
            k = rng.randrange(base)
        else:
            k = keys; keys += 1
        v = ''.join(rng.choice('abcdefghij') for _ in range(rng.randint(169, 281)))
        out.write('{"table":"w1","key":"h%015d","value":%s}\n' % (k, json.dumps(v)))
PY
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
