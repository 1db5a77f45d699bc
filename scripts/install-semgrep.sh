#!/usr/bin/env bash
# Installs semgrep into its OWN virtualenv, ${K4C_CACHE:-$HOME/.cache/k4c}/semgrep-venv, never into
# the project's: semgrep pins its dependencies tightly (urllib3, ...) and would clash with boto3
# and kubernetes. Prints the semgrep executable. A second run installs nothing.
#
# k4c finds it through --k4c-semgrep PATH or K4C_SEMGREP (tests/code/test_semgrep.py uses the
# path this script prints). Override the version with K4C_SEMGREP_VERSION (e.g. 1.100.0).
set -euo pipefail

CACHE="${K4C_CACHE:-$HOME/.cache/k4c}"
VENV="$CACHE/semgrep-venv"
PYTHON="${PYTHON:-python3}"
SPEC="semgrep${K4C_SEMGREP_VERSION:+==$K4C_SEMGREP_VERSION}"
STAMP="$VENV/.k4c-installed-$SPEC"
# semgrep checks semgrep.dev for a newer version on every run: off this machine's network that
# waits for a timeout (about 100 s for --version). k4c's runs turn it off too.
export SEMGREP_ENABLE_VERSION_CHECK=0 SEMGREP_SEND_METRICS=off

if [ ! -f "$STAMP" ] || ! "$VENV/bin/semgrep" --version >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$SPEC"
  # An install that cannot run must fail here, not in the tests.
  "$VENV/bin/semgrep" --version >/dev/null
  rm -f "$VENV"/.k4c-installed-*
  touch "$STAMP"
fi
echo "$VENV/bin/semgrep"
