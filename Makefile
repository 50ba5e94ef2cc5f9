PLUGIN  := vault-plugin-secrets-reference
VERSION ?= v0.1.0
BIN     := bin/$(PLUGIN)
# -trimpath and a fixed version make the build reproducible: every node of a
# cluster must hold a byte-identical binary for the same -sha256.
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.DEFAULT_GOAL := build
.PHONY: build test fmt vet clean help

build: ## build the plugin into bin/ with its SHA-256 beside it
	$(GOBUILD) -o $(BIN) .
	sha256sum $(BIN) | cut -d' ' -f1 > $(BIN).sha256
	@echo "$(BIN) $(VERSION) sha256 $$(cat $(BIN).sha256)"

test: vet ## vet, then run the unit tests with the race detector
	go test -race -count=1 ./...

fmt: ## format the code
	gofmt -w .

vet: ## report suspicious code
	go vet ./...

clean: ## remove build output
	rm -rf bin dist

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'
