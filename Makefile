# roots — build, install, test.
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build install test lint bench clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/roots ./cmd/roots

install: build
	install -D -m 0755 bin/roots $(DESTDIR)$(PREFIX)/bin/roots

# Needs root and the Debian package docker-registry (see .ci/run).
test: lint
	$(GO) test -count=1 -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	@echo "make bench: not built yet (issue 6)"; exit 1

clean:
	rm -rf bin
