#!/usr/bin/env bash
# The proxy against MariaDB direct and HAProxy (mode tcp, one thread) with
# sysbench oltp_point_select: a thin call of `strata bench proxy`, which
# starts everything on free ports, interleaves the rounds, prints the table
# of ratios with their spread and (with REPORT) writes the HTML report.
#
#   scripts/bench-proxy.sh [seconds per run (20)] [rounds (3)]
#   Env: TABLES (4), TABLE_SIZE (100000), THREADS (8), PROXY_PROCS (1),
#        PS_DISABLE (0; 1 = --db-ps-mode=disable), REPORT (a directory)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/strata ./cmd/strata
exec bin/strata bench proxy --duration "${1:-20}s" --rounds "${2:-3}" --threads "${THREADS:-8}" \
	--param "tables=${TABLES:-4},table_size=${TABLE_SIZE:-100000},proxy_procs=${PROXY_PROCS:-1},ps_disable=${PS_DISABLE:-0}" \
	${REPORT:+--report "$REPORT"}
