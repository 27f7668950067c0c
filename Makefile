# sesame: see README.md. Everything builds cgo-free.
export CGO_ENABLED := 0

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
BIN         := bin/sesame
# go test flags; e.g. make test TESTFLAGS='-run TestX -v'
TESTFLAGS   ?=
# The modules with Go code: the product (go.mod), the benchmark
# (bench/go.mod: its plotting stays out of the product's go.mod) and the
# fleet's integration tests (fleettest/go.mod: nats-server stays out of
# it too). A module's ./... stops at a nested module, so each is tested
# and linted in turn. tools/go.mod only names the packaging tools (TOOL).
MODULES     := . bench fleettest
TOOL        := $(GO) tool -modfile=tools/go.mod
# Runs $(1) in every module (go -C DIR), all of them even if one fails.
each         = st=0; for m in $(MODULES); do $(GO) -C $$m $(1) || st=1; done; exit $$st

.PHONY: all build deps test unit lint bench fleetsim fuzz demo demo-fleet clean package man

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sesame

# What a fresh machine lacks for the tests: nftables, iproute2, the knock
# clients and tools the tests drive, staticcheck (only what is missing;
# apt-get or dnf). See e2e/deps.sh.
deps:
	./e2e/deps.sh --lint

# Everything: lint, the static binary, unit, privileged and e2e tests.
# Privileged tests skip when not root; SESAME_REQUIRE_ROOT=1 makes a skip fatal.
test: deps lint build package bin/nats-server
	@export SESAME_BIN=$(CURDIR)/$(BIN) NATS_SERVER_BIN=$(CURDIR)/bin/nats-server; $(call each,test -count=1 -timeout 20m $(TESTFLAGS) ./...)

# Every test that needs neither root nor namespaces: -short skips the
# privileged ones (nstest.RequireRoot) and the slow smoke runs.
unit:
	@$(call each,test -count=1 -short $(TESTFLAGS) ./...)

lint: deps
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	@$(call each,vet ./...)
	@st=0; for m in $(MODULES); do (cd $$m && $(STATICCHECK) ./...) || st=1; done; exit $$st

# Micro-benchmarks, then the end-to-end benchmark of sesame against knockd
# (root, a few minutes); writes docs/PERFORMANCE.md and its two plots.
bench: deps build bin/nats-server
	mkdir -p bin
	{ $(GO) test -run '^$$' -bench . -benchmem -count 3 ./knock/ ./capture/ ./nft/ && \
	  $(GO) -C bench test -run '^$$' -bench . -benchmem -count 3 . ; } | tee bin/micro-bench.txt
	$(GO) -C bench build -trimpath -o $(CURDIR)/bin/sesame-bench ./cmd/sesame-bench
	./bin/sesame-bench -sesame $(BIN) -nats bin/nats-server -out docs -micro bin/micro-bench.txt -command 'make bench'

# The fleet at scale (issue 14; bench/fleetsim): 100, 500 and 1,000
# members, each the real fleet link with its own connection, against three
# real nats-server processes, at 1, 10 and 100 grants/s, direct and through
# a 5 ms delaying proxy, then every server restarted under 1,000 live
# records. No root; about 6 minutes on 2 cores. Writes docs/perf-fleet.md
# and its plot (docs/perf-notes.md links them; make bench keeps both).
# FLEETSIMFLAGS adds flags, e.g. FLEETSIMFLAGS='-members 100 -delays 0'.
FLEETSIMFLAGS ?=
fleetsim: bin/nats-server
	$(GO) -C bench build -trimpath -o $(CURDIR)/bin/fleetsim ./cmd/fleetsim
	./bin/fleetsim -nats-server bin/nats-server -out docs $(FLEETSIMFLAGS)

# Run every fuzz target (each func Fuzz* of each package of each module)
# for FUZZTIME (default 30s) beyond the seed corpus that `make test`
# already runs; FUZZFLAGS adds flags (e.g. FUZZFLAGS='-parallel 1'). The
# targets are found, not listed, so none can be forgotten. -timeout 0:
# go test's default 10-minute timeout would end a 10-minute run.
FUZZTIME ?= 30s
FUZZFLAGS ?=
# FUZZ selects targets by an extended regexp on "DIR Target", e.g.
# FUZZ=FuzzPipeline or FUZZ='migrate/'.
FUZZ ?= .
fuzz:
	@set -e; for m in $(MODULES); do \
	  for d in $$($(GO) -C $$m list -f '{{.Dir}}' ./...); do \
	    for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$d/*_test.go 2>/dev/null); do \
	      echo "$$d $$t" | grep -qE '$(FUZZ)' || continue; \
	      echo "== $$d $$t for $(FUZZTIME)"; \
	      $(GO) -C $$d test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 $(FUZZFLAGS) .; \
	    done; \
	  done; \
	done

# The README's first command: a knock in throwaway namespaces (root).
demo: build
	./e2e/deps.sh --demo
	$(GO) build -trimpath -o bin/demo-listen ./e2e/demo-listen
	SESAME_BIN=$(BIN) LISTEN_BIN=bin/demo-listen ./e2e/demo.sh

# The real nats-server (v2.15.x, fleettest/go.mod's tool) for e2e and the
# fleet demo: a test dependency, never part of sesame's binary.
bin/nats-server: fleettest/go.mod fleettest/go.sum
	mkdir -p bin
	$(GO) -C fleettest build -trimpath -o $(CURDIR)/bin/nats-server github.com/nats-io/nats-server/v2

# Fleet mode (README "Fleet"): one knock opens three hosts, in throwaway
# namespaces with a 3-node NATS cluster (root). nk (github.com/nats-io/
# nkeys/nk, already in go.mod through nats.go) makes the hosts' nkeys.
demo-fleet: build bin/nats-server
	./e2e/deps.sh --demo
	$(GO) build -trimpath -o bin/demo-listen ./e2e/demo-listen
	$(GO) build -trimpath -o bin/nk github.com/nats-io/nkeys/nk
	SESAME_BIN=$(BIN) LISTEN_BIN=bin/demo-listen NATS_SERVER_BIN=bin/nats-server NK_BIN=bin/nk ./e2e/demo-fleet.sh

clean:
	rm -rf bin dist

# Man pages from docs/*.md (go-md2man, a tool of tools/go.mod).
man:
	mkdir -p dist/build
	$(TOOL) go-md2man -in docs/sesame.8.md -out dist/build/sesame.8
	$(TOOL) go-md2man -in docs/sesame.hcl.5.md -out dist/build/sesame.hcl.5

# dist/sesame_<version>_amd64.deb and dist/sesame-<version>.x86_64.rpm
# (nfpm, a tool of tools/go.mod: nothing is downloaded but modules).
PKGVERSION ?= $(shell ./deploy/version.sh)
package: build man
	cp $(BIN) dist/build/sesame
	gzip -9nf dist/build/sesame.8 dist/build/sesame.hcl.5
	rm -f dist/*.deb dist/*.rpm
	VERSION='$(PKGVERSION)' $(TOOL) nfpm package -f deploy/nfpm.yaml -p deb -t dist/sesame_$(PKGVERSION)_amd64.deb
	VERSION='$(PKGVERSION)' $(TOOL) nfpm package -f deploy/nfpm.yaml -p rpm -t dist/sesame-$(PKGVERSION).x86_64.rpm
