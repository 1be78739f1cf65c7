#!/usr/bin/env bash
# Runs h2spec (the HTTP/2 conformance suite) against a built gateway's clear
# (h2c) and TLS (h2 by ALPN) listeners, on loopback, and prints its
# summaries and failures. Exits non-zero when any case fails.
#
# h2spec is taken from $H2SPEC, $PATH or $(go env GOPATH)/bin, and installed
# there with `go install` when missing. v2.2.1 is the newest version the Go
# module proxy serves (later tags lack the /v2 module path). The same suite
# runs in CI as TestH2Spec (app/h2spec_test.go), against the gateway in the
# test process.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-h2spec.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

h2spec=${H2SPEC:-}
if [[ -z $h2spec ]]; then
	h2spec=$(command -v h2spec || true)
fi
if [[ -z $h2spec ]]; then
	h2spec=$(go env GOPATH)/bin/h2spec
	[[ -x $h2spec ]] || GOFLAGS= go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi
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

# run NAME ARGS...: one h2spec run; its failures and summary are printed.
status=0
run() {
	local name=$1 out
	shift
	echo "== $name"
	if out=$("$h2spec" "$@" 2>&1); then
		grep -E '^[0-9]+ tests,' <<<"$out" || true
	else
		status=1
		sed -n '/^Failures:/,$p' <<<"$out"
		grep -qE '^[0-9]+ tests,' <<<"$out" || echo "$out"
	fi
}
run "h2c with prior knowledge (127.0.0.1:18600)" -h 127.0.0.1 -p 18600 -o 2
run "h2 over TLS (127.0.0.1:18643)" -h 127.0.0.1 -p 18643 -t -k -o 2
exit $status
