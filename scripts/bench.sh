#!/usr/bin/env bash
# Loopback load benchmark: wrk against the bench backend directly, through
# nginx (when installed) and through Tollgate, in one run, then a table of
# requests/s and latency percentiles with the gateway's ratios.
#
# Usage: scripts/bench.sh [EXTRA_CONFIG.yaml]
#
# EXTRA_CONFIG.yaml (and scripts/scenarios/$SCENARIO.yaml) hold top-level YAML
# appended to the generated gateway configuration, e.g. `policies:` and
# `consumers:`. A file with its own top-level `services:` or `routes:` replaces
# the generated ones; it can reach the backend as ${BENCH_BACKEND_URL}.
# A line `# wrk-header: Name: value` in such a file adds that header to every
# wrk run (an API key, for instance).
#
# Environment:
#   DURATION=10s  WARMUP=2s  THREADS=2  CONNECTIONS=64
#   ROUNDS=3             rounds of direct, nginx, tollgate taken in turn; the
#                        table shows each target's median round, so that a
#                        noisy neighbour slows every target alike
#   SCENARIO=name        use scripts/scenarios/name.yaml as extra configuration
#   BENCH_PORT_BASE=18000  gateway proxy port; admin +1, nginx +2, backend +80
#   KEEP_TMP=1           keep the temporary directory (configs, logs)
#   GATEWAY_PKG=./cmd/tollgate  package built as the gateway
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

duration=${DURATION:-10s}
warmup=${WARMUP:-2s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-64}
rounds=${ROUNDS:-3}
base=${BENCH_PORT_BASE:-18000}
proxy_port=$base
admin_port=$((base + 1))
nginx_port=$((base + 2))
backend_port=$((base + 80))
host=127.0.0.1

die() {
	echo "bench: $*" >&2
	exit 1
}

command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
command -v curl >/dev/null || die "curl is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")
# nginx workers drop root privileges and must still reach their temp paths.
chmod 755 "$tmp"
pids=()

cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${KEEP_TMP:-} == 1 ]]; then
		echo "bench: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() {
	! (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

for port in "$proxy_port" "$admin_port" "$nginx_port" "$backend_port"; do
	port_free "$port" || die "port $host:$port is already in use (set BENCH_PORT_BASE)"
done

# wait_http URL PID NAME: wait (bounded) until URL answers with any HTTP
# status (a scenario with authentication answers 401 without its key),
# failing early if the process died.
wait_http() {
	local url=$1 pid=$2 name=$3 deadline=$((SECONDS + 20))
	until [[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null) != 000 ]]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "bench: $name exited before answering on $url" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "bench: $name did not answer on $url within 20s" >&2
			return 1
		fi
		sleep 0.1
	done
}

stop() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# --- extra gateway configuration -------------------------------------------
extra_files=()
if [[ -n ${SCENARIO:-} ]]; then
	f=scripts/scenarios/$SCENARIO.yaml
	[[ -f $f ]] || die "unknown SCENARIO $SCENARIO: no $f"
	extra_files+=("$f")
fi
if (($# > 0)); then
	[[ -f $1 ]] || die "extra configuration $1 not found"
	extra_files+=("$1")
fi
wrk_headers=()
own_routes=0
for f in "${extra_files[@]}"; do
	while IFS= read -r h; do
		wrk_headers+=(-H "$h")
	done < <(sed -n 's/^# *wrk-header: *//p' "$f")
	if grep -Eq '^(services|routes):' "$f"; then
		own_routes=1
	fi
done

# --- build -----------------------------------------------------------------
echo "bench: building into $tmp" >&2
go build -o "$tmp/benchbackend" ./cmd/benchbackend
gateway_error=""
gateway_pkg=${GATEWAY_PKG:-./cmd/tollgate}
if ! go build -o "$tmp/tollgate" "$gateway_pkg" 2>"$tmp/build-tollgate.log"; then
	gateway_error="$gateway_pkg does not build:"$'\n'"$(cat "$tmp/build-tollgate.log")"
fi

# --- wrk -------------------------------------------------------------------
declare -A rps p50 p99 errors runs

# to_ms VALUE: wrk's "330.00us" / "1.20ms" / "2.00s" / "1.00m" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n
	}'
}

