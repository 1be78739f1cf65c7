# Common tasks. The test target is the command CI runs (see .ci/run).
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.7.0
FUZZTIME ?= 10s
# Extra gateway configuration for the load benchmark, e.g.
# make bench BENCH_CONFIG=scripts/scenarios/key-auth-rate-limit.yaml
BENCH_CONFIG ?=

.PHONY: run build test bench lint fuzz

run:
	$(GO) run ./cmd/tollgate run

build:
	CGO_ENABLED=0 $(GO) build -o bin/tollgate ./cmd/tollgate

test:
	$(GO) test -race ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./dataplane/... ./observe/...
	scripts/bench.sh $(BENCH_CONFIG)

# staticcheck comes from the module proxy; without it (offline), vet alone runs.
lint:
	$(GO) vet ./...
	@if $(GO) run $(STATICCHECK) -version >/dev/null 2>&1; then \
		echo "$(GO) run $(STATICCHECK) ./..."; \
		$(GO) run $(STATICCHECK) ./...; \
	else \
		echo "lint: staticcheck not available, skipped"; \
	fi

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
