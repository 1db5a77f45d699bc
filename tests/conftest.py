"""Shared test helpers: run k4c the way a user does (a pytest run with k4c options) and read
back its JSON results.

The real control plane fixtures (``k4c_control_plane``, ``k4c_kube``) come from
``k4c_pytest.testing.fixtures``, the same plugin users enable to test their own controls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Imported once for the whole session: pytester's in-process runs drop the modules they import
# from sys.modules but not from their parent package, so a later run would mix two copies of
# k4c_pytest.sources.kinds (a Kind of one is no Kind of the other) once k4c_pytest.sources
# itself is loaded up front (as the endpoint plugin does).
import k4c_pytest.sources.cluster_live  # noqa: E402,F401

pytest_plugins = ["pytester", "k4c_pytest.testing.fixtures"]

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"


@dataclass
class K4CResult:
    """What one k4c run produced: pytest's exit code, its output and the JSON results."""

    ret: int
    stdout: str
    results: dict[str, Any]
    json_path: Path

    @property
    def controls(self) -> list[dict[str, Any]]:
        return self.results.get("controls", [])

    def outcomes(self) -> dict[str, str]:
        """Outcome per control id (per node id for parametrized controls)."""
        ids = [r["id"] for r in self.controls]
        return {(r["id"] if ids.count(r["id"]) == 1 else r["nodeid"]): r["outcome"] for r in self.controls}

    def control(self, control_id: str) -> dict[str, Any]:
        found = [r for r in self.controls if r["id"] == control_id]
        assert len(found) == 1, f"expected one record of {control_id}, got {len(found)}:\n{self.stdout[-3000:]}"
        return found[0]

    def offenders(self, control_id: str) -> list[dict[str, Any]]:
        """Rows of every evidence table of a control, as dicts."""
        rows = []
        for e in self.control(control_id)["evidence"]:
            if e["type"] == "table":
                rows += [dict(zip(e["columns"], row)) for row in e["rows"]]
        return rows


@pytest.fixture
def run_k4c(pytester: pytest.Pytester, tmp_path: Path):
    """Run k4c in-process: ``run_k4c("--k4c-cluster=ctx", paths=[SUITES / "cluster"], k="rbac")``."""

    counter = {"n": 0}

    def run(*args: str, paths: list[Path | str] | None = None, k: str | None = None) -> K4CResult:
        counter["n"] += 1
        json_path = tmp_path / f"results-{counter['n']}.json"
        argv = [*(str(p) for p in (paths or [SUITES / "cluster"])), *args, f"--k4c-json={json_path}",
                "-p", "no:cacheprovider", "-p", "no:randomly", "-q", f"--rootdir={REPO}"]
        if k:
            argv += ["-k", k]
        res = pytester.runpytest_inprocess(*argv)
        out = res.stdout.str() + "\n" + res.stderr.str()
        results = json.loads(json_path.read_text()) if json_path.exists() else {}
        return K4CResult(int(res.ret), out, results, json_path)

    return run


@pytest.fixture(scope="session")
def sarif_validator():
    """A jsonschema validator of the official SARIF 2.1.0 schema shipped in tests/data/schemas."""
    import jsonschema

    schema = json.loads((REPO / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


@pytest.fixture(scope="session")
def oscal_validator():
    """A jsonschema validator of NIST's OSCAL 1.0.4 assessment-results schema (tests/data/schemas),
    format checks on. Its patterns use ``\\p{L}``, which Python's re lacks: they run on ``regex``."""
    import copy

    import jsonschema
    import regex
    from jsonschema.exceptions import ValidationError

    def pattern(validator, patrn, instance, schema):
        if validator.is_type(instance, "string") and not regex.search(patrn, instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    formats = copy.deepcopy(jsonschema.Draft7Validator.FORMAT_CHECKER)
    formats.checks("regex", raises=regex.error)(lambda value: bool(regex.compile(value)))
    schema = json.loads((REPO / "tests" / "data" / "schemas" / "oscal_assessment-results_schema.json").read_text())
    jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA, format_checker=formats).validate(schema)
    validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})
    return validator(schema, format_checker=formats)
