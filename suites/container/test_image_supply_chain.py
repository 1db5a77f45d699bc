"""Image supply chain: cosign signatures and scanner reports.

Benchmark ids as in :mod:`suites.container.test_images`; ``cis-k8s-1.10`` 5.5.1 is image
provenance.
"""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable

CIS_DOCKER = "cis-docker-1.7"
NSA = "nsa-cisa-1.2"


@pytest.mark.control(
    "K4C-IMG-008", title="Images are signed with the organisation's cosign key", severity="high",
    benchmarks={CIS_DOCKER: ["4.5", "4.12"], "cis-k8s-1.10": ["5.5.1"], "nist-ssdf-1.1": ["PS.2.1"]},
    remediation="Sign the image by digest in the pipeline that builds it (cosign sign --key <key> "
                "<image>@sha256:...) and enforce signatures at admission (policy-controller, Kyverno).")
def test_image_signed(image, evidence, image_policy):
    if not image_policy.cosign_key:
        raise NotApplicable("no --k4c-cosign-key: there is no key to verify signatures with")
    rows, offenders = [], []
    for v in image.variants():
        check = image.signature(v)
        rows.append(v.row(digest=v.digest, **check.row()))
        if not check.verified:
            offenders.append(rows[-1])
    evidence.note(f"Key: {image_policy.cosign_key}. A signature counts when its simple-signing payload verifies "
                  "with the key and names the image's manifest digest (or its index's).")
    evidence.table("Signature checks", rows)
    assert not offenders, f"{len(offenders)} platform images not validly signed: {offenders[0]['reason']}"


@pytest.mark.control(
    "K4C-IMG-009", title="No vulnerabilities at or above --k4c-vuln-severity in the image's scan report",
    severity="high", benchmarks={CIS_DOCKER: ["4.4"], NSA: ["image-scanning"], "nist-ssdf-1.1": ["RV.1.1"]},
    remediation="Rebuild the image on a patched base and upgrade the packages the report lists as fixable; "
                "scan it again (trivy image -f json / grype -o json) and pass the new report.")
def test_image_vulnerabilities(image, evidence, image_policy):
    if not image_policy.vuln_reports:
        raise NotApplicable("no --k4c-vuln-report: k4c does not scan images itself")
    threshold = image_policy.vuln_severity
    offenders = []
    for v in image.variants():
        report = image.vulnerability_report(v)
        evidence.note(f"{v.platform}: {report.tool} report {report.path}, written "
                      f"{report.created.isoformat(timespec='seconds')}, {len(report.findings)} findings in all.")
        offenders += [v.row(**f.row()) for f in report.findings if f.at_least(threshold)]
    fixable = sum(1 for o in offenders if o["fixable"] == "yes")
    evidence.table(f"Vulnerabilities of severity {threshold} or worse", offenders)
    assert not offenders, f"{len(offenders)} vulnerabilities of severity {threshold} or worse, {fixable} fixable"
