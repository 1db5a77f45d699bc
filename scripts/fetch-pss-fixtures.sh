#!/usr/bin/env bash
# Fetches the Pod Security Standards conformance fixtures: the module
# k8s.io/pod-security-admission at the version matching the control plane the tests build
# (v0.X.Y for Kubernetes v1.X.Y), into the Go module cache, the ordinary Go way.
# Prints the fixtures folder (<module>/test/testdata). A second run downloads nothing.
#
# tests/container/test_pss_fixtures.py runs every pass and fail pod of that folder through
# the container suite; it looks the folder up the same way (go mod download is cached).
set -euo pipefail

K8S_VERSION="${K4C_K8S_VERSION:-v1.37.2}"
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
patch=$(echo "$K8S_VERSION" | cut -d. -f3)
MODULE="k8s.io/pod-security-admission@v0.$minor.$patch"

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is needed to fetch $MODULE (https://go.dev/doc/install); 'go' is not on PATH" >&2
  exit 1
fi
# A module's toolchain line must never trigger a toolchain download: it cannot succeed offline.
export GOTOOLCHAIN=local
dir=$(go mod download -json "$MODULE" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if info.get("Error"):
    sys.exit("error: " + info["Error"])
print(info["Dir"])')
testdata="$dir/test/testdata"
if [ ! -d "$testdata" ]; then
  echo "error: $MODULE has no test/testdata folder at $dir" >&2
  exit 1
fi
echo "$testdata"
