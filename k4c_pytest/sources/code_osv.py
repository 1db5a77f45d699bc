"""Known vulnerabilities of dependencies: an offline OSV advisory folder, or scanner reports.

**OSV folder** (``--k4c-osv-db DIR``): OSV JSON files as osv.dev publishes them, one advisory
per ``*.json`` file, or the per-ecosystem ``all.zip`` archives, anywhere below DIR. Ranges are
evaluated as the OSV schema says: a version at or above every ``limit`` of a range is outside
it (``limit`` bounds the whole range, it is no event of the timeline; ``"*"`` is infinity); then
the other events sorted by version, ``introduced`` turns "affected" on, ``fixed`` turns it off at
that version, ``last_affected`` after it; versions compared with the ecosystem's own ordering (PEP 440 via ``packaging`` for PyPI,
Semantic Versioning 2.0 via ``semver`` for npm and Go, Go's leading ``v`` dropped). The
``versions`` list of an advisory counts too. Withdrawn advisories are ignored.

**Reports** (``--k4c-dependency-report FILE``): the JSON of ``pip-audit -f json`` or
``trivy fs --format json``, detected by shape.

Severity: the advisory's own label (GitHub's ``database_specific.severity``), else the highest
CVSS base score of its ``severity`` vectors, else ``unknown``, which counts as above any
threshold: an unrated vulnerability is never taken for a harmless one.
"""

from __future__ import annotations

import json
import zipfile
from functools import cmp_to_key
from pathlib import Path
from typing import Any, Iterable

import semver
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from k4c_pytest.outcomes import DataUnavailable

ECOSYSTEMS = ("PyPI", "npm", "Go")


# -- versions -----------------------------------------------------------------------------------

class _Zero:
    """OSV's ``introduced: "0"``: before every version."""


ZERO = _Zero()


def parse_version(ecosystem: str, text: str):
    """A comparable version of ``ecosystem``; ValueError when it is not one."""
    if text == "0":
        return ZERO
    if ecosystem == "PyPI":
        try:
            return Version(text)
        except InvalidVersion as exc:
            raise ValueError(str(exc)) from None
    if ecosystem in ("npm", "Go"):
        text = text.removeprefix("v") if ecosystem == "Go" else text.strip().removeprefix("=").removeprefix("v")
        return semver.Version.parse(text)
    raise ValueError(f"ecosystem {ecosystem} is not supported")


def _cmp(a, b) -> int:
    if a is ZERO or b is ZERO:
        return (a is not ZERO) - (b is not ZERO)
    return (a > b) - (a < b)


def _lt(a, b) -> bool:
    return _cmp(a, b) < 0


def in_range(ecosystem: str, version, events: list[dict[str, str]]) -> bool:
    """Whether parsed ``version`` is affected by one OSV range's ``events`` (the schema's algorithm).

    ``limit`` events are not part of the timeline: they bound the whole range from above. A version
    is in the range only when it is below at least one limit (no limit: an implicit ``"*"``, i.e.
    infinity; a limit containing ``*`` is infinity too), and then the timeline of ``introduced``,
    ``fixed`` and ``last_affected`` events decides."""
    parsed = []
    limits = []
    for e in events:
        kind = next((k for k in ("introduced", "fixed", "last_affected", "limit") if k in e), None)
        if kind == "limit":
            text = str(e[kind])
            limits.append(None if "*" in text else parse_version(ecosystem, text))
        elif kind is not None:
            parsed.append((parse_version(ecosystem, str(e[kind])), kind))
    if limits and not any(at is None or _lt(version, at) for at in limits):
        return False
    # Sorted by version; at one version "introduced" comes before the events ending a range.
    order = {"introduced": 0, "last_affected": 1, "fixed": 1}
    parsed.sort(key=cmp_to_key(lambda x, y: _cmp(x[0], y[0]) or order.get(x[1], 2) - order.get(y[1], 2)))
    affected = False
    for at, kind in parsed:
        if kind == "introduced" and not _lt(version, at):
            affected = True
        elif kind == "fixed" and not _lt(version, at):
            affected = False
        elif kind == "last_affected" and _lt(at, version):
            affected = False
    return affected


# -- advisories ---------------------------------------------------------------------------------

def _severity(adv: dict[str, Any], affected: dict[str, Any]) -> str:
    label = ((affected.get("ecosystem_specific") or {}).get("severity")
             or (adv.get("database_specific") or {}).get("severity"))
    if isinstance(label, str) and label.strip():
        label = label.strip().lower()
        return {"moderate": "medium", "important": "high"}.get(label, label)
    best = None
    for s in (affected.get("severity") or []) + (adv.get("severity") or []):
        score = _cvss_score(str(s.get("type", "")), str(s.get("score", "")))
        if score is not None and (best is None or score > best):
            best = score
    if best is None:
        return "unknown"
    return "critical" if best >= 9.0 else "high" if best >= 7.0 else "medium" if best >= 4.0 else "low" \
        if best > 0 else "none"


