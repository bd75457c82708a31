#!/usr/bin/env bash
# Measures the ID service on this machine, client and server sharing its
# cores: HTTP single IDs with wrk (64 connections) on the Leaf endpoint, then
# the buffered Go client and gRPC batches of 1000 with `strata bench ids`.
# It starts its own one-node `strata idserver` in a temporary directory and
# stops it at the end.
#
#   scripts/bench-ids.sh            # 10 s per measurement
#   DURATION=30 scripts/bench-ids.sh
#   WRK_THREADS=1 scripts/bench-ids.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
CONNS=${CONNS:-64}
HTTP=${HTTP:-127.0.0.1:18081}
GRPC=${GRPC:-127.0.0.1:19090}
RAFT=${RAFT:-127.0.0.1:17100}

command -v wrk >/dev/null || { echo "bench-ids: wrk is not installed (make bench-deps, or apt-get install wrk)" >&2; exit 1; }
go build -o bin/strata ./cmd/strata

dir=$(mktemp -d)
log="$dir/idserver.log"
./bin/strata idserver --bootstrap --id bench --data "$dir/data" \
	--raft-addr "$RAFT" --http-addr "$HTTP" --grpc-addr "$GRPC" --log-level warn >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 100); do
	curl -fsS "http://$HTTP/api/segment/get/bench" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.1
done

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== HTTP single ID, Leaf endpoint: wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s"
wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://$HTTP/api/segment/get/bench"
echo
echo "== Go client (buffered) and gRPC batches of 1000: strata bench ids"
./bin/strata bench ids --grpc "$GRPC" --modes client,grpc --duration "${DURATION}s"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
