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

.PHONY: all build deps test unit lint bench fuzz demo clean package man

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
test: deps lint build package
	SESAME_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m $(TESTFLAGS) ./...

# Only what needs neither root nor namespaces.
unit:
	$(GO) test -count=1 -short $(TESTFLAGS) ./policy/... ./knock/... ./capture/... ./cmd/... ./spa/... ./totp/... ./onetime/... ./knockdconf/... ./fwknopconf/... ./internal/fuzzlist/...

lint: deps
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Micro-benchmarks, then the end-to-end benchmark of sesame against knockd
# (root, a few minutes); writes docs/PERFORMANCE.md and its two plots.
bench: deps build
	mkdir -p bin
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./knock/ ./capture/ ./nft/ ./bench/ | tee bin/micro-bench.txt
	$(GO) build -trimpath -o bin/sesame-bench ./cmd/sesame-bench
	./bin/sesame-bench -sesame $(BIN) -out docs -micro bin/micro-bench.txt -command 'make bench'

# Every fuzz target, as DIR:Target (DIR relative to the module root).
# internal/fuzzlist's test fails when a func Fuzz exists that this list
# does not name, or the list names one that does not exist.
FUZZ_TARGETS := \
	policy:FuzzParse \
	knock:FuzzMatcher \
	capture:FuzzDecode \
	capture:FuzzPipeline \
	spa:FuzzVerify \
	spa:FuzzParsePlaintext \
	knockdconf:FuzzConvert \
	fwknopconf:FuzzConvert

# Run each fuzz target, one after the other, for FUZZTIME (default 30s)
# beyond the seed corpus that `make test` already runs; e.g.
# make fuzz FUZZTIME=10m FUZZFLAGS='-parallel 1'. See docs/FUZZING.md.
FUZZTIME  ?= 30s
FUZZFLAGS ?=
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  dir=$${t%%:*}; name=$${t##*:}; \
	  echo "== ./$$dir $$name for $(FUZZTIME)"; \
	  $(GO) test -timeout 0 -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./$$dir/; \
	done

# The README's first command: a knock in throwaway namespaces (root).
demo: build
	./e2e/deps.sh --demo
	$(GO) build -trimpath -o bin/demo-listen ./e2e/demo-listen
	SESAME_BIN=$(BIN) LISTEN_BIN=bin/demo-listen ./e2e/demo.sh

clean:
	rm -rf bin dist

# Man pages from docs/*.md (go-md2man, a tool dependency in go.mod).
man:
	mkdir -p dist/build
	$(GO) tool go-md2man -in docs/sesame.8.md -out dist/build/sesame.8
	$(GO) tool go-md2man -in docs/sesame.hcl.5.md -out dist/build/sesame.hcl.5

# dist/sesame_<version>_amd64.deb and dist/sesame-<version>.x86_64.rpm
# (nfpm, a tool dependency in go.mod: nothing is downloaded but modules).
PKGVERSION ?= $(shell ./deploy/version.sh)
package: build man
	cp $(BIN) dist/build/sesame
	gzip -9nf dist/build/sesame.8 dist/build/sesame.hcl.5
	rm -f dist/*.deb dist/*.rpm
	VERSION='$(PKGVERSION)' $(GO) tool nfpm package -f deploy/nfpm.yaml -p deb -t dist/sesame_$(PKGVERSION)_amd64.deb
	VERSION='$(PKGVERSION)' $(GO) tool nfpm package -f deploy/nfpm.yaml -p rpm -t dist/sesame-$(PKGVERSION).x86_64.rpm
