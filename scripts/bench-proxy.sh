#!/usr/bin/env bash
# Benchmarks the shard proxy against MariaDB direct and HAProxy (mode tcp, one
# thread) in front of the same server, with sysbench oltp_point_select:
#
#   - QPS at 8 threads, --db-ps-mode=auto and disable, interleaved rounds
#     (direct, HAProxy, Strata over that one server, Strata over two shards),
#     the median of the rounds;
#   - latency at 1 thread (p50 and p95) for direct, HAProxy and Strata;
#   - a CPU profile of the proxy under the 8-thread load, from its admin
#     port's /debug/pprof, with the top entries.
#
# Everything runs on this machine on free ports and is stopped at the end.
# Usage: scripts/bench-proxy.sh [seconds per run (20)] [rounds (3)]
# Env: TABLES (4), TABLE_SIZE (100000), THREADS (8), OUT (a temp dir),
#      PROXY_PROCS (1: GOMAXPROCS of the proxy, like HAProxy's one thread).
set -euo pipefail

SECS=${1:-20}
ROUNDS=${2:-3}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-100000}
THREADS=${THREADS:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/strata-bench.XXXXXX)}
mkdir -p "$OUT"
cd "$ROOT"

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || { echo "bench-proxy: $1 not found (make bench-deps installs it)" >&2; exit 1; }; }
need sysbench
need haproxy
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "bench-proxy: building" >&2
go build -o "$OUT/strata" ./cmd/strata

echo "bench-proxy: starting two MariaDB shards (strata up)" >&2
"$OUT/strata" up --data "$OUT/data" --mariadb-port 0 --replicas 0 --innodb-buffer-pool 512M \
	--proxy-listen "127.0.0.1:$(freeport)" --proxy-admin off >"$OUT/up.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 240); do grep -q "Ctrl-C stops everything" "$OUT/up.log" 2>/dev/null && break; sleep 0.5; done
