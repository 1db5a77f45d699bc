# k4c — the two commands of the README:
#   make demo   virtualenv + k4c, then every suite on the embedded demo environment
#   make test   everything the tests need (Debian packages, Go-built control plane, Chromium), then the tests
# Every step is idempotent and cached: a second run only does what changed.

PYTHON ?= python3
VENV   ?= .venv
K4C_CACHE ?= $(HOME)/.cache/k4c
export K4C_CACHE
DEMO_OUT ?= demo-out
# The tests start their own control planes, registries and servers per worker: two workers
# keep both cores busy. Override with e.g. PYTEST_ARGS='-n 0 -x'.
PYTEST_ARGS ?= -n 2

BIN := $(VENV)/bin
STAMP := $(VENV)/.k4c-installed

.PHONY: help venv demo demo-live control-plane system-deps pss-fixtures semgrep kustomize test-deps test bench bench-manifests clean

help:
	@echo "make demo        run every suite on the bundled demo environment (report.html + results.json)"
	@echo "make demo-live   the same against a real kube-apiserver started locally (builds it first)"
	@echo "make test        install what the tests need and run them"
	@echo "make bench       the scale benchmark (150,000 pods; prints figures)"
	@echo "make bench-manifests  10,000 Deployment manifests, side by side with Checkov (prints figures)"

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/k4c demo --out $(DEMO_OUT)

demo-live: venv control-plane
	$(BIN)/k4c demo --live --out $(DEMO_OUT)

# kube-apiserver and etcd from their Go modules, cached per version in $(K4C_CACHE).
control-plane:
	bash scripts/build-control-plane.sh

# Debian packages the tests use (headless Chromium for the report test).
system-deps:
	bash scripts/install-system-deps.sh

# The Pod Security Standards conformance fixtures (Go module cache; tests/container uses them).
pss-fixtures:
	bash scripts/fetch-pss-fixtures.sh

# semgrep in a virtualenv of its own ($(K4C_CACHE)/semgrep-venv): its pinned dependencies
# clash with the project's. tests/code/test_semgrep.py runs it there.
semgrep:
	bash scripts/install-semgrep.sh

# kustomize from its Go module, cached per version in $(K4C_CACHE)/kustomize: the manifests
# backend renders Kustomizations with it (tests/code/test_render_manifests.py).
kustomize:
	bash scripts/build-kustomize.sh

test-deps: venv system-deps control-plane pss-fixtures semgrep kustomize

# Then k4c on its own tree: K4C-CODE-CI-001, this CI runs k4c (.ci/run -> make test).
test: test-deps
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/k4c run --suite code -- --k4c-source=. -k test_ci_runs_k4c

bench: venv
	$(BIN)/python bench/snapshot_scale.py

# Checkov is installed on first use into its own virtualenv under $(K4C_CACHE)/bench-checkov.
bench-manifests: venv
	$(BIN)/python bench/manifests_scale.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist *.egg-info report.html results.json
