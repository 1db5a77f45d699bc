"""OSV range evaluation per ecosystem, advisory loading, and pip-audit / Trivy reports."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_osv import OsvDatabase, in_range, parse_version, read_report


def affected(eco: str, version: str, events: list[dict]) -> bool:
    return in_range(eco, parse_version(eco, version), events)


@pytest.mark.parametrize("version, expected", [
    ("0.9", False), ("1.0", True), ("1.4.9", True), ("1.5", False), ("1.7", False),
    ("2.0", True), ("2.2.post1", True), ("2.3", False), ("2.3rc1", True), ("1.5.dev0", True), ("1.0a1", False),
])
def test_pypi_ranges_use_pep440_ordering(version, expected):
    # two affected windows in one range, listed out of order: sorting them is the evaluator's job
    events = [{"fixed": "2.3"}, {"introduced": "1.0"}, {"introduced": "2.0"}, {"fixed": "1.5"}]
    assert affected("PyPI", version, events) is expected


@pytest.mark.parametrize("version, expected", [
    ("1.0.0-alpha", True), ("1.0.0", True), ("1.2.3", True), ("1.2.4-alpha", True), ("1.2.4-rc.1", False), ("1.2.4", False),
    ("v1.2.3", True), ("10.0.0", False),
])
def test_npm_ranges_use_semver_ordering_and_last_affected(version, expected):
    # "1.10" must not sort before "1.9" as text would; prereleases come before their release
    assert affected("npm", version, [{"introduced": "0"}, {"last_affected": "1.2.4-beta"}]) is expected


@pytest.mark.parametrize("version, expected", [
    ("v0.3.7", True), ("v0.3.8", False), ("v0.10.0", False), ("v0.0.0-20210101000000-abcdefabcdef", True),
    ("v2.0.0+incompatible", True),
])
def test_go_versions_drop_v_and_compare_as_semver(version, expected):
    events = [{"introduced": "0"}, {"fixed": "0.3.8"}, {"introduced": "2.0.0"}]
    assert affected("Go", version, events) is expected


def test_limit_ends_the_range():
    assert affected("npm", "1.5.0", [{"introduced": "1.0.0"}, {"limit": "2.0.0"}]) is True
    assert affected("npm", "2.0.0", [{"introduced": "1.0.0"}, {"limit": "2.0.0"}]) is False


@pytest.mark.parametrize("version, expected", [
    ("0.1.0", True), ("1.9.9", True), ("2.0.0", False), ("2.5.0", False), ("3.0.0", False), ("3.5.0", False),
])
def test_limit_bounds_the_whole_range_not_only_the_timeline(version, expected):
    # an "introduced" after the limit does not reopen the range: a limit is no "fixed" event
    events = [{"introduced": "0"}, {"limit": "2.0.0"}, {"introduced": "3.0.0"}]
    assert affected("npm", version, events) is expected


@pytest.mark.parametrize("eco, version, expected", [
    ("PyPI", "2.5", True), ("PyPI", "3.5", False), ("Go", "v2.5.0", True), ("Go", "v3.5.0", False),
])
def test_any_limit_above_the_version_keeps_it_in_range(eco, version, expected):
    # several limits: below any one of them is inside; the timeline still decides
    v = (lambda t: t) if eco == "PyPI" else (lambda t: t + ".0")
    events = [{"introduced": v("1.0")}, {"limit": v("2.0")}, {"limit": v("3.0")}]
    assert affected(eco, version, events) is expected


def test_star_limit_is_infinity_and_timeline_still_decides():
    assert affected("npm", "9.0.0", [{"introduced": "1.0.0"}, {"limit": "*"}]) is True
    assert affected("npm", "1.5.0", [{"introduced": "1.0.0"}, {"fixed": "1.2.0"}, {"limit": "*"}]) is False
    assert affected("npm", "0.5.0", [{"introduced": "1.0.0"}, {"limit": "2.0.0"}]) is False


def _write(folder: Path, adv: dict) -> None:
    (folder / f"{adv['id']}.json").write_text(json.dumps(adv))


def _dep(eco: str, name: str, version: str | None) -> dict:
    return {"file": "requirements.txt", "line": 3, "ecosystem": eco, "name": name, "version": version}


def test_database_matches_versions_lists_normalised_names_and_skips_withdrawn(tmp_path):
    _write(tmp_path, {"id": "A-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "Foo_Bar"},
                                                 "versions": ["1.0.post1"]}]})
    _write(tmp_path, {"id": "A-2", "withdrawn": "2024-01-01T00:00:00Z",
                      "affected": [{"package": {"ecosystem": "PyPI", "name": "foo-bar"},
                                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
    _write(tmp_path, {"id": "A-3", "affected": [{"package": {"ecosystem": "Debian:12", "name": "foo-bar"},
                                                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
    db = OsvDatabase(tmp_path)
    assert db.count == 2
    hits = db.match([_dep("PyPI", "foo-bar", "1.0.post1"), _dep("PyPI", "foo-bar", "1.0"),
                     _dep("PyPI", "foo-bar", None)])
    assert [(h["rule"], h["version"], h["severity"]) for h in hits] == [("A-1", "1.0.post1", "unknown")]


def test_database_reads_osv_dev_zip_archives(tmp_path):
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as zf:
        zf.writestr("GHSA-x.json", json.dumps({
            "id": "GHSA-x", "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:L/I:N/A:N"}]}))
    hits = OsvDatabase(tmp_path).match([_dep("npm", "lodash", "4.17.21")])
    assert [(h["rule"], h["severity"]) for h in hits] == [("GHSA-x", "low")]


def test_unparseable_version_in_an_advisory_errors_naming_it(tmp_path):
    _write(tmp_path, {"id": "B-1", "affected": [{"package": {"ecosystem": "npm", "name": "x"},
                                                 "ranges": [{"type": "SEMVER", "events": [{"introduced": "one"}]}]}]})
    with pytest.raises(DataUnavailable) as exc:
        OsvDatabase(tmp_path).match([_dep("npm", "x", "1.0.0")])
    assert exc.value.source == str(tmp_path / "B-1.json")


def test_pip_audit_report_is_located_through_the_tree(tmp_path):
    report = tmp_path / "pip-audit.json"
    report.write_text(json.dumps({"dependencies": [
        {"name": "PyYAML", "version": "5.3.1", "vulns": [{"id": "PYSEC-2021-142", "fix_versions": ["5.4"],
                                                          "aliases": ["CVE-2020-14343"]}]},
        {"name": "idna", "version": "3.10", "vulns": []}]}))
    hits = read_report(report, [{"file": "app/requirements.txt", "line": 7, "ecosystem": "PyPI", "name": "pyyaml",
                                 "version": "5.3.1"}])
    assert hits == [{"file": "app/requirements.txt", "line": 7, "rule": "PYSEC-2021-142", "severity": "unknown",
                     "ecosystem": "PyPI", "package": "pyyaml", "version": "5.3.1", "fixed": "5.4",
                     "aliases": "CVE-2020-14343", "source": "pip-audit"}]


def test_trivy_fs_report(tmp_path):
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": ".", "Results": [
        {"Target": "web/package-lock.json", "Type": "npm", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2021-23337", "PkgName": "lodash", "InstalledVersion": "4.17.20",
             "FixedVersion": "4.17.21", "Severity": "HIGH"}]}]}))
    hits = read_report(report, [])
    assert [(h["file"], h["rule"], h["severity"], h["source"]) for h in hits] == [
        ("web/package-lock.json", "CVE-2021-23337", "high", "trivy")]


@pytest.mark.parametrize("content", ['{"results": []}', "not json"])
def test_unknown_report_errors(tmp_path, content):
    report = tmp_path / "r.json"
    report.write_text(content)
    with pytest.raises(DataUnavailable) as exc:
        read_report(report, [])
    assert exc.value.source == str(report)


def test_dependency_report_option_end_to_end(k4c_code, tmp_path):
    from code_fixtures import DATA

    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "Results": [{"Target": "requirements.txt", "Type": "pip",
        "Vulnerabilities": [{"VulnerabilityID": "CVE-2020-14343", "PkgName": "PyYAML", "InstalledVersion": "5.3.1",
                             "Severity": "MEDIUM"}]}]}))
    args = (f"--k4c-dependency-report={report}",)
    assert k4c_code(DATA / "bad", args=args, k="vulnerable").outcomes()["K4C-CODE-DEP-001"] == "PASS"
    res = k4c_code(DATA / "bad", args=(*args, "--k4c-dependency-severity=medium"), k="vulnerable")
    assert res.outcomes()["K4C-CODE-DEP-001"] == "FAIL"
    assert [(r["file"], r["line"], r["rule"]) for r in res.offenders("K4C-CODE-DEP-001")] == [
        (f"{DATA}/bad/requirements.txt", 2, "CVE-2020-14343")]
