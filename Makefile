# roots — build, install, test.
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build install man test test-system lint bench clean

# Static (CGO_ENABLED=0): runs in any rootfs, and starts faster: a dynamic build
# loads libc first, which costs a warm overlay pull 6 ms of its ~60 (bench).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/roots ./cmd/roots

install: build man
	install -D -m 0755 bin/roots $(DESTDIR)$(PREFIX)/bin/roots
	install -D -m 0644 bin/roots.1 $(DESTDIR)$(PREFIX)/share/man/man1/roots.1

# roots(1), generated from the command line (roots man): man -l bin/roots.1
man: build
	bin/roots man > bin/roots.1

# Needs root and the Debian package docker-registry (see .ci/run).
test: lint
	$(GO) test -count=1 -timeout 30m ./...

# A Debian rootfs built by debootstrap, pushed and pulled, run under chroot
# (cmd/roots/e2e/system_test.go). Needs root, debootstrap, libcap2-bin and the
# Debian archive on the first run of a week (the tree is cached in
# /var/cache/roots-test).
test-system:
	$(GO) vet -tags system ./cmd/roots/e2e/
	$(GO) test -tags system -count=1 -run TestSystem -timeout 30m ./cmd/roots/e2e/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) build -o bin/rootsbench ./bench/cmd/rootsbench
	./bin/rootsbench $(BENCHFLAGS)

clean:
	rm -rf bin
