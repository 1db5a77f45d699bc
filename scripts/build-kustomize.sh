#!/usr/bin/env bash
# Builds kustomize from its Go module with the local Go toolchain, for the tests of k4c's
# Kustomize rendering (tests/code/test_render_manifests.py). The binary lands in
# ${K4C_CACHE:-$HOME/.cache/k4c}/kustomize/<version>/kustomize; a second run builds nothing.
# Prints the executable. Override the version with K4C_KUSTOMIZE_VERSION (one whose go.mod the
# local Go can build: v5.8.3 needs Go 1.27).
set -euo pipefail

VERSION="${K4C_KUSTOMIZE_VERSION:-v5.8.2}"
CACHE="${K4C_CACHE:-$HOME/.cache/k4c}"
OUT="$CACHE/kustomize/$VERSION"

if [ -x "$OUT/kustomize" ] && "$OUT/kustomize" version >/dev/null 2>&1; then
  echo "$OUT/kustomize"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is needed to build kustomize (https://go.dev/doc/install); 'go' is not on PATH" >&2
  exit 1
fi

# A module's toolchain line must never trigger a toolchain download: it cannot succeed offline.
export GOTOOLCHAIN=local CGO_ENABLED=0
rm -rf "$OUT.tmp"; mkdir -p "$OUT.tmp"
echo "kustomize $VERSION: building (go install, a few minutes cold)" >&2
GOBIN="$OUT.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@$VERSION" >&2
# A build that cannot run must fail here, not in the tests.
"$OUT.tmp/kustomize" version >/dev/null
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT/kustomize"
