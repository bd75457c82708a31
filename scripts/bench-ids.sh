#!/usr/bin/env bash
# The ID service: HTTP single IDs, gRPC batches of 1000, the buffered Go
# client, against a one-node `strata idserver` it starts: a thin call of
# `strata bench ids`. wrk, a leaner HTTP client than Go's, gives a higher
# HTTP figure: with WRK=1 it is run too, against the same kind of node.
#
#   scripts/bench-ids.sh            # 10 s per run, 3 rounds
#   DURATION=30 ROUNDS=5 REPORT=/tmp/ids scripts/bench-ids.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/strata ./cmd/strata
bin/strata bench ids --duration "${DURATION:-10}s" --rounds "${ROUNDS:-3}" ${REPORT:+--report "$REPORT"}
[ "${WRK:-0}" = 1 ] || exit 0
command -v wrk >/dev/null || { echo "bench-ids: wrk is not installed (make bench-deps)" >&2; exit 1; }
dir=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
HTTP=127.0.0.1:$(port)
bin/strata idserver --bootstrap --id bench --data "$dir/data" --raft-addr "127.0.0.1:$(port)" \
	--http-addr "$HTTP" --grpc-addr "127.0.0.1:$(port)" --log-level warn >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fsS "http://$HTTP/api/segment/get/bench" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== HTTP single ID, Leaf endpoint: wrk -t2 -c64 -d${DURATION:-10}s"
wrk -t2 -c64 -d"${DURATION:-10}s" --latency "http://$HTTP/api/segment/get/bench"
