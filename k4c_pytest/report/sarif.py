"""SARIF 2.1.0 (``--k4c-sarif PATH``): every finding of a run, for code-scanning UIs.

- One rule per control: its id, its title as ``shortDescription``, its remediation as
  ``help``, its severity as the default level and as the ``security-severity`` property
  (the scale GitHub code scanning ranks by), its benchmark requirements as tags.
- One result per offender row of a FAILed control's evidence tables (its level from the row's
  ``severity`` column when it has one) (a WAIVED control's
  results carry the waiver as an external suppression). A row with ``file`` and ``line``
  columns (code findings) is located there; any other row is located at the control's test
  file, with a logical location naming the offender (``kind/namespace/name``, a URL, or the
  row's first value). A failed control without rows gets one result at its test file.
- An ERRORed control is a tool execution notification: k4c could not check it, which is not
  a finding about the target.

Everything comes from the run's records, whose evidence was redacted when it was recorded:
no Secret or ConfigMap value, env value or secret found in source can reach this file.
Attachments are not copied into SARIF at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Iterable
from urllib.parse import quote

import orjson
import pytest

from k4c_pytest import __version__
from k4c_pytest.outcomes import ERROR, FAIL, WAIVED

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: k4c severity -> (SARIF level, security-severity: GitHub reads >= 9 critical, >= 7 high, >= 4 medium).
SEVERITY = {"critical": ("error", "9.5"), "high": ("error", "8.0"), "medium": ("warning", "5.5"),
            "low": ("note", "3.0")}
_MAX_DESCRIBED = 6  # columns of a row quoted in a result's message


def check_path(value: str) -> Path:
    """The ``--k4c-sarif`` path, or a UsageError when its folder does not exist."""
    path = Path(value)
    if not path.parent.resolve().is_dir():
        raise pytest.UsageError(f"--k4c-sarif: {path.parent}: no such folder")
    if path.is_dir():
        raise pytest.UsageError(f"--k4c-sarif: {value} is a folder; give a file path such as k4c.sarif")
    return path


def _utc(iso: str | None) -> str | None:
    # SARIF readers expect UTC with a Z suffix.
    return iso.replace("+00:00", "Z") if iso else None


def _uri(path: str, root: Path | None) -> str:
    """A URI reference for a file: relative to the root when possible (what code-scanning UIs
    resolve against the checkout), else an absolute file URI."""
    p = Path(path)
    if p.is_absolute():
        if root is not None:
            try:
                return quote(p.relative_to(root).as_posix())
            except ValueError:
                pass
        return p.as_uri()
    return quote(PurePosixPath(*p.parts).as_posix() if p.parts else path)


def _test_file(record: dict[str, Any]) -> str:
    return record.get("nodeid", "").split("::", 1)[0] or "unknown"


def _physical(uri: str, line: Any = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    try:
        start = int(line)
    except (TypeError, ValueError):
        start = 0
    if start >= 1:
        loc["region"] = {"startLine": start}
    return loc


def _offender_name(row: dict[str, Any]) -> dict[str, str] | None:
    """A logical location naming a row's offender, or None when the row names none."""
    if row.get("name") and row.get("kind"):
        fqn = "/".join(str(row[k]) for k in ("kind", "namespace", "name") if row.get(k))
        return {"name": str(row["name"]), "fullyQualifiedName": fqn, "kind": "resource"}
    for key in ("url", "image", "host", "account", "tree", "resource", "subject"):
        if row.get(key):
            return {"name": str(row[key]), "kind": key}
    for value in row.values():
        if value not in (None, ""):
            return {"name": str(value), "kind": "object"}
    return None


def _describe(row: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in row.items() if v not in (None, "")]
    more = len(parts) - _MAX_DESCRIBED
    return ", ".join(parts[:_MAX_DESCRIBED]) + (f", ... ({more} more)" if more > 0 else "")


