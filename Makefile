# imdsguard: `sudo make demo` and `sudo make test` do everything on a fresh
# Debian machine (they install what they need first).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps demo-deps tools tidy-check test unit e2e demo bench deb rpm fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/imdsguard ./cmd/imdsguard

# Debian packages the tests use, the test tools in bin/ (AEMM, the real
# SDK clients, the fake upstream, the benchmark command, the demo) and the
# cached base of the DaemonSet image (debootstrap).
deps:
	scripts/install-test-deps.sh

# Only what the demo runs: its Debian packages (iptables, the clients),
# bin/aemm, bin/imdsclient and bin/demo; no container runtimes, no image base.
demo-deps:
	scripts/install-test-deps.sh --demo

tools:
	scripts/build-tools.sh

# go.mod and go.sum of every module (the main one, tools/, helm's wrapper
# tools/helm, Kubernetes' wrapper tools/kube, the PromQL parser's
# tools/promql) must be what `go mod tidy` makes them; on a difference this
# prints tidy's diff.
tidy-check:
	@$(GO) mod tidy -diff || { echo "tidy-check: go.mod/go.sum are not tidy (see above): run 'go mod tidy'" >&2; exit 1; }
	@cd tools && $(GO) mod tidy -diff || { echo "tidy-check: tools/go.mod/go.sum are not tidy (see above): run 'cd tools && go mod tidy'" >&2; exit 1; }
	@cd tools/helm && $(GO) mod tidy -diff || { echo "tidy-check: tools/helm/go.mod/go.sum are not tidy (see above): run 'cd tools/helm && go mod tidy'" >&2; exit 1; }
	@cd tools/kube && $(GO) mod tidy -diff || { echo "tidy-check: tools/kube/go.mod/go.sum are not tidy (see above): run 'cd tools/kube && go mod tidy'" >&2; exit 1; }
	@cd tools/promql && $(GO) mod tidy -diff || { echo "tidy-check: tools/promql/go.mod/go.sum are not tidy (see above): run 'cd tools/promql && go mod tidy'" >&2; exit 1; }

# Every test: the tidy check, unit tests (privileged ones run as root, skip
# otherwise) and the end-to-end tests with real clients against the IMDS mock.
# IMDSGUARD_NO_SKIP=1: after deps, a test that lacks root, a package or a
# built tool fails instead of skipping (internal/testenv), so a broken
# install cannot pass as skipped tests.
test: export IMDSGUARD_NO_SKIP = 1
test: tidy-check deps build
	$(GO) vet ./...
	cd tools && $(GO) vet ./...
	$(GO) test -count=1 ./...
	cd tools && $(GO) test -count=1 -timeout 30m ./...
	cd tools/promql && $(GO) vet ./... && $(GO) test -count=1 ./...

unit:
	$(GO) test -count=1 ./...

e2e: export IMDSGUARD_NO_SKIP = 1
e2e: deps build
	cd tools && $(GO) test -count=1 -v ./e2e/

# tools/cmd/demo: an instance in network namespaces (tools/testbed), IMDS
# requiring tokens, imdsguard and real clients; needs root.
demo: demo-deps build
	bin/demo

# As root. Writes docs/BENCHMARKS.md (bin/bench, tools/cmd/bench: imdsguard
# against nginx in a network namespace it makes), docs/IDENTITY_BENCH.md
# (the caller identity lookup) and docs/ROLES_BENCH.md (roles per workload:
# first credentials with STS cold, cached reads; tools/e2e BenchmarkRoles).
# BENCH_FLAGS are bin/bench's flags, e.g.
# BENCH_FLAGS='-imdsguard-b /tmp/old/imdsguard' for an A/B of two builds.
BENCH_FLAGS ?=
bench: deps build
	bin/bench $(BENCH_FLAGS)
	scripts/bench-identity.sh
	scripts/bench-roles.sh
	scripts/bench-rules.sh

# dist/imdsguard_<version>_amd64.deb (the script derives a Debian-valid
# version from git describe and stamps the binary with it).
deb:
	scripts/build-deb.sh

# dist/imdsguard-<version>-1.x86_64.rpm: the same files from the same
# packaging/nfpm.yaml, for Amazon Linux 2023 and RHEL 9.
rpm:
	scripts/build-package.sh --packager rpm

# bin/imdsguard-image.tar: the DaemonSet's image (packaging/image), built
# from Debian packages without a registry; DOCKER_HOST=unix://... imports it.
.PHONY: image
image:
	scripts/build-image.sh $(if $(DOCKER_HOST),--docker-host $(DOCKER_HOST))

# A longer fuzz than `make test` does: every fuzz target of the main module,
# found by scripts/fuzz.sh (go test -list), FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" scripts/fuzz.sh

clean:
	rm -rf bin dist
