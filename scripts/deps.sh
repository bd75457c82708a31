#!/usr/bin/env bash
# Installs what the tests and `strata up` need from the distribution's
# packages when it is missing: MariaDB server and client, sysbench, curl and
# openssl (the edge's signing example), chromium (the console's browser
# test), and (with --bench) haproxy and wrk for the benchmarks. Debian and Ubuntu only; on any
# other system it says in one line what to install and fails.
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The chaos and bench tests look at their HTML reports in headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${1:-}" = "--bench" ]; then
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
	command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "strata: missing ${need[*]}: install MariaDB 10.11+ (mariadbd, mariadb-install-db, mariadb), sysbench, curl, openssl, chromium, haproxy and wrk with your package manager" >&2
	exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "strata: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
