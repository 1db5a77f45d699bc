"""The image source's parsers on their own: references, layers with whiteouts, package
databases, secret scanning, scanner reports."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from image_helpers import grype_report, trivy_report
from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import image_ref, image_vulns
from k4c_pytest.sources.image_contents import Contents
from k4c_pytest.sources.image_registry import BlobStream, Credentials
from k4c_pytest.sources.image_secrets import scan_and_redact
from k4c_pytest.testing import oci


@pytest.mark.parametrize("text, expected", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("localhost/app", "localhost/app:latest"),
    ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:1.0"),
    ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io/org/app@sha256:" + "a" * 64),
    ("index.docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
])
def test_references_normalised(text, expected):
    assert str(image_ref.parse(text)) == expected


@pytest.mark.parametrize("text", ["", "UPPER/case", "app@sha256:short", "app:bad tag"])
def test_bad_references(text):
    with pytest.raises(image_ref.BadReference):
        image_ref.parse(text)


def _stream(files):
    data, _ = oci.layer(files)
    return BlobStream(io.BytesIO(data), oci.digest_of(data), "test layer")


def test_whiteouts_and_opaque_folders():
    c = Contents()
    c.add_layer(_stream([oci.File("etc/passwd", oci.PASSWD), oci.File("opt/tool/a", mode=0o4755),
                         oci.File("opt/tool/b"), oci.File("srv/x", mode=0o666), oci.File("srv/keep")]),
                oci.OCI_LAYER)
    c.add_layer(_stream([oci.File("srv/.wh.x"), oci.File("opt/tool/.wh..wh..opq"), oci.File("opt/tool/c")]),
                oci.OCI_LAYER)
    assert sorted(p for p in c.entries if p.startswith(("/srv", "/opt"))) == \
        ["/opt/tool/c", "/srv/keep"]
    assert c.setuid() == [] and c.world_writable() == []
    assert c.passwd() == {"root": 0, "app": 10001}


def test_layer_digest_checked():
    data, _ = oci.layer([oci.File("a")])
    with pytest.raises(DataUnavailable, match="does not match its digest"):
        Contents().add_layer(BlobStream(io.BytesIO(data), "sha256:" + "0" * 64, "layer"), oci.OCI_LAYER)


def test_package_databases():
    c = Contents()
    c.add_layer(_stream([oci.File("lib/apk/db/installed", oci.APK_INSTALLED),
                         oci.File("var/lib/dpkg/status", oci.DPKG_STATUS),
                         oci.File("var/lib/dpkg/status.d/tzdata", b"Package: tzdata\nVersion: 2024a\n")]),
                oci.OCI_LAYER)
    assert [(p.ecosystem, p.name, p.version) for p in c.packages()] == [
        ("apk", "musl", "1.2.4-r2"), ("apk", "busybox", "1.36.1-r5"),
        ("deb", "libc6", "2.36-9"), ("deb", "openssl", "3.0.11-1"), ("deb", "tzdata", "2024a")]


def test_secrets_found_by_type_and_every_env_value_redacted():
    doc = {"config": {"Env": ["PATH=/bin", f"AWS_ACCESS_KEY_ID={oci.CANARY_AWS_KEY}", "DB_PASSWORD=hunter2secret",
                              "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D"],
                      "Labels": {"maintainer": "team@example.com",
                                 "token": "ghp_aBcdefghijklmnopqrstuvwxyz0123456789"}},
           "history": [{"created_by": f"/bin/sh -c #(nop) ENV AWS_ACCESS_KEY_ID={oci.CANARY_AWS_KEY}"},
                       {"created_by": "ENV LANG=C.UTF-8"}]}
    redacted, findings = scan_and_redact(doc)
    assert [(f.location, f.type) for f in findings] == [
        ("config.Env[1] (AWS_ACCESS_KEY_ID)", "AWS Access Key"), ("config.Env[2] (DB_PASSWORD)", "Secret Keyword"),
        ("config.Labels['token']", "GitHub Token"), ("history[0].created_by", "AWS Access Key")]
    text = json.dumps(redacted)
    assert oci.CANARY_AWS_KEY not in text and "hunter2secret" not in text and "ghp_" not in text
    assert redacted["config"]["Labels"]["maintainer"] == "team@example.com"
    assert redacted["history"][1]["created_by"] == "ENV LANG=<redacted>"
    assert doc["config"]["Env"][1].endswith(oci.CANARY_AWS_KEY)  # the caller's copy is untouched


def test_trivy_nanosecond_times_and_severity_threshold(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"SchemaVersion": 2, "CreatedAt": "2026-11-20T10:11:12.123456789+01:00",
                                "ArtifactName": "app:1", "Metadata": {"ImageID": "sha256:" + "c" * 64},
                                "Results": [{"Vulnerabilities": [
                                    {"VulnerabilityID": "CVE-1", "Severity": "UNKNOWN"},
                                    {"VulnerabilityID": "CVE-2", "Severity": "MEDIUM", "FixedVersion": "2"}]}]}))
    report = image_vulns.load(path)
    assert report.created == datetime(2026, 11, 20, 9, 11, 12, 123456, tzinfo=timezone.utc)
    assert [v.id for v in report.findings if v.at_least("high")] == ["CVE-1"]  # unknown might be critical
    assert [v.id for v in report.findings if v.at_least("medium")] == ["CVE-1", "CVE-2"]
    now = report.created + timedelta(hours=1)
    assert image_vulns.report_for([report], ["sha256:" + "c" * 64], None, timedelta(days=1), now) is report
    with pytest.raises(DataUnavailable, match="older than --k4c-max-report-age 30m"):
        image_vulns.report_for([report], ["sha256:" + "c" * 64], None, timedelta(minutes=30), now)


def test_docker_config_credentials():
    import base64

    creds = Credentials({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "registry.example.com:5000": {"username": "u", "password": "p"}}})
    assert (creds.get("registry-1.docker.io").username, creds.get("docker.io").password) == ("hub", "pw")
    assert creds.get("registry.example.com:5000").basic() == "Basic " + base64.b64encode(b"u:p").decode()
    assert creds.get("other.example.com") is None


def test_report_without_a_time_or_from_the_future_is_unusable(tmp_path):
    digest = "sha256:" + "d" * 64
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    undated = image_vulns.load(trivy_report(tmp_path / "undated.json", digest, "app:1", digest, [], created=None))
    assert undated.created is None
    with pytest.raises(DataUnavailable, match=r"it has no creation time \(Trivy CreatedAt"):
        image_vulns.report_for([undated], [digest], None, timedelta(days=7), now)
    ahead = image_vulns.load(grype_report(tmp_path / "ahead.json", digest, "app:1", [],
                                          created=now + timedelta(days=2)))
    with pytest.raises(DataUnavailable, match="2d in the future, so its age cannot be checked"):
        image_vulns.report_for([ahead], [digest], None, timedelta(days=7), now)
    # a scanner whose clock is a little ahead of this one is no fault
    slightly = image_vulns.load(grype_report(tmp_path / "skew.json", digest, "app:1", [],
                                             created=now + image_vulns.CLOCK_SKEW - timedelta(seconds=1)))
    assert image_vulns.report_for([slightly], [digest], None, timedelta(days=7), now) is slightly
