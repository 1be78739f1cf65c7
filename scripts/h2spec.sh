#!/usr/bin/env bash
# Runs h2spec (the HTTP/2 conformance suite) against the gateway's clear (h2c)
# and TLS (h2 by ALPN) listeners, on loopback, and prints its summaries.
# Exits non-zero when any case fails.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-h2spec.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

GOBIN=$tmp go install github.com/summerwind/h2spec/cmd/h2spec@v2.6.0 2>/dev/null ||
	GOBIN=$tmp go install github.com/summerwind/h2spec/cmd/h2spec@latest
go build -o "$tmp/tollgate" ./cmd/tollgate
go build -o "$tmp/backend" ./cmd/benchbackend
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost 2>/dev/null

"$tmp/backend" -listen 127.0.0.1:18680 >/dev/null 2>&1 &
pids+=($!)
cat >"$tmp/tollgate.yaml" <<YAML
server:
  proxy_listen: "127.0.0.1:18600"
  admin_listen: "127.0.0.1:18601"
  tls: {listen: "127.0.0.1:18643", certificates: [{cert: cert.pem, key: key.pem}]}
logging: {access_log: "off"}
services: [{name: be, targets: [{url: "http://127.0.0.1:18680"}]}]
routes: [{name: all, paths: ["/"], service: be}]
YAML
"$tmp/tollgate" run -c "$tmp/tollgate.yaml" >"$tmp/tollgate.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	curl -fsS -o /dev/null http://127.0.0.1:18601/healthz 2>/dev/null && break
	sleep 0.2
done

status=0
echo "== h2c with prior knowledge (127.0.0.1:18600)"
"$tmp/h2spec" -h 127.0.0.1 -p 18600 -o 2 | sed -n '/^Failures:/,$p' || status=1
echo "== h2 over TLS (127.0.0.1:18643)"
"$tmp/h2spec" -h 127.0.0.1 -p 18643 -t -k -o 2 | sed -n '/^Failures:/,$p' || status=1
exit $status
