#!/usr/bin/env bash
# Read/write splitting: sysbench oltp_read_only through a proxy that reads
# on the replicas against one that reads on the primaries, same servers,
# interleaved rounds: a thin call of `strata bench rwsplit`.
#
#   scripts/bench-rwsplit.sh
#   Env: THREADS (8), TIME (20), ROUNDS (3), TABLES (4), SIZE (10000),
#        SHARDS (2), REPLICAS (1), REPORT (a directory)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/strata ./cmd/strata
exec bin/strata bench rwsplit --duration "${TIME:-20}s" --rounds "${ROUNDS:-3}" --threads "${THREADS:-8}" \
	--param "tables=${TABLES:-4},table_size=${SIZE:-10000},shards=${SHARDS:-2},replicas=${REPLICAS:-1}" \
	${REPORT:+--report "$REPORT"}
