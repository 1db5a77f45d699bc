"""Image contents: what is installed, setuid/setgid files, world-writable paths.

These controls read the image's layers (streamed, each checked against its digest, under
``--k4c-max-layer-size``), so they are the slow ones of the image suite. Benchmark ids as in
:mod:`suites.container.test_images`.
"""

from __future__ import annotations

import pytest

CIS_DOCKER = "cis-docker-1.7"
NSA = "nsa-cisa-1.2"


@pytest.mark.control(
    "K4C-IMG-005", title="The image's installed packages can be inventoried", severity="low",
    benchmarks={CIS_DOCKER: ["4.3"], "nist-ssdf-1.1": ["PS.3.2"], NSA: ["image-scanning"]},
    remediation="Install software through a package manager whose database stays in the image (dpkg, apk, "
                "pip), or ship an SBOM; an image nobody can inventory cannot be scanned for vulnerabilities.")
def test_image_packages_inventoried(image, evidence):
    offenders = []
    for v in image.variants():
        contents = v.contents()
        packages = contents.packages()
        evidence.table(f"Packages of {image.label} ({v.platform})", [p.row() for p in packages])
        if not packages:
            offenders.append(v.row(reason="no dpkg status, apk database or Python dist-info in the image"))
    evidence.note("Package databases read: /var/lib/dpkg/status and status.d/, /lib/apk/db/installed, "
                  "*/site-packages/*.dist-info/METADATA and dist-packages.")
    evidence.table("Images without any package inventory", offenders)
    assert not offenders, f"{len(offenders)} platform images have no package database to inventory"


@pytest.mark.control(
    "K4C-IMG-006", title="No setuid or setgid files in images", severity="medium",
    benchmarks={CIS_DOCKER: ["4.8"], NSA: ["non-root-containers"]},
    remediation="Remove the setuid/setgid bits in the Dockerfile (RUN find / -xdev -perm /6000 -type f "
                "-exec chmod a-s {} +) or remove the binaries; also set allowPrivilegeEscalation: false.")
def test_image_no_setuid_files(image, evidence):
    offenders = [v.row(**e.row()) for v in image.variants() for e in v.contents().setuid()]
    evidence.table("Setuid and setgid files", offenders)
    assert not offenders, f"{len(offenders)} setuid/setgid files ({offenders[0]['path']})"


@pytest.mark.control(
    "K4C-IMG-007", title="No world-writable files or folders in images", severity="medium",
    benchmarks={CIS_DOCKER: ["4.8"]},
    remediation="chmod o-w the paths in the Dockerfile; a shared scratch folder needs the sticky bit "
                "(chmod 1777), as /tmp has.")
def test_image_no_world_writable_files(image, evidence):
    offenders = [v.row(**e.row()) for v in image.variants() for e in v.contents().world_writable()]
    evidence.note("Folders with the sticky bit (/tmp) and symbolic links are not counted.")
    evidence.table("World-writable paths", offenders)
    assert not offenders, f"{len(offenders)} world-writable paths ({offenders[0]['path']})"
