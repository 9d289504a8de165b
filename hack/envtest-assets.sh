#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd, kubectl, and
# kube-controller-manager for its garbage collector) from Go
# modules and caches it outside the work tree, so every clone reuses it.
# envtest's usual download is not reachable from every build machine; the Go
# module proxy is. Idempotent: prints the asset directory and exits when the
# binaries are already there.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.0}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
CACHE="${TOLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate}"
ASSETS="$CACHE/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-$(go env GOOS)-$(go env GOARCH)"

if [[ -x "$ASSETS/kube-apiserver" && -x "$ASSETS/etcd" && -x "$ASSETS/kubectl" && -x "$ASSETS/kube-controller-manager" ]]; then
  echo "$ASSETS"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$ASSETS"

log() { echo "envtest-assets: $*" >&2; }

# kubernetes' go.mod points ~33 staging modules at ./staging/...; a wrapper
# module replaces each with its published tag.
log "building kube-apiserver, kube-controller-manager and kubectl v${K8S_VERSION} (a cold build takes minutes)"
kmod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
mkdir -p "$work/k8s"
{
  echo "module tollgate.dev/envtest/k8s"
  echo "go 1.26"
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"${STAGING_VERSION}"'#p' "$kmod"
} >"$work/k8s/go.mod"
cat >"$work/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
(
  cd "$work/k8s"
  go mod tidy -e >/dev/null 2>&1 || true
  go build -tags selinux,notest,grpcnotrace -trimpath -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -tags selinux,notest,grpcnotrace -trimpath -o "$work/kubectl" k8s.io/kubernetes/cmd/kubectl
  go build -tags selinux,notest,grpcnotrace -trimpath -o "$work/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
)

log "building etcd v${ETCD_VERSION}"
mkdir -p "$work/etcd"
cat >"$work/etcd/go.mod" <<MOD
module tollgate.dev/envtest/etcd
go 1.26
require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
MOD
cat >"$work/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
(
  cd "$work/etcd"
  go mod tidy -e >/dev/null 2>&1 || true
  go build -trimpath -o "$work/etcd-bin" go.etcd.io/etcd/server/v3
)

mv "$work/kube-apiserver" "$work/kubectl" "$work/kube-controller-manager" "$ASSETS/"
mv "$work/etcd-bin" "$ASSETS/etcd"
echo "$ASSETS"