# measure NAME URL: warm up, run wrk, record requests/s, p50, p99, errors.
measure() {
	local name=$1 url=$2 out=$tmp/wrk-$1.txt
	echo "bench: $name: warm-up $warmup, then $duration at $url" >&2
	wrk -t"$threads" -c"$connections" -d"$warmup" "${wrk_headers[@]}" "$url" >/dev/null
	wrk -t"$threads" -c"$connections" -d"$duration" --latency "${wrk_headers[@]}" "$url" >"$out"
	local r q50 q99 e
	r=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	[[ -n $r ]] || die "$name: could not read wrk output: $(cat "$out")"
	q50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
	q99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
	e=$(awk '
		/Non-2xx or 3xx responses:/ {n += $NF}
		/Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
		END {print n + 0}' "$out")
	runs[$name]+="$r $q50 $q99 $e"$'\n'
	echo "bench: $name: $r requests/s, p50 $q50 ms, p99 $q99 ms, errors $e" >&2
}

# summarize NAME: the round with the median requests/s, and the errors of
# every round added up.
summarize() {
	local name=$1 line
	line=$(printf '%s' "${runs[$name]}" | sort -n -k1,1 | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
	read -r rps[$name] p50[$name] p99[$name] _ <<<"$line"
	errors[$name]=$(printf '%s' "${runs[$name]}" | awk '{n += $4} END {print n + 0}')
}

# --- direct ------------------------------------------------------------------
"$tmp/benchbackend" -listen "$host:$backend_port" >"$tmp/backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_http "http://$host:$backend_port/" "$backend_pid" backend || die "backend failed: $(cat "$tmp/backend.log")"
targets=(direct)
declare -A urls=([direct]="http://$host:$backend_port/")

# --- nginx -------------------------------------------------------------------
if command -v nginx >/dev/null; then
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream bench_backend {
        server $host:$backend_port;
        keepalive 64;
    }
    server {
        listen $host:$nginx_port;
        location / {
            proxy_pass http://bench_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The headers the gateway's contract makes it send, so that both
            # proxies do the same work and the backend parses the same request.
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Request-ID \$request_id;
            add_header X-Request-ID \$request_id;
        }
    }
}
EOF
	nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
		>"$tmp/nginx/stdout.log" 2>&1 &
	nginx_pid=$!
	pids+=("$nginx_pid")
	wait_http "http://$host:$nginx_port/" "$nginx_pid" nginx || die "nginx failed: $(cat "$tmp/nginx/error.log" "$tmp/nginx/stdout.log")"
	targets+=(nginx)
	urls[nginx]="http://$host:$nginx_port/"
else
	echo "bench: nginx is not installed (apt-get install -y nginx); skipping it" >&2
fi

# --- tollgate ----------------------------------------------------------------
if [[ -z $gateway_error ]]; then
	export BENCH_BACKEND_URL="http://$host:$backend_port"
	cfg=$tmp/tollgate.yaml
	{
		cat <<EOF
server:
  proxy_listen: "$host:$proxy_port"
  admin_listen: "$host:$admin_port"
store: "memory://"
logging: {access_log: "off"}
EOF
		if ((own_routes == 0)); then
			cat <<'EOF'
services:
  - name: bench
    targets: [{url: "${BENCH_BACKEND_URL}"}]
routes:
  - name: bench
    paths: ["/"]
    service: bench
EOF
		fi
		for f in "${extra_files[@]}"; do
			echo "# --- from $f"
			cat "$f"
			echo
		done
	} >"$cfg"
	(cd "$tmp" && exec "$tmp/tollgate" run -c "$cfg") >"$tmp/tollgate.log" 2>&1 &
	gateway_pid=$!
	pids+=("$gateway_pid")
	if wait_http "http://$host:$admin_port/healthz" "$gateway_pid" tollgate &&
		wait_http "http://$host:$proxy_port/" "$gateway_pid" "tollgate proxy"; then
		targets+=(tollgate)
		urls[tollgate]="http://$host:$proxy_port/"
	else
		gateway_error="tollgate did not start; its log:"$'\n'"$(tail -n 40 "$tmp/tollgate.log")"$'\n'"config:"$'\n'"$(cat "$cfg")"
	fi
fi

# --- measure -----------------------------------------------------------------
# Every server is up (idle ones cost nothing); the targets take turns, round
# after round.
for ((round = 1; round <= rounds; round++)); do
	for name in "${targets[@]}"; do
		measure "$name" "${urls[$name]}"
	done
done
for name in "${targets[@]}"; do
	summarize "$name"
done

# --- report ------------------------------------------------------------------
echo
echo "Loopback benchmark: wrk -t$threads -c$connections -d$duration, median of $rounds rounds${SCENARIO:+, scenario $SCENARIO}${1:+, extra $1}"
printf '%-10s %12s %10s %10s %10s\n' target "requests/s" "p50 ms" "p99 ms" errors
for name in direct nginx tollgate; do
	[[ -n ${rps[$name]:-} ]] || continue
	printf '%-10s %12s %10s %10s %10s\n' "$name" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${errors[$name]}"
done

ratio() { # ratio A B: A/B with two decimals
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
if [[ -n ${rps[tollgate]:-} ]]; then
	for other in nginx direct; do
		[[ -n ${rps[$other]:-} ]] || continue
		echo "tollgate/$other: requests/s $(ratio "${rps[tollgate]}" "${rps[$other]}"), p50 $(ratio "${p50[tollgate]}" "${p50[$other]}"), p99 $(ratio "${p99[tollgate]}" "${p99[$other]}")"
	done
fi

if [[ -n $gateway_error ]]; then
	echo >&2
	echo "bench: FAILED: gateway not measured: $gateway_error" >&2
	exit 1
fi
