# Tollgate: a Kubernetes operator for AI gateways that price, meter and enforce payment.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
export GOTOOLCHAIN := local

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# The envtest control plane matches the k8s.io/api version in go.mod.
ENVTEST_K8S_VERSION ?= $(shell go list -m -f '{{.Version}}' k8s.io/api | sed 's/^v0/1/')
IMG ?= ghcr.io/tollgate-dev/tollgate:dev
GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs, RBAC and apply configurations.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false paths="./..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) applyconfiguration:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	@# The Helm chart ships the same CRDs and manager role: copied, never edited by hand.
	cp config/crd/bases/*.yaml charts/tollgate/crds/
	{ echo '# Generated from config/rbac/role.yaml by make manifests.'; \
	  sed -e 's/^  name: manager-role$$/  name: {{ include "tollgate.fullname" . }}-manager/' \
	      -e '/^metadata:$$/a\  labels: {{- include "tollgate.labels" . | nindent 4 }}' config/rbac/role.yaml; } > charts/tollgate/templates/clusterrole.yaml

.PHONY: generate
generate: controller-gen ## Generate deepcopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify
verify: manifests generate ## Fail if generated files differ from what is committed, or Go files are not gofmt'ed.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w on these files"; exit 1; }
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config)" || { git status --porcelain -- api config; echo "generated files are untracked: commit them"; exit 1; }

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: envtest
envtest: ## Build (once) and print the envtest control plane directory.
	@K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh

.PHONY: redis
redis: ## Install redis-server for the Redis ledger tests (once; needs root or sudo).
	@hack/install-redis.sh

.PHONY: test
test: manifests generate vet envtest redis helm ## Run every test: unit, golden and envtest suites on a real kube-apiserver.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh)" go test $(GO_TEST_FLAGS) ./... -count=1

.PHONY: test-e2e
test-e2e: manifests envtest redis ## Run the end-to-end suite: the product as processes on a real API server.
	go test -tags e2e ./test/e2e/ -count=1 -v -timeout 15m

##@ Build

.PHONY: build
build: ## Build the manager and proxy binaries into ./bin.
	go build -o $(LOCALBIN)/ ./cmd/...

.PHONY: run
run: manifests generate ## Run the manager against the current kubeconfig.
	go run ./cmd/manager

.PHONY: bench
bench: ## Benchmark the proxy against a tuned httputil.ReverseProxy on 127.0.0.1 (prints a table with ratios).
	go run ./test/bench

.PHONY: demo
demo: manifests envtest ## Run the whole product locally: API server, manager, proxy, a tenant getting 200s then a 402.
	go run ./hack/demo

.PHONY: build-installer
build-installer: manifests envtest ## Write dist/install.yaml: CRDs, RBAC and the manager in one file (what kubectl apply -k config/default installs).
	mkdir -p dist
	"$$(K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh)/kubectl" kustomize config/default > dist/install.yaml
	@echo "wrote dist/install.yaml"

.PHONY: helm
helm: ## Build (once) and print the path of helm, from its Go module.
	@hack/helm.sh

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into ./bin.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
