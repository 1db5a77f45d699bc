"""CI configurations of a source tree and whether they run k4c.

Read: GitHub Actions workflows (``.github/workflows/*.yml|yaml``: every step's ``run`` and
``uses``), GitLab CI (``.gitlab-ci.yml``: every job's ``script``, ``before_script`` and
``after_script``) and scripts in ``.ci/``. A command runs k4c when it calls the ``k4c`` CLI
(``k4c run``), or pytest with a ``--k4c-`` option, ``--pyargs k4c_pytest.suites`` or
``python -m k4c_pytest``. Comments in scripts do not count. A configuration that cannot be
parsed is a DataUnavailable naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_tree import SourceTree

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_RUNS_K4C = re.compile(r"(^|[\s;&|(/])k4c\s+(run|demo|collect)\b|pytest\b[^\n]*(--k4c-|k4c_pytest)"
                       r"|-m\s+k4c_pytest\b", re.MULTILINE)


def runs_k4c(command: str) -> bool:
    """Whether a shell command (or script) runs k4c; ``#`` comment lines do not count."""
    text = "\n".join(line for line in command.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", text)  # a command continued over lines is one command
    return bool(_RUNS_K4C.search(text))


def _yaml(tree: SourceTree, path: Path) -> Any:
    try:
        return yaml.load(tree.read_text(path), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{tree.display(path)}:{mark.line + 1}" if mark is not None else tree.display(path)
        raise DataUnavailable(where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _lines(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _lines(v)


def _github(tree: SourceTree, path: Path) -> dict[str, Any]:
    doc = _yaml(tree, path)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise DataUnavailable(tree.display(path), "not a GitHub Actions workflow: no 'jobs' mapping")
    hits = []
    for job_id, job in doc["jobs"].items():
        for i, step in enumerate((job or {}).get("steps") or ()):
            if isinstance(step, dict) and runs_k4c(str(step.get("run", ""))):
                hits.append(f"jobs.{job_id}.steps[{i}]")
    return {"file": tree.display(path), "system": "GitHub Actions", "runs_k4c": bool(hits), "where": ", ".join(hits)}


def _gitlab(tree: SourceTree, path: Path) -> dict[str, Any]:
    doc = _yaml(tree, path)
    if not isinstance(doc, dict):
        raise DataUnavailable(tree.display(path), "not a GitLab CI configuration: not a mapping")
    hits = []
    for name, job in doc.items():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            if any(runs_k4c(line) for line in _lines(job.get(key))):
                hits.append(f"{name}.{key}")
    return {"file": tree.display(path), "system": "GitLab CI", "runs_k4c": bool(hits), "where": ", ".join(hits)}


def _script(tree: SourceTree, path: Path) -> dict[str, Any]:
    text = tree.read_text(path)
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if runs_k4c(line)]
    return {"file": tree.display(path), "system": "script in .ci/", "runs_k4c": bool(lines),
            "where": ", ".join(f"line {n}" for n in lines)}


def collect(tree: SourceTree) -> list[dict[str, Any]]:
    """Every CI configuration of the tree: ``{"file", "system", "runs_k4c", "where"}``."""
    if tree.path.is_file():
        return []
    out = []
    for path in tree.files():
        rel = tree.relative(path)
        if rel.startswith(".github/workflows/") and path.suffix in (".yml", ".yaml") and rel.count("/") == 2:
            out.append(_github(tree, path))
        elif rel == ".gitlab-ci.yml":
            out.append(_gitlab(tree, path))
        elif rel.startswith(".ci/"):
            out.append(_script(tree, path))
    return out