def _cvss_score(kind: str, vector: str) -> float | None:
    try:
        import cvss

        if kind == "CVSS_V3" or vector.startswith("CVSS:3"):
            return float(cvss.CVSS3(vector).base_score)
        if kind == "CVSS_V4" or vector.startswith("CVSS:4"):
            return float(cvss.CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(cvss.CVSS2(vector).base_score)
    except Exception:  # an unparseable vector is an unrated advisory ("unknown"), which fails safe
        return None
    return None


def _fixed(affected: dict[str, Any]) -> str:
    return ", ".join(e["fixed"] for r in affected.get("ranges") or () for e in r.get("events") or () if "fixed" in e)


def _key(ecosystem: str, name: str) -> tuple[str, str]:
    return ecosystem, canonicalize_name(name) if ecosystem == "PyPI" else name


class OsvDatabase:
    """The advisories of an OSV folder, indexed by (ecosystem, package name)."""

    def __init__(self, root: Path):
        self.root = root
        self.count = 0
        self.files = 0
        self._by_package: dict[tuple[str, str], list[tuple[dict, dict, str]]] = {}
        self._load()

    def _add(self, adv: Any, origin: str) -> None:
        if not isinstance(adv, dict) or "id" not in adv or not isinstance(adv.get("affected", []), list):
            raise DataUnavailable(origin, "not an OSV advisory: no id or no affected list")
        if adv.get("withdrawn"):
            return
        self.count += 1
        for aff in adv.get("affected") or ():
            pkg = aff.get("package") or {}
            eco = str(pkg.get("ecosystem", "")).split(":")[0]
            if eco in ECOSYSTEMS and pkg.get("name"):
                self._by_package.setdefault(_key(eco, pkg["name"]), []).append((adv, aff, origin))

    def _load(self) -> None:
        files = sorted(self.root.rglob("*.json")) + sorted(self.root.rglob("*.zip"))
        self.files = len(files)
        for path in files:
            try:
                if path.suffix == ".zip":
                    with zipfile.ZipFile(path) as zf:
                        for member in zf.namelist():
                            if member.endswith(".json"):
                                self._add(json.loads(zf.read(member)), f"{path}!{member}")
                    continue
                self._add(json.loads(path.read_bytes()), str(path))
            except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataUnavailable(str(path), f"cannot read the OSV advisory: {exc}") from None

    def match(self, deps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """One finding per (dependency, advisory) that affects the dependency's pinned version."""
        out = []
        for dep in deps:
            if not dep.get("version") or dep["ecosystem"] not in ECOSYSTEMS:
                continue
            candidates = self._by_package.get(_key(dep["ecosystem"], dep["name"]), ())
            if not candidates:
                continue
            try:
                version = parse_version(dep["ecosystem"], dep["version"])
            except ValueError as exc:
                raise DataUnavailable(f"{dep['file']}:{dep['line']}", f"{dep['name']} version {dep['version']!r} "
                                      f"cannot be compared with advisories: {exc}") from None
            for adv, aff, origin in candidates:
                try:
                    hit = any(in_range(dep["ecosystem"], version, r.get("events") or [])
                              for r in aff.get("ranges") or () if r.get("type") in ("ECOSYSTEM", "SEMVER"))
                    hit = hit or any(_cmp(parse_version(dep["ecosystem"], v), version) == 0
                                     for v in aff.get("versions") or ())
                except ValueError as exc:
                    raise DataUnavailable(origin, f"{adv['id']}: a version cannot be parsed: {exc}") from None
                if hit:
                    out.append(finding(dep, adv["id"], _severity(adv, aff), _fixed(aff), adv.get("aliases") or []))
        return out


def finding(dep: dict[str, Any], advisory: str, severity: str, fixed: str, aliases: list[str],
            source: str = "osv") -> dict[str, Any]:
    return {"file": dep["file"], "line": dep["line"], "rule": advisory, "severity": severity,
            "ecosystem": dep["ecosystem"], "package": dep["name"], "version": dep["version"],
            "fixed": fixed or "-", "aliases": ", ".join(aliases), "source": source}


# -- scanner reports ----------------------------------------------------------------------------

def _trivy_severity(s: Any) -> str:
    s = str(s or "unknown").lower()
    return s if s in ("low", "medium", "high", "critical") else "unknown"


def read_report(path: Path, deps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings of a pip-audit or Trivy fs JSON report. ``deps`` (from the tree) locate each
    package in a requirement file when the report does not say where it came from."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataUnavailable(str(path), f"cannot read the report: {exc}") from None
    where = {_key(d["ecosystem"], d["name"]): d for d in deps}
    out = []
    if isinstance(data, dict) and isinstance(data.get("dependencies"), list):  # pip-audit
        for d in data["dependencies"]:
            if "skip_reason" in d:
                raise DataUnavailable(str(path), f"pip-audit skipped {d.get('name')}: {d['skip_reason']}")
            loc = where.get(_key("PyPI", d.get("name", ""))) or {"file": str(path), "line": 1}
            dep = {**loc, "ecosystem": "PyPI", "name": canonicalize_name(d.get("name", "")), "version": d.get("version")}
            for v in d.get("vulns") or ():
                # pip-audit's JSON carries no severity: "unknown", which fails safe.
                out.append(finding(dep, v.get("id", "?"), "unknown", ", ".join(v.get("fix_versions") or []),
                                   v.get("aliases") or [], source="pip-audit"))
        return out
    if isinstance(data, dict) and isinstance(data.get("Results", []), list) and \
            ("SchemaVersion" in data or "ArtifactName" in data):  # trivy
        for res in data.get("Results") or ():
            eco = {"pip": "PyPI", "pipenv": "PyPI", "poetry": "PyPI", "npm": "npm", "gomod": "Go"}.get(
                str(res.get("Type", "")), str(res.get("Type", "")))
            for v in res.get("Vulnerabilities") or ():
                loc = where.get(_key(eco, v.get("PkgName", ""))) or {"file": res.get("Target", str(path)), "line": 1}
                dep = {**loc, "ecosystem": eco, "name": v.get("PkgName", ""), "version": v.get("InstalledVersion")}
                out.append(finding(dep, v.get("VulnerabilityID", "?"), _trivy_severity(v.get("Severity")),
                                   v.get("FixedVersion", ""), [], source="trivy"))
        return out
    raise DataUnavailable(str(path), "neither a pip-audit (-f json) nor a trivy fs (--format json) report")