def _fingerprint(*parts: Any) -> str:
    data = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def _rows(record: dict[str, Any]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """(table, row as a dict) for every row of every evidence table of a record."""
    for item in record.get("evidence", []):
        if item.get("type") == "table":
            for values in item.get("rows", []):
                yield item, dict(zip(item.get("columns", []), values))


def _rule(record: dict[str, Any]) -> dict[str, Any]:
    level, score = SEVERITY.get(record.get("severity", ""), ("warning", "5.0"))
    refs = [f"{bench}:{req}" for bench, reqs in sorted(record.get("benchmarks", {}).items()) for req in reqs]
    rule: dict[str, Any] = {
        "id": record["id"],
        "shortDescription": {"text": record["title"]},
        "defaultConfiguration": {"level": level},
        "properties": {"security-severity": score, "severity": record.get("severity"),
                       "layer": record.get("layer"),
                       "tags": list(dict.fromkeys(["security", "compliance", record.get("layer") or "other", *refs])),
                       "benchmarks": record.get("benchmarks", {})},
    }
    if record.get("remediation"):
        rule["help"] = {"text": record["remediation"]}
    return rule


def _results(record: dict[str, Any], rule_index: int, root: Path | None) -> list[dict[str, Any]]:
    level = SEVERITY.get(record.get("severity", ""), ("warning",))[0]
    test_file = _uri(_test_file(record), root)
    reason = record.get("reason") or "the control failed"
    base: dict[str, Any] = {"ruleId": record["id"], "ruleIndex": rule_index, "level": level, "kind": "fail"}
    props = {"nodeid": record.get("nodeid"), "outcome": record.get("outcome")}
    if record.get("outcome") == WAIVED:
        # The record's reason is the justification; the finding it covers is kept with the waiver.
        waiver = record.get("waiver") or {}
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted",
                                       "justification": waiver.get("justification") or reason}
        details = {k: waiver[k] for k in ("entry", "owner", "expires", "resource", "host") if waiver.get(k)}
        if details:
            suppression["properties"] = details
        base["suppressions"] = [suppression]
        reason = waiver.get("finding") or reason
    out = []
    for table, row in _rows(record):
        if row.get("file"):
            location = {"physicalLocation": _physical(_uri(str(row["file"]), root), row.get("line"))}
        else:
            location = {"physicalLocation": _physical(test_file)}
            name = _offender_name(row)
            if name:
                location["logicalLocations"] = [name]
        result_props = {**props, "evidenceTable": table.get("title"), "offender": row}
        if table.get("truncated"):
            result_props["evidenceTotal"] = table.get("total")
        # Scanners grade each finding (bandit's HIGH/LOW, an advisory's severity): that grade
        # sets the result's level, the control's severity stays the rule's default.
        row_severity = str(row.get("severity") or "").lower()
        row_level = {"level": SEVERITY[row_severity][0]} if row_severity in SEVERITY else {}
        out.append({**base, **row_level,
                    "message": {"text": f"{record['title']}: {table.get('title')}: {_describe(row)}"},
                    "locations": [location],
                    "partialFingerprints": {"k4cOffender/v1": _fingerprint(record["id"], location, row)},
                    "properties": result_props})
    if not out:
        location = {"physicalLocation": _physical(test_file)}
        out.append({**base, "message": {"text": f"{record['title']}: {reason}"}, "locations": [location],
                    "partialFingerprints": {"k4cOffender/v1": _fingerprint(record["id"], record.get("nodeid"))},
                    "properties": props})
    return out


def sarif_log(records: list[dict[str, Any]], *, started_at: str | None = None, finished_at: str | None = None,
              exit_status: int | None = None, root: Path | None = None,
              totals: dict[str, int] | None = None) -> dict[str, Any]:
    """The SARIF log of a run's records (the ``records`` of :class:`k4c_pytest.run.Run`)."""
    records = sorted(records, key=lambda r: (r["id"], r.get("nodeid", "")))
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for record in records:
        if record["id"] not in index:
            index[record["id"]] = len(rules)
            rules.append(_rule(record))
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for record in records:
        outcome = record.get("outcome")
        if outcome in (FAIL, WAIVED):
            results += _results(record, index[record["id"]], root)
        elif outcome == ERROR:
            note: dict[str, Any] = {
                "level": "error",
                "message": {"text": f"{record['id']} could not be checked: {record.get('reason') or 'error'}"},
                "associatedRule": {"id": record["id"], "index": index[record["id"]]},
                "locations": [{"physicalLocation": _physical(_uri(_test_file(record), root))}],
                "properties": {"nodeid": record.get("nodeid"), "outcome": ERROR},
            }
            if record.get("started_at"):
                note["timeUtc"] = _utc(record["started_at"])
            notifications.append(note)
    invocation: dict[str, Any] = {"executionSuccessful": not notifications,
                                  "toolExecutionNotifications": notifications}
    if exit_status is not None:
        invocation["exitCode"] = int(exit_status)
    if started_at:
        invocation["startTimeUtc"] = _utc(started_at)
    if finished_at:
        invocation["endTimeUtc"] = _utc(finished_at)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "k4c", "version": __version__, "semanticVersion": __version__,
                            "rules": rules}},
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if totals is not None:
        run["properties"] = {"totals": totals}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(path: Path, run, root: Path | None = None) -> None:
    """Write the SARIF log of a finished :class:`k4c_pytest.run.Run`, atomically."""
    log = sarif_log(run.records, started_at=run.started_at, finished_at=run.finished_at,
                    exit_status=run.exit_status, root=root, totals=run.totals())
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(log, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
