# exed build and test entry points. `make test` is what CI runs.
GO        ?= go
PACKAGES  ?= ./...
# Debian packages the integration tests need: a real sshd, redis-server,
# ansible, python3 (a command calling setpgid), sudo (become), systemd
# (systemd-analyze, for verify-units), tmux (exectl on a real terminal),
# bash-completion (exectl's completion script) and chromium (the job
# dashboard's browser tests, headless). Installed only when missing, and
# only when running as root.
TEST_DEBS := openssh-server redis-server ansible python3 sudo systemd tmux bash-completion chromium
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a run at the deadline with "context
# deadline exceeded" and no crasher (golang/go#75804).
FUZZTIME  ?= 40000x
# Generators of internal/pluginpb, pinned: the generated files name them.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
TOOLS     := $(CURDIR)/.tools

.PHONY: all build test deps vet fuzz bench run clean generate check-generated verify-units

all: build

build:
	$(GO) build $(PACKAGES)

run:
	$(GO) run ./examples/exed

deps:
	@missing=""; \
	command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v ansible >/dev/null 2>&1 || missing="$$missing ansible"; \
	[ -x /usr/bin/sudo ] || missing="$$missing sudo"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	[ -f /usr/share/bash-completion/bash_completion ] || missing="$$missing bash-completion"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing:$$missing (run make test as root to install them)"; \
		fi; \
	fi

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PACKAGES)

# generate regenerates the plugin protocol code (Debian protobuf-compiler,
# installed when missing as root, and the pinned Go generators).
generate:
	@command -v protoc >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null; }
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(TOOLS):$$PATH" $(GO) generate ./internal/pluginpb

# check-generated fails when the committed protocol code is not what
# plugin.proto generates.
check-generated: generate
	@git diff --exit-code -- internal/pluginpb || { echo "internal/pluginpb is stale: run make generate and commit"; exit 1; }

# An execution of FuzzPluginOutput is six calls to a plugin process:
# minimising each new input for the default 60 s would take longer than
# the fuzzing, hence its minimisation budget.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./transport/http
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./inventory
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./inventory
	$(GO) test -run '^$$' -fuzz '^FuzzPluginOutput$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./executor

# verify-units checks etc/'s systemd units with systemd-analyze, which
# needs no running systemd (this works in a container). `verify` also
# checks that ExecStart's binary exists and is executable, and
# /usr/local/bin/exed is not installed here: it verifies copies whose
# ExecStart names an exed built for the check. It exits 0 on warnings
# (an unknown key is only "ignoring"), so any output fails the check.
# `security --offline` scores the sandbox: exposure above 2.0 ("OK")
# fails, so that a loosened unit is noticed.
UNITS := etc/exed.service etc/exed-worker.service
verify-units:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) build -o "$$tmp/exed" ./examples/exed && \
	for u in $(UNITS); do sed "s|/usr/local/bin/exed|$$tmp/exed|" $$u > "$$tmp/$${u##*/}"; done && \
	out=$$(systemd-analyze verify --man=no $(addprefix "$$tmp"/,$(notdir $(UNITS))) 2>&1); rc=$$?; \
	if [ $$rc != 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "systemd-analyze verify failed: fix $(UNITS)"; exit 1; fi; \
	for u in $(notdir $(UNITS)); do \
		systemd-analyze security --offline=yes --threshold=20 --no-pager "$$tmp/$$u" >/dev/null 2>&1 || { \
			systemd-analyze security --offline=yes --no-pager "$$tmp/$$u"; echo "etc/$$u: exposure above 2.0"; exit 1; }; \
	done; \
	echo "verify-units: $(UNITS) verified"

test: deps vet check-generated verify-units
	EXE_REQUIRE_INTEGRATION=1 $(GO) test -race -count=1 -timeout 15m $(PACKAGES)
	$(GO) test -count=1 -run 'GrowsLinearly' ./inventory ./plugins/sshnative
	$(MAKE) --no-print-directory fuzz

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./transport/http ./executor ./bench/...
