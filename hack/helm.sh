#!/usr/bin/env bash
# Builds helm from its Go module once and caches it outside the work tree
# (no binary download needed); prints the path of the binary.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${TOLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate}"
BIN="$CACHE/tools/helm-$HELM_VERSION"
if [[ ! -x "$BIN/helm" ]]; then
  echo "helm.sh: building helm $HELM_VERSION from its Go module (once)" >&2
  mkdir -p "$BIN"
  GOTOOLCHAIN=local GOBIN="$BIN" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi
echo "$BIN/helm"
