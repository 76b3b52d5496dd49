# PropAlpes Companies — one Makefile for the whole Go workspace (go.work).
# `make run` starts the system on its embedded defaults; `make test` passes every test.

SHELL        := /bin/bash
GO           ?= go
PKGS         := github.com/propalpes/companias/...
MODULES      := libs/seedwork libs/jwtauth libs/httpkit libs/contracts libs/contracts/check libs/kafkakit libs/devinfra libs/telemetry services/command services/query e2e tools/dlq bench chaos
BIN          := $(CURDIR)/bin
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT ?= 30m
FUZZTIME     ?= 10s
FUZZTIME_CI  ?= 5s
CHAOS_SEED   ?= 0
CHAOS_FLAGS  ?=
DURATION     ?= 10m
SOAK_FLAGS   ?=
# Stamped into the service binaries (`companias-command version`, *_build_info):
# the go command records no VCS data here (GOFLAGS=-buildvcs=false, git worktrees).
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO    := github.com/propalpes/companias/libs/telemetry/buildinfo
LDFLAGS      := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).revision=$(REVISION)
# TEST_P: packages go test runs at once (go test -p; empty: the number of CPUs).
# Lower it when PostgreSQL has few connections; check-pg says by how much.
TEST_P       ?=
# deploy/check validates the deployment files; it is kept out of go.work so its
# dependencies (compose-go) never change what the services are built with.
DEPLOY_CHECK := deploy/check

export GOTOOLCHAIN := local

.PHONY: help run run-secure reset build test check-pg test-short check-deploy chaos chaos-short soak lint fmt vet logkeys staticcheck fuzz fuzz-ci bench tidy clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the service binaries, the DLQ tool and the dev stack into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/companias-command ./services/command/cmd/commandd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/companias-query ./services/query/cmd/queryd
	$(GO) build -o $(BIN)/devstack ./libs/devinfra/cmd/devstack
	$(GO) build -o $(BIN)/companias-dlq ./tools/dlq/cmd/companias-dlq

run: build ## run the whole system on embedded Kafka (kfake) and MongoDB-wire (FerretDB); Ctrl-C stops it
	$(BIN)/devstack -command $(BIN)/companias-command -query $(BIN)/companias-query

run-secure: build ## like run, with Kafka secured: TLS, SASL/SCRAM-SHA-512, ACLs, one principal per service (kcat -F .data/kafka-client.properties)
	$(BIN)/devstack -secure -command $(BIN)/companias-command -query $(BIN)/companias-query

reset: ## delete all dev data of make run and make run-secure: databases propalpes, propalpes_views, propalpes_secure*, and .data (stop make run first)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/devstack ./libs/devinfra/cmd/devstack
	$(BIN)/devstack -reset

test: vet check-deploy check-pg ## run every test of every module with the race detector (needs PostgreSQL on 127.0.0.1:5432)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(if $(TEST_P),-p $(TEST_P)) $(PKGS)

check-pg: ## check that PostgreSQL has connections enough for make test with TEST_P packages at once; says what to do if not
	$(GO) run ./libs/devinfra/cmd/pgcheck $(if $(TEST_P),-p $(TEST_P))

check-deploy: ## validate docker-compose.yml, the Dockerfiles, deploy/kafka and deploy/k8s (no Docker needed)
	cd $(DEPLOY_CHECK) && GOWORK=off $(GO) test -race -count=1 ./...

test-short: ## run the pure unit tests only
	$(GO) test -race -short -count=1 $(PKGS)

lint: fmt vet staticcheck ## gofmt, go vet and staticcheck

fmt: ## fail if any file needs gofmt
	@out=$$(gofmt -l $(MODULES) $(DEPLOY_CHECK)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: fmt logkeys ## go vet every package
	$(GO) vet $(PKGS)
	cd $(DEPLOY_CHECK) && GOWORK=off $(GO) vet ./...

logkeys: ## fail if a log call puts an error under a key other than "err"
	@out=$$(grep -rn --include=*.go -E '"error", [a-zA-Z(]|slog\.(Any|String)\("error"' $(MODULES)); \
	if [ -n "$$out" ]; then echo 'log an error under the key "err":'; echo "$$out"; exit 1; fi

staticcheck: ## staticcheck every package
	$(GO) run $(STATICCHECK) $(PKGS)
	cd $(DEPLOY_CHECK) && GOWORK=off $(GO) run $(STATICCHECK) ./...

fuzz: ## run each fuzz target for FUZZTIME, one after the other; stops at the first failing input
	GO=$(GO) .ci/fuzz.sh $(FUZZTIME) $(PKGS)

fuzz-ci: ## run each fuzz target briefly (FUZZTIME_CI), guided by this workspace's code, as CI does after make test
	GO=$(GO) FUZZ_INSTRUMENT=module .ci/fuzz.sh $(FUZZTIME_CI) $(PKGS)

chaos: ## fault injection, full form: 10,000 commands, 32 faults (CHAOS_SEED=n reproduces a run)
	cd chaos && $(GO) run ./cmd/chaosrun -repo $(CURDIR) -seed $(CHAOS_SEED) -commands 10000 -nfaults 32 $(CHAOS_FLAGS)

chaos-short: ## fault injection, CI form: ~300 commands, one fault of each kind (also part of make test)
	cd chaos && CHAOS_SEED=$(filter-out 0,$(CHAOS_SEED)) CHAOS_ARGS="$(CHAOS_FLAGS)" $(GO) test -count=1 -run TestChaosShort -v .

soak: ## constant load at half the capacity measured by a 15 s burst (SOAK_FLAGS="-rate 100" fixes it) for DURATION; writes chaos/SOAK.md and its plots in chaos/soak/, fails on growth
	@rm -f chaos/soak/series.json; rc=0; (cd chaos && $(GO) run ./cmd/chaosrun -soak -faults none -repo $(CURDIR) -duration $(DURATION) -rate 0 -soak-out SOAK.md -soak-series soak/series.json $(SOAK_FLAGS)) || rc=$$?; \
	if [ -f chaos/soak/series.json ]; then (cd bench && $(GO) run ./cmd/benchrun -soak-plots ../chaos/soak/series.json) || rc=1; fi; \
	exit $$rc

bench: ## run every benchmark of the project; writes bench/RESULTS.md and the plots in bench/plots/
	$(MAKE) -C bench all

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done
	cd $(DEPLOY_CHECK) && GOWORK=off $(GO) mod tidy

clean: ## remove build output (bin/); the dev data stays: make reset deletes it
	rm -rf $(BIN)
