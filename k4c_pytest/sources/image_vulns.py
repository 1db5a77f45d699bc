"""Vulnerability reports of Trivy (``trivy image -f json``) and Grype (``grype -o json``).

k4c does not scan; it checks that a scanner's report exists for the very image it inspects
(matched by digest: the manifest digest in Trivy's ``Metadata.RepoDigests`` or Grype's
``source.target.manifestDigest``/``repoDigests``, or the config digest, Trivy's
``Metadata.ImageID`` and Grype's ``source.target.imageID``), that it is recent enough, and
what it found. A report for another digest of the same repository (the image was rebuilt
since the scan), a report older than the allowed age, or none at all for an image are data
k4c cannot rely on: :class:`~k4c_pytest.DataUnavailable`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import image_ref

SEVERITIES = ("negligible", "low", "medium", "high", "critical")
#: How far ahead of this machine's clock a report's or an image's time may be (clocks of the
#: scanner's or builder's machine and this one differ a little); further ahead is no real time.
CLOCK_SKEW = timedelta(minutes=5)
RANK = {s: i for i, s in enumerate(SEVERITIES)}
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Vulnerability:
    id: str
    package: str
    installed: str
    fixed: str
    #: lower case, one of SEVERITIES, or "unknown"
    severity: str

    @property
    def fixable(self) -> bool:
        return bool(self.fixed)

    def at_least(self, threshold: str) -> bool:
        # An unknown severity is never below a threshold: it might be critical.
        return self.severity not in RANK or RANK[self.severity] >= RANK[threshold]

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "package": self.package, "installed": self.installed,
                "fixed in": self.fixed or "-", "fixable": "yes" if self.fixable else "no"}


@dataclass
class VulnReport:
    path: Path
    tool: str
    created: datetime | None
    artifact: str
    digests: set[str] = field(default_factory=set)
    findings: list[Vulnerability] = field(default_factory=list)

    def age(self, now: datetime) -> timedelta | None:
        return now - self.created if self.created else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Go writes nanoseconds; Python's parser takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _digests(values: Any) -> set[str]:
    out: set[str] = set()
    for v in values if isinstance(values, list) else [values]:
        if isinstance(v, str):
            out.update(_DIGEST.findall(v))
    return out


def _trivy(doc: dict, path: Path) -> VulnReport:
    meta = doc.get("Metadata") or {}
    report = VulnReport(path, "trivy", _time(doc.get("CreatedAt")), str(doc.get("ArtifactName") or ""),
                        _digests(meta.get("RepoDigests")) | _digests(meta.get("ImageID")))
    for result in doc.get("Results") or []:
        for v in result.get("Vulnerabilities") or []:
            report.findings.append(Vulnerability(
                str(v.get("VulnerabilityID", "")), str(v.get("PkgName", "")), str(v.get("InstalledVersion", "")),
                str(v.get("FixedVersion") or ""), str(v.get("Severity", "unknown")).lower()))
    return report


def _grype(doc: dict, path: Path) -> VulnReport:
    target = ((doc.get("source") or {}).get("target") or {})
    target = target if isinstance(target, dict) else {}
    report = VulnReport(path, "grype", _time((doc.get("descriptor") or {}).get("timestamp")),
                        str(target.get("userInput") or ""),
                        _digests(target.get("manifestDigest")) | _digests(target.get("repoDigests"))
                        | _digests(target.get("imageID")))
    for m in doc.get("matches") or []:
        vuln, artifact = m.get("vulnerability") or {}, m.get("artifact") or {}
        fix = vuln.get("fix") or {}
        fixed = ", ".join(fix.get("versions") or []) if fix.get("state") == "fixed" else ""
        report.findings.append(Vulnerability(
            str(vuln.get("id", "")), str(artifact.get("name", "")), str(artifact.get("version", "")),
            fixed, str(vuln.get("severity", "unknown")).lower()))
    return report


def load(path: Path) -> VulnReport:
    """Parse one report; raises ValueError saying why it is not a Trivy or Grype JSON report."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(doc, dict) and "SchemaVersion" in doc and ("Results" in doc or "ArtifactName" in doc):
        return _trivy(doc, path)
    if isinstance(doc, dict) and "matches" in doc and "source" in doc:
        return _grype(doc, path)
    raise ValueError("not a Trivy (trivy image -f json) or Grype (grype -o json) report")


def _same_reference(artifact: str, reference: str | None) -> bool:
    """Whether a report's scanned reference is the image's (same repository and tag)."""
    if not artifact or not reference:
        return False
    try:
        a, b = image_ref.parse(artifact), image_ref.parse(reference)
    except image_ref.BadReference:
        return False
    return a.name == b.name and (a.tag or a.digest) == (b.tag or b.digest)


def report_for(reports: list[VulnReport], digests: list[str], reference: str | None, max_age: timedelta,
               now: datetime) -> VulnReport:
    """The report of an image known by ``digests`` (manifest, index, config); raises
    DataUnavailable when there is none, or it is too old."""
    wanted = set(digests)
    matching = [r for r in reports if r.digests & wanted]
    shown = digests[0]
    if not matching:
        stale = [r for r in reports if _same_reference(r.artifact, reference)]
        if stale:
            r = stale[0]
            raise DataUnavailable(f"vulnerability report {r.path}",
                                  f"it is for {r.artifact} digest {', '.join(sorted(r.digests)) or 'unknown'}, "
                                  f"not this image's {shown}: scan the image again")
        raise DataUnavailable("vulnerability reports",
                              f"none of the {len(reports)} --k4c-vuln-report files is for digest {shown}")
    # The newest report of the image is the one that counts.
    matching.sort(key=lambda r: r.created or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    report = matching[0]
    age = report.age(now)
    if age is None:
        raise DataUnavailable(f"vulnerability report {report.path}",
                              "it has no creation time (Trivy CreatedAt / Grype descriptor.timestamp), so its "
                              "age cannot be checked")
    if age < -CLOCK_SKEW:
        raise DataUnavailable(f"vulnerability report {report.path}",
                              f"it says it was written {report.created.isoformat(timespec='seconds')}, "
                              f"{_human(-age)} in the future, so its age cannot be checked")
    if age > max_age:
        raise DataUnavailable(f"vulnerability report {report.path}",
                              f"it was written {report.created.isoformat(timespec='seconds')}, {_human(age)} ago, "
                              f"older than --k4c-max-report-age {_human(max_age)}")
    return report


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 or seconds >= 10 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
