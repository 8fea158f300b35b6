# klantbeeld: `make run` starts the embedded demo, `make test` runs every test.
GO        ?= go
SPECS     ?= ../shared/specs
SPECTRAL  := tools/spectral/node_modules/.bin/spectral
GOFILES    = $(shell git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null)
# golangci-lint lives in a module of its own (tools/golangci-lint): its
# dependencies must not be resolved together with the gateway's.
GOLANGCI  := $(GO) tool -modfile=tools/golangci-lint/go.mod golangci-lint

.DEFAULT_GOAL := help
.PHONY: help run test policy-test bench lint generate

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## start the demo: fake sources, SQLite audit log under ./data, demo tokens printed
	$(GO) run ./cmd/klantbeeld demo

test: policy-test ## every test, with the race detector
	@if [ -z "$$KLANTBEELD_TEST_SPECS_DIR" ] && [ ! -d $(SPECS) ]; then \
		echo "make test: $(SPECS) not found: the contract checks against the official specs are skipped"; fi
	$(GO) test -race -count=1 ./...

policy-test: ## the policy bundle's Rego tests (with the pinned opa command) and the guard invariants
	$(GO) tool opa test policies/
	$(GO) run ./cmd/klantbeeld policy test policies/

# The benchmarks take PostgreSQL from KLANTBEELD_TEST_POSTGRES_URL, or from
# the local server when one answers.
PGBENCH_URL = $(or $(KLANTBEELD_TEST_POSTGRES_URL),$(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'))

# The load run's knobs (cmd/klantbench -h): a quick run is
# `make bench BENCH_DURATION=3s BENCH_RATES=100,250`.
BENCH_RATES    ?= 100,250,500,1000
BENCH_DURATION ?= 20s
BENCH_DELAY    ?= 20ms
BENCH_STORES   ?= postgres,sqlite
BENCH_PROFILE  ?=
BENCH_DIR      ?= bin/bench
# The packages with Go benchmarks: token validation, policy decisions,
# audit appends and verification on both stores, the whole view.
BENCH_PKGS     ?= ./auth/ ./connectors/upstream/ ./policies/ ./audit/sqlite/ ./audit/postgres/ ./gateway/ ./view/

bench: ## Go benchmarks, then the load run (fake sources with a fixed delay; the gateway on PostgreSQL and SQLite and a baseline proxy, open-loop at fixed rates); writes BENCHMARKS.md
	@mkdir -p $(BENCH_DIR)
	@{ KLANTBEELD_TEST_POSTGRES_URL='$(PGBENCH_URL)' $(GO) test -run '^$$' -bench . -benchmem -count=1 $(BENCH_PKGS); echo $$? > $(BENCH_DIR)/go.rc; } | tee $(BENCH_DIR)/go.txt
	@exit $$(cat $(BENCH_DIR)/go.rc)
	$(GO) build -o $(BENCH_DIR)/klantbeeld ./cmd/klantbeeld
	$(GO) build -o $(BENCH_DIR)/klantbench ./cmd/klantbench
	KLANTBEELD_TEST_POSTGRES_URL='$(PGBENCH_URL)' $(BENCH_DIR)/klantbench -klantbeeld $(BENCH_DIR)/klantbeeld \
		-rates '$(BENCH_RATES)' -duration '$(BENCH_DURATION)' -delay '$(BENCH_DELAY)' -stores '$(BENCH_STORES)' \
		-profile '$(BENCH_PROFILE)' -gobench $(BENCH_DIR)/go.txt -markdown BENCHMARKS.md

lint: $(SPECTRAL) ## go vet, gofmt, golangci-lint (staticcheck, depguard: who may import what), and the API document against the NL API Design Rules
	$(GO) vet ./...
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GOLANGCI) run ./...
	@if [ -f $(SPECS)/adr-spectral-ruleset.yaml ]; then \
		$(SPECTRAL) lint --fail-severity warn -r $(SPECS)/adr-spectral-ruleset.yaml openapi/klantbeeld.yaml; \
	else echo "lint: $(SPECS)/adr-spectral-ruleset.yaml not found: the API Design Rules check needs the shared specs"; exit 1; fi

$(SPECTRAL): tools/spectral/package.json tools/spectral/package-lock.json
	npm ci --prefix tools/spectral --no-audit --no-fund --loglevel=error
	@touch $@

generate: ## regenerate the sqlc query code (committed; CI checks it is current)
	$(GO) tool sqlc generate