grep -q "Ctrl-C stops everything" "$OUT/up.log" || { echo "strata up did not start:"; cat "$OUT/up.log"; exit 1; } >&2
S0=$(sed -n 's/^  s0 *primary .* 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$OUT/up.log" | head -1)
S1=$(sed -n 's/^  s1 *primary .* 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$OUT/up.log" | head -1)

# Strata over the one server HAProxy fronts (the comparison), and over both
# shards (sysbench's tables sharded by id).
P1=$(freeport) A1=$(freeport) P2=$(freeport) A2=$(freeport) PH=$(freeport)
cat >"$OUT/one.yaml" <<EOF
listen: 127.0.0.1:$P1
admin_listen: 127.0.0.1:$A1
slow_query_threshold: 0s
shards:
  - {name: s0, primary: 127.0.0.1:$S0}
databases:
  sbtest: {sharded: true, tables: {"sbtest{1..32}": {kind: sharded, column: id}}}
EOF
cat >"$OUT/two.yaml" <<EOF
listen: 127.0.0.1:$P2
admin_listen: 127.0.0.1:$A2
slow_query_threshold: 0s
shards:
  - {name: s0, primary: 127.0.0.1:$S0}
  - {name: s1, primary: 127.0.0.1:$S1}
databases:
  sbshard: {sharded: true, tables: {"sbtest{1..32}": {kind: sharded, column: id}}}
EOF
# GOMAXPROCS=1 gives the proxy one core's worth of threads, as HAProxy's
# nbthread 1 (set PROXY_PROCS to change it; 0 leaves Go's default).
PROXY_PROCS=${PROXY_PROCS:-1}
procs=()
[ "$PROXY_PROCS" != 0 ] && procs=(env GOMAXPROCS="$PROXY_PROCS")
"${procs[@]}" "$OUT/strata" proxy --config "$OUT/one.yaml" --log-level warn >"$OUT/proxy1.log" 2>&1 &
pids+=($!)
STRATA_PID=$!
"${procs[@]}" "$OUT/strata" proxy --config "$OUT/two.yaml" --log-level warn >"$OUT/proxy2.log" 2>&1 &
pids+=($!)
cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$PH
    server s0 127.0.0.1:$S0
EOF
"$HAPROXY" -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
pids+=($!)
HAPROXY_PID=$!
sleep 2

sb() { # sb PORT USER DB args...
	local port=$1 user=$2 db=$3
	shift 3
	sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
		--mysql-user="$user" --mysql-db="$db" --tables="$TABLES" --table-size="$TABLE_SIZE" --auto-inc=off "$@"
}

echo "bench-proxy: preparing $TABLES x $TABLE_SIZE rows (direct on s0, and sharded through the proxy)" >&2
sb "$S0" strata sbtest prepare >"$OUT/prepare1.log" 2>&1 || { mariadb -h127.0.0.1 -P"$S0" -ustrata -e "CREATE DATABASE IF NOT EXISTS sbtest" && sb "$S0" strata sbtest prepare >"$OUT/prepare1.log" 2>&1; }
sb "$P2" root sbshard prepare >"$OUT/prepare2.log" 2>&1
# Warm the buffer pools.
for t in "$S0 strata sbtest" "$P2 root sbshard"; do set -- $t; sb "$1" "$2" "$3" --threads="$THREADS" --time=5 run >/dev/null; done

targets=("direct:$S0:strata:sbtest" "haproxy:$PH:strata:sbtest" "strata:$P1:root:sbtest" "strata-2shards:$P2:root:sbshard")
declare -A qps cpu
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
for mode in auto disable; do
	for r in $(seq 1 "$ROUNDS"); do
		for t in "${targets[@]}"; do
			IFS=: read -r name port user db <<<"$t"
			pid=""
			[ "$name" = haproxy ] && pid=$HAPROXY_PID
			[ "$name" = strata ] && pid=$STRATA_PID
			[ -n "$pid" ] && c0=$(ticks "$pid")
			out=$(sb "$port" "$user" "$db" --db-ps-mode=$mode --threads="$THREADS" --time="$SECS" run)
			q=$(echo "$out" | sed -n 's/.*queries: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p')
			n=$(echo "$out" | sed -n 's/.*queries: *\([0-9]*\) .*/\1/p')
			qps[$name,$mode]="${qps[$name,$mode]:-} $q"
			extra=""
			if [ -n "$pid" ]; then
				# CPU of the hop per query, in µs (clock ticks of 10 ms).
				u=$(awk "BEGIN{printf \"%.1f\", ($(ticks "$pid") - $c0) * 10000 / $n}")
				cpu[$name,$mode]="${cpu[$name,$mode]:-} $u"
				extra=", $u µs CPU/query"
			fi
			echo "  round $r ps=$mode $name: $q qps$extra" >&2
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "## oltp_point_select, $THREADS threads, ${SECS}s x $ROUNDS rounds (median QPS), $(nproc) cores, proxy GOMAXPROCS=$PROXY_PROCS, $(date -u +%Y-%m-%d)"
echo
echo "| ps mode | direct | HAProxy | Strata (same server) | Strata / HAProxy | Strata / direct | Strata, 2 shards |"
echo "|---|---|---|---|---|---|---|"
for mode in auto disable; do
	d=$(echo "${qps[direct,$mode]}" | median)
	h=$(echo "${qps[haproxy,$mode]}" | median)
	s=$(echo "${qps[strata,$mode]}" | median)
	s2=$(echo "${qps[strata-2shards,$mode]}" | median)
	echo "| $mode | $d | $h | $s | $(awk "BEGIN{printf \"%.2f\", $s/$h}") | $(awk "BEGIN{printf \"%.2f\", $s/$d}") | $s2 |"
done
echo
echo "CPU of the hop per query (median µs): HAProxy auto $(echo "${cpu[haproxy,auto]}" | median), disable $(echo "${cpu[haproxy,disable]}" | median); Strata auto $(echo "${cpu[strata,auto]}" | median), disable $(echo "${cpu[strata,disable]}" | median)"

echo
echo "## Latency at 1 thread (ms), ps mode auto, ${SECS}s"
echo
echo "| target | p50 | p95 |"
echo "|---|---|---|"
for t in "${targets[@]:0:3}"; do
	IFS=: read -r name port user db <<<"$t"
	p50=$(sb "$port" "$user" "$db" --threads=1 --time="$SECS" --percentile=50 run | sed -n 's/.*50th percentile: *\([0-9.]*\).*/\1/p')
	p95=$(sb "$port" "$user" "$db" --threads=1 --time="$SECS" --percentile=95 run | sed -n 's/.*95th percentile: *\([0-9.]*\).*/\1/p')
	echo "| $name | $p50 | $p95 |"
done

echo
echo "## CPU profile of the proxy (same server, $THREADS threads, ps mode disable)"
sb "$P1" root sbtest --db-ps-mode=disable --threads="$THREADS" --time=$((SECS + 5)) run >/dev/null &
sbpid=$!
sleep 2
curl -s -o "$OUT/cpu.prof" "http://127.0.0.1:$A1/debug/pprof/profile?seconds=$SECS"
wait $sbpid
echo
echo '```'
go tool pprof -top -nodecount=25 "$OUT/strata" "$OUT/cpu.prof" 2>/dev/null | sed -n '1,35p'
echo '```'
echo
echo "(profile: $OUT/cpu.prof; logs in $OUT)"
