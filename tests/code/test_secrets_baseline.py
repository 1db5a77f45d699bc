"""The detect-secrets baseline audits a finding only when it says so: ``"is_secret": false`` on an
entry of the same file, type and hashed secret. Unaudited, confirmed and mismatched entries
leave the finding reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k4c_pytest.sources.code_secrets import BASELINE, scan
from k4c_pytest.sources.code_tree import SourceTree

DOCS_HASH = "805eb8037cba2a2a9dcb33499f1d44424d194027"  # of the placeholder in good/docs.md (as audited)


def _edit(tree: Path, change) -> None:
    path = tree / BASELINE
    baseline = json.loads(path.read_text())
    (entry,) = baseline["results"]["docs.md"]
    change(baseline, entry)
    path.write_text(json.dumps(baseline, indent=2))


def _findings(tree: Path) -> tuple[list[tuple[str, int, str]], int]:
    res = scan(SourceTree(str(tree)))
    return [(Path(f["file"]).relative_to(tree).as_posix(), f["line"], f["type"]) for f in res["findings"]], \
        res["audited"]


def test_baseline_as_committed_audits_both_false_positives(tree_copy):
    tree = tree_copy("good")
    assert _findings(tree) == ([], 2)


def _unaudited(baseline, entry):
    del entry["is_secret"]


def _confirmed(baseline, entry):
    entry["is_secret"] = True


def _other_hash(baseline, entry):
    entry["hashed_secret"] = "0" * 40


def _other_type(baseline, entry):
    entry["type"] = "Base64 High Entropy String"


def _other_file(baseline, entry):
    baseline["results"]["README.md"] = baseline["results"].pop("docs.md")
    entry["filename"] = "README.md"


def _not_a_boolean(baseline, entry):
    entry["is_secret"] = "false"


@pytest.mark.parametrize("change", [_unaudited, _confirmed, _other_hash, _other_type, _other_file, _not_a_boolean],
                         ids=lambda f: f.__name__.strip("_"))
def test_only_an_audited_false_positive_of_the_same_secret_is_skipped(tree_copy, change):
    tree = tree_copy("good")
    _edit(tree, change)
    findings, audited = _findings(tree)
    assert findings == [("docs.md", 5, "Secret Keyword")]
    assert audited == 1  # the deployment's entry is still audited


def test_the_audited_hash_is_the_secret_of_the_file(tree_copy):
    # the same hash, type and file audit the finding; the line is not compared (it moves with edits)
    tree = tree_copy("good")
    docs = tree / "docs.md"
    docs.write_text("\n\n" + docs.read_text())
    _edit(tree, lambda b, e: None)
    assert _findings(tree) == ([], 2)
    docs.write_text(docs.read_text().replace("4f1c9a", "4f1c9b"))  # another value under the same name
    findings, audited = _findings(tree)
    assert findings == [("docs.md", 7, "Secret Keyword")] and audited == 1


def test_an_unaudited_baseline_entry_fails_the_control(k4c_code, tree_copy):
    tree = tree_copy("good")
    _edit(tree, _unaudited)
    res = k4c_code(tree, k="secrets")
    assert res.outcomes()["K4C-CODE-SEC-001"] == "FAIL"
    assert [(Path(r["file"]).name, r["line"], r["type"]) for r in res.offenders("K4C-CODE-SEC-001")] == [
        ("docs.md", 5, "Secret Keyword")]
    assert DOCS_HASH not in res.stdout and "4f1c9a" not in json.dumps(res.results)
