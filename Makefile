GO      ?= go
BIN     := bin/strata
PKGS    := ./...
# Packages whose tests also run under the race detector on every `make test`
# (those whose tests take seconds; the proxy's packages that run real
# topologies for minutes, and the planner's differential tests, do not).
RACE_PKGS := ./raftstore/... ./localdb/... ./idserver/... \
	./shardproxy/executor/... ./shardproxy/wire/... ./shardproxy/engine/... \
	./shardproxy/config/... ./shardproxy/vschema/... ./shardproxy/internal/... \
	./internal/... ./cachetier/... ./shardproxy/hotrow/...
# Example applications that are Go modules of their own (their clients'
# dependencies stay out of Strata's go.mod); `make test` runs their tests.
EXAMPLE_MODS := examples/seata-go
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# go-sql-driver/mysql's TestConnectorReturnsTimeout dials off this machine: never run it.
TESTFLAGS ?= -count=1 -timeout 20m -skip TestConnectorReturnsTimeout

# How long `make fuzz` runs each fuzz target (every `go test` already runs
# a few seconds of each).
FUZZTIME ?= 60s

.PHONY: all build run test lint bench deps bench-deps fuzz clean drills

all: build

build:
	$(GO) build -o $(BIN) ./cmd/strata

deps:
	@scripts/deps.sh

bench-deps:
	@scripts/deps.sh --bench

run: deps build
	./$(BIN) up

test: deps lint
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(GO) test -race $(TESTFLAGS) $(RACE_PKGS)
	@for m in $(EXAMPLE_MODS); do (cd $$m && $(GO) vet ./... && $(GO) test $(TESTFLAGS) ./...) || exit 1; done

lint: $(STATICCHECK)
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The full form of every shipped drill (the short forms run in `make test`),
# each against a local stack of its own; reports in $(DRILL_REPORTS)/NAME.
DRILL_REPORTS ?= drill-reports
drills: deps build
	@fail=0; for d in drills/*.yaml; do \
		n=$$(basename $$d .yaml); \
		./$(BIN) chaos run $$d --report $(DRILL_REPORTS)/$$n || fail=1; \
	done; exit $$fail

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzPacketReader$$' -fuzztime $(FUZZTIME) ./shardproxy/
	$(GO) test -run '^$$' -fuzz '^FuzzFastPath$$' -fuzztime $(FUZZTIME) ./shardproxy/executor/
	$(GO) test -run '^$$' -fuzz '^FuzzBuild$$' -fuzztime $(FUZZTIME) ./shardproxy/planner/
	$(GO) test -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) ./shardproxy/sqlmode/

clean:
	rm -rf bin
