#!/usr/bin/env bash
# Read/write splitting benchmark: sysbench oltp_read_only through the proxy
# with reads on the replicas, against the same through a second proxy that
# sends every read to the primaries, in the same run over the same servers,
# alternating rounds so that both see the same machine.
#
#   scripts/bench-rwsplit.sh            # 2 shards x (primary + 1 replica), 8 threads, 3 rounds of 20 s each
#   THREADS=16 TIME=30 ROUNDS=2 REPLICAS=2 PS_MODE=disable scripts/bench-rwsplit.sh
#
# PS_MODE is sysbench's --db-ps-mode: auto (prepared statements, its
# default) or disable (text protocol).
#
# It starts `strata up` (MariaDB topology + proxy with read_write enabled) on
# fixed ports (MARIADB_PORT, default 24306 and up; proxies on 24406/24407),
# a second `strata proxy` with read_write disabled, prepares sysbench's
# tables sharded by id through the proxy, runs, prints one line per run and a
# summary, and stops everything it started (by pid) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-8}
TIME=${TIME:-20}
ROUNDS=${ROUNDS:-3}
TABLES=${TABLES:-4}
SIZE=${SIZE:-10000}
SHARDS=${SHARDS:-2}
REPLICAS=${REPLICAS:-1}
MARIADB_PORT=${MARIADB_PORT:-24306}
PS_MODE=${PS_MODE:-auto}
RW_PORT=${RW_PORT:-24406}
PRIMARY_PORT=${PRIMARY_PORT:-24407}

command -v sysbench >/dev/null || { echo "bench-rwsplit: sysbench missing (make bench-deps)" >&2; exit 1; }
work=$(mktemp -d /tmp/strata-bench-rwsplit.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/strata" ./cmd/strata

# Shard addresses as `strata up --mariadb-port` lays them out: shard by
# shard, primary first.
shards_yaml() {
	local port=$MARIADB_PORT
	for ((s = 0; s < SHARDS; s++)); do
		echo "  - name: s$s"
		echo "    primary: 127.0.0.1:$port"
		port=$((port + 1))
		local reps=()
		for ((r = 0; r < REPLICAS; r++)); do reps+=("127.0.0.1:$port"); port=$((port + 1)); done
		echo "    replicas: [$(IFS=,; echo "${reps[*]}")]"
	done
}
config() { # $1 = true|false (read_write.enabled)
	cat <<YAML
users: [{name: root, password: ""}]
backend: {user: strata, password: ""}
shards:
$(shards_yaml)
databases:
  sbtest:
    sharded: true
    tables:
      sbtest{1..32}: {kind: sharded, column: id, function: hash}
read_write:
  enabled: $1
  consistency: session
slow_query_threshold: 0s
YAML
}
config true >"$work/rw.yaml"
config false >"$work/primary.yaml"

"$work/strata" up --data "$work/data" --mariadb-port "$MARIADB_PORT" --shards "$SHARDS" --replicas "$REPLICAS" \
	--innodb-buffer-pool 128M --config "$work/rw.yaml" --proxy-listen "127.0.0.1:$RW_PORT" --proxy-admin 127.0.0.1:0 \
	>"$work/up.out" 2>"$work/up.err" &
pids+=($!)
for _ in $(seq 600); do grep -q "Ctrl-C stops everything" "$work/up.out" 2>/dev/null && break; sleep 0.2; done
grep -q "Ctrl-C stops everything" "$work/up.out" || { echo "strata up did not start:"; cat "$work/up.err"; exit 1; }
"$work/strata" proxy --config "$work/primary.yaml" --listen "127.0.0.1:$PRIMARY_PORT" --admin off \
	>"$work/proxy.out" 2>"$work/proxy.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "Shard proxy on" "$work/proxy.out" 2>/dev/null && break; sleep 0.2; done

sb() { # $1 = port, rest = sysbench args
	local port=$1
	shift
	sysbench oltp_read_only --mysql-host=127.0.0.1 --mysql-port="$port" --mysql-user=root --mysql-db=sbtest \
		--tables="$TABLES" --table-size="$SIZE" --auto-inc=off --db-ps-mode="$PS_MODE" "$@"
}
echo "preparing sbtest: $TABLES tables x $SIZE rows, sharded by id over $SHARDS shards (each a primary + $REPLICAS replica(s))"
sb "$RW_PORT" prepare >"$work/prepare.out" 2>&1 || { cat "$work/prepare.out"; exit 1; }
sleep 2 # replicas apply the load

mariadb -h127.0.0.1 -P"$RW_PORT" -uroot -e "SHOW STRATA SERVERS" >"$work/servers.before" 2>&1 || true
declare -A qps lat
for ((round = 1; round <= ROUNDS; round++)); do
	for mode in replicas primaries; do
		port=$RW_PORT
		[ "$mode" = primaries ] && port=$PRIMARY_PORT
		# --skip-trx: sysbench's BEGIN/COMMIT would pin every read to the
		# primary (a transaction), in both modes alike.
		out=$(sb "$port" run --threads="$THREADS" --time="$TIME" --skip-trx=on --percentile=95 2>&1) || { echo "$out"; exit 1; }
		q=$(awk '/queries:/ {gsub(/\(/, "", $3); print $3; exit}' <<<"$out")
		p95=$(awk '/95th percentile:/ {print $3; exit}' <<<"$out")
		errs=$(awk '/ignored errors:/ {print $3; exit}' <<<"$out")
		printf "round %d  reads on %-9s  %9s QPS  p95 %6s ms  errors %s\n" "$round" "$mode" "$q" "$p95" "$errs"
		qps[$mode]="${qps[$mode]:-} $q"
		lat[$mode]="${lat[$mode]:-} $p95"
	done
done
echo
echo "SHOW STRATA SERVERS after the runs (reads/writes routed by the read/write proxy):"
mariadb -h127.0.0.1 -P"$RW_PORT" -uroot -e "SHOW STRATA SERVERS" 2>&1 | cut -f1-5,7,12-13 | column -t
echo
for mode in replicas primaries; do
	# shellcheck disable=SC2086
	echo "$mode: QPS per round:${qps[$mode]}  median $(printf '%s\n' ${qps[$mode]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')  p95 ms:${lat[$mode]}"
done
echo "machine: $(nproc) cores, sysbench $THREADS threads, --db-ps-mode=$PS_MODE, $TIME s per run, client, proxies and all MariaDB servers on the same cores"
