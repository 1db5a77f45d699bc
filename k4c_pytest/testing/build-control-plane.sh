#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules with the local Go toolchain.
# Binaries land in $K4C_CACHE/control-plane/<k8s-version>/ and a second run is a no-op.
# The versions are pinned so tests and the Pod Security fixtures agree on one release.
#
# It ships inside the k4c package (k4c_pytest/testing/), so an installed k4c can build its
# test control plane: `k4c control-plane build [--cache DIR]` runs it (and passes the version
# k4c_pytest.testing.controlplane.K8S_VERSION); in a checkout `make control-plane` runs it
# through scripts/build-control-plane.sh. Environment: K4C_K8S_VERSION, K4C_CACHE (default
# ~/.cache/k4c), K4C_PYTHON (a Python 3 to read `go mod download -json`; default python3).
set -euo pipefail

K8S_VERSION="${K4C_K8S_VERSION:-v1.37.2}"
CACHE="${K4C_CACHE:-$HOME/.cache/k4c}"
OUT="$CACHE/control-plane/$K8S_VERSION"

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ]; then
  echo "control plane $K8S_VERSION: cached in $OUT"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is needed to build kube-apiserver and etcd (https://go.dev/doc/install); 'go' is not on PATH" >&2
  exit 1
fi

# A module's toolchain line must never trigger a toolchain download: it cannot succeed offline.
export GOTOOLCHAIN=local CGO_ENABLED=0

# Every step that can fail stops the build with what failed and what to look at (Go's own
# message is printed above it); nothing half-built is installed.
fail() {
  echo "error: control plane $K8S_VERSION: $*" >&2
  echo "error: (module proxy: GOPROXY=$(go env GOPROXY); nothing was installed in $OUT)" >&2
  rm -rf "$OUT.tmp"
  exit 1
}
work="$CACHE/control-plane/build-$K8S_VERSION"
rm -rf "$work"; mkdir -p "$work/apiserver" "$work/etcd" "$OUT.tmp"

echo "control plane $K8S_VERSION: resolving modules"
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | "${K4C_PYTHON:-python3}" -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])') ||
  fail "go mod download k8s.io/kubernetes@$K8S_VERSION failed (see above): the release cannot be resolved"
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
patch=$(echo "$K8S_VERSION" | cut -d. -f3)
staging_version="v0.$minor.$patch"
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$gomod")
goline=$(awk '$1=="go"{print $2; exit}' "$gomod")
[ -n "$etcd_version" ] && [ -n "$goline" ] ||
  fail "$gomod names no go.etcd.io/etcd/server/v3 version or no go version"

# The release's go.mod replaces its staging modules with ./staging paths, which do not apply
# to a module that depends on it: point each at its published v0.X.Y instead.
{
  echo "module k4c.local/apiserver"
  echo
  echo "go $goline"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging/src/k8s.io/[a-z0-9-]+' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} > "$work/apiserver/go.mod"
cat > "$work/apiserver/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO

cat > "$work/etcd/go.mod" <<GOMOD
module k4c.local/etcd

go $goline

require go.etcd.io/etcd/server/v3 $etcd_version
GOMOD
cat > "$work/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO

echo "control plane $K8S_VERSION: building etcd $etcd_version"
# `go mod tidy -e` only tidies what it can (its problems show again in the steps that need it).
(cd "$work/etcd" && go mod tidy -e >/dev/null 2>&1) || true
(cd "$work/etcd" && go get "go.etcd.io/etcd/server/v3@$etcd_version") ||
  fail "go get go.etcd.io/etcd/server/v3@$etcd_version failed (see above): etcd's modules cannot be fetched"
(cd "$work/etcd" && go build -trimpath -o "$OUT.tmp/etcd" go.etcd.io/etcd/server/v3) ||
  fail "go build of etcd $etcd_version failed (see above)"

echo "control plane $K8S_VERSION: building kube-apiserver (a cold build takes many minutes on 2 cores)"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
(cd "$work/apiserver" && go get "k8s.io/kubernetes@$K8S_VERSION") ||
  fail "go get k8s.io/kubernetes@$K8S_VERSION failed (see above): its modules (the staging ones at $staging_version too) cannot be fetched"
(cd "$work/apiserver" && go mod tidy -e >/dev/null 2>&1) || true
(cd "$work/apiserver" && go build -trimpath -ldflags "$ldflags" -o "$OUT.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) ||
  fail "go build of kube-apiserver $K8S_VERSION failed (see above)"

rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"; rm -rf "$work"
echo "control plane $K8S_VERSION: built into $OUT"
