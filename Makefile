# soak-exporter: build, test and benchmark entry points. `make test` is the
# test command CI runs (.ci/run); it installs what it needs and fails loudly
# when it cannot.

GO        ?= go
# Go 1.27.3 carries fixes for standard-library vulnerabilities that the
# machine's Go 1.26.8 lacks (make vuln); the go command fetches it from the
# module proxy on first use. Every build and test through make uses it.
export GOTOOLCHAIN := go1.27.3
PKG       := github.com/generic-corp/soak-exporter
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The same flags as the Dockerfile: static, reproducible, version stamped
# into soak_build_info.
LDFLAGS   := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildUser=make \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
FIXTURE   := test/fixture/node
FUZZTIME  ?= 10s
BIN       ?= bin/soak-exporter
TESTFLAGS ?= -race -timeout 45m
# Pinned tool versions, fetched through the Go module proxy by `go run`.
STATICCHECK_VERSION ?= v0.8.2
GOVULNCHECK_VERSION ?= v1.9.0
# The Go vulnerability database as of this golang.org/x/vulndb commit; bump
# it to scan against newer reports. The built database lives outside the tree.
VULNDB_VERSION      ?= v0.0.0-20261105234957-e22db6528018
VULNDB_DIR          ?= $(or $(TMPDIR),/tmp)/soak-exporter-vulndb-$(VULNDB_VERSION)

.PHONY: all build deps fixtures debian-packages test test-go test-short test-rules fuzz lint vuln vulndb bench bench-transports bench-leak clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/soak-exporter

## deps: everything the tests need: Node fixture packages, Debian packages (Prometheus,
## Alertmanager, Redis, chromium, nginx).
deps: fixtures debian-packages

fixtures:
	@command -v node >/dev/null || { echo "make: node is required for the fixture target (install Node.js 20)"; exit 1; }
	npm ci --prefix $(FIXTURE) --no-audit --no-fund

debian-packages:
	@scripts/install-debian-packages.sh prometheus prometheus-alertmanager redis-server chromium nginx-light

## test: every test, end to end included.
test: deps lint test-go test-rules fuzz

test-go:
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...
	# The native driver's own tests again on its goroutine-per-connection
	# transport (SOAK_NATIVE_EVENT_LOOP=false); the run above used the event loop.
	$(GO) test $(TESTFLAGS) ./internal/probe/native/ -args -native.reader-goroutines

## test-short: the fast tier: only Go needed (no Node, Redis, Prometheus, nginx, chromium).
test-short:
	$(GO) test -short ./...

test-rules:
	promtool check rules deploy/prometheus/*.rules.yml
	promtool test rules deploy/prometheus/tests/*.yml

## lint: staticcheck over the whole module (config: staticcheck.conf).
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## vulndb: build the offline Go vulnerability database from golang.org/x/vulndb.
vulndb:
	$(GO) run ./scripts/vulndb -version $(VULNDB_VERSION) -out $(VULNDB_DIR)

## vuln: govulncheck against that local database (no network at scan time);
## fails when reachable code is affected.
vuln: vulndb
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db file://$(abspath $(VULNDB_DIR)) ./...

## fuzz: each fuzz target for a short, bounded time (seed corpora are committed).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

## bench: the benchmarks; figures are written to docs/benchmarks.md's raw file.
bench: deps
	@scripts/bench.sh

## bench-transports: the native driver's CPU per event over websocket beside
## long-polling, 1,000 clients (SOAK_BENCH_CLIENTS, _RATE, _SECONDS override).
bench-transports: deps
	$(GO) test -run '^$$' -bench '^BenchmarkTransports$$' -benchtime 1x -timeout 20m ./internal/bench/

bench-leak:
	$(GO) run ./internal/leak/cmd/leakbench

clean:
	rm -rf bin
