"""Static analysis of a source tree: bandit for Python, semgrep (optional) with k4c's rule set.

Both run as their own command line with JSON output, in a child process, so a crash of the
scanner is an exit status and a message, not a crash of the pytest run. A file either tool
could not parse, or a scanner that failed, is a :class:`DataUnavailable` naming the file: the
controls ERROR rather than pass over code nobody analysed.

Findings keep file, line, rule, severity, confidence and the scanner's message, never the code
itself (bandit's ``code`` excerpt, semgrep's ``lines``): a hard-coded password would be in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from k4c_pytest.outcomes import DataUnavailable, NotApplicable
from k4c_pytest.sources.code_tree import SourceTree

SEVERITIES = ("low", "medium", "high", "critical")
SEMGREP_RULES = "code_semgrep_rules.yaml"
_CHUNK = 400  # files per scanner command line: well below ARG_MAX
_QUOTED = re.compile(r"""(['"]).*?\1""")
_TIMEOUT = 900


def rank(severity: str) -> int:
    """Order of a severity name (``unknown`` ranks highest: never treat it as harmless)."""
    severity = severity.lower()
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _scrub(message: str) -> str:
    # bandit quotes the literal it suspects ("Possible hardcoded password: 'hunter2'"):
    # a message may name the kind of problem, never the value.
    return _QUOTED.sub("'…'", message)


def _run(cmd: list[str], cwd: Path, what: str, display: str) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=_TIMEOUT, check=False,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    except subprocess.TimeoutExpired:
        raise DataUnavailable(display, f"{what} did not finish within {_TIMEOUT} s") from None
    except OSError as exc:
        raise DataUnavailable(display, f"{what} could not be started: {exc.strerror or exc}") from None
    out = proc.stdout.decode("utf-8", "replace")
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = err[-1] if err else f"no JSON output, exit status {proc.returncode}"
        raise DataUnavailable(display, f"{what} crashed (exit status {proc.returncode}): {_scrub(last)}") from None
    if not isinstance(data, dict):
        raise DataUnavailable(display, f"{what} wrote unexpected output (exit status {proc.returncode})")
    data["_returncode"] = proc.returncode
    return data


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def bandit(tree: SourceTree, command: list[str] | None = None) -> dict[str, Any]:
    """Run bandit on the tree's Python files: ``{"findings": [...], "files": n}``.

    Each finding: file, line, rule (``B602``), type (bandit's test name), severity and
    confidence (lower case), issue (bandit's message, quoted literals removed), cwe.
    ``# nosec`` comments are honoured, as bandit does. N/A when the tree has no Python file."""
    files = [tree.relative(p) for p in tree.glob("*.py", "*.pyw")]
    if not files:
        raise NotApplicable(f"{tree.given}: no Python files for bandit")
    cwd = tree.path.parent if tree.path.is_file() else tree.path
    findings: list[dict[str, Any]] = []
    for chunk in _chunks(files):
        cmd = [*(command or [sys.executable, "-m", "bandit"]), "-f", "json", "-q", "--", *chunk]
        data = _run(cmd, cwd, "bandit", tree.display(cwd))
        if data["_returncode"] not in (0, 1):
            raise DataUnavailable(tree.display(cwd), f"bandit failed with exit status {data['_returncode']}")
        errors = data.get("errors") or []
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
            raise DataUnavailable(tree.display(cwd / first.get("filename", "?")),
                                  f"bandit could not analyse it: {first.get('reason', 'error')}{more}")
        for r in data.get("results") or ():
            cwe = (r.get("issue_cwe") or {}).get("id")
            findings.append({
                "file": tree.display(cwd / r["filename"]), "line": r.get("line_number", 0),
                "rule": r.get("test_id", ""), "type": r.get("test_name", ""),
                "severity": str(r.get("issue_severity", "undefined")).lower(),
                "confidence": str(r.get("issue_confidence", "undefined")).lower(),
                "issue": _scrub(str(r.get("issue_text", ""))), "cwe": f"CWE-{cwe}" if cwe else "",
                "tool": "bandit",
            })
    findings.sort(key=lambda f: (f["file"], f["line"], f["rule"]))
    return {"findings": findings, "files": len(files)}


def semgrep_command() -> list[str] | None:
    """The semgrep command line to use, or None when semgrep is not installed.

    ``K4C_SEMGREP`` (a path) comes first: semgrep's pinned dependencies clash with the project's,
    so it usually lives in a virtualenv of its own (scripts/install-semgrep.sh). A K4C_SEMGREP
    that does not exist is kept as it is: asked for and missing is an ERROR, not an N/A."""
    explicit = os.environ.get("K4C_SEMGREP")
    if explicit:
        return [explicit]
    exe = shutil.which("semgrep") or shutil.which("semgrep", path=str(Path(sys.executable).parent))
    return [exe] if exe else None


def _semgrep_error_type(err: dict[str, Any]) -> str:
    # semgrep writes some error types as a list: ["PartialParsing", [locations]]
    kind = err.get("type", "error")
    return str(kind[0] if isinstance(kind, list) and kind else kind)


_SEMGREP_SEVERITY = {"error": "high", "warning": "medium", "info": "low", "critical": "critical", "high": "high",
                     "medium": "medium", "low": "low", "inventory": "low", "experiment": "low"}


def semgrep(tree: SourceTree, command: list[str] | None = None, rules: Path | None = None) -> dict[str, Any]:
    """Run semgrep with k4c's shipped rule set (or ``rules``): ``{"findings": [...], "files": n}``.

    N/A when semgrep is not installed (it is an optional extra, best in a virtualenv of its own:
    scripts/install-semgrep.sh). Every entry of semgrep's ``errors`` is a DataUnavailable."""
    command = command or semgrep_command()
    if command is None:
        raise NotApplicable("semgrep is not installed (scripts/install-semgrep.sh puts it in a virtualenv of its "
                            "own; then --k4c-semgrep PATH or K4C_SEMGREP)")
    files = [tree.relative(p) for p in tree.files()]
    cwd = tree.path.parent if tree.path.is_file() else tree.path
    findings: list[dict[str, Any]] = []
    with resources.as_file(resources.files("k4c_pytest.sources").joinpath(SEMGREP_RULES)) as shipped:
        config = str(rules or shipped)
        for chunk in _chunks(files):
            cmd = [*command, "scan", "--config", config, "--json", "--metrics=off", "--disable-version-check",
                   "--quiet", "--no-git-ignore", "--", *chunk]
            data = _run(cmd, cwd, "semgrep", tree.display(cwd))
            for err in data.get("errors") or ():
                # Every error counts, warnings too: semgrep reports a file it could not parse
                # (or parsed only in part, or gave up on after a timeout) at level "warn" and
                # exits 0, and its findings there would silently be missing.
                span = (err.get("spans") or [{}])[0]
                where = err.get("path") or span.get("file") or ""
                line = (span.get("start") or {}).get("line")
                at = f" (line {line})" if where and isinstance(line, int) and line > 0 else ""
                # never semgrep's message: it quotes the code it could not parse
                raise DataUnavailable(tree.display(cwd / where) if where else config,
                                      f"semgrep could not analyse it: {_semgrep_error_type(err)}{at}")
            if data["_returncode"] not in (0, 1):
                raise DataUnavailable(tree.display(cwd), f"semgrep failed with exit status {data['_returncode']}")
            for r in data.get("results") or ():
                extra = r.get("extra") or {}
                findings.append({
                    "file": tree.display(cwd / r.get("path", "")), "line": (r.get("start") or {}).get("line", 0),
                    "rule": str(r.get("check_id", "")).rsplit(".", 1)[-1], "type": "semgrep",
                    "severity": _SEMGREP_SEVERITY.get(str(extra.get("severity", "")).lower(), "unknown"),
                    "confidence": str((extra.get("metadata") or {}).get("confidence", "")).lower(),
                    "issue": _scrub(str(extra.get("message", ""))), "cwe": "", "tool": "semgrep",
                })
    findings.sort(key=lambda f: (f["file"], f["line"], f["rule"]))
    return {"findings": findings, "files": len(files)}
