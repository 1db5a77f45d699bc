#!/usr/bin/env python3
"""Regenerate the demo's OCI layout (k4c_pytest/demo/oci/): a good and a bad image, a cosign
signature of the good one, its public key, and a Trivy report per image.

    .venv/bin/python scripts/make-demo-images.py

Times are fixed so the layout only changes when the images do (the ECDSA signature differs
on every run). The demo passes generous --k4c-max-image-age/--k4c-max-report-age so that it
shows the same outcomes for years; the bad image's epoch-0 creation time fails regardless.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from k4c_pytest.testing import oci  # noqa: E402

OUT = REPO / "k4c_pytest" / "demo" / "oci"
BUILT = datetime(2026, 11, 1, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def trivy(path: Path, name: str, img: oci.Image, vulns: list[dict]) -> None:
    path.write_text(json.dumps({
        "SchemaVersion": 2, "CreatedAt": BUILT.isoformat().replace("+00:00", "Z"), "ArtifactName": name,
        "ArtifactType": "container_image",
        "Metadata": {"ImageID": img.config.digest, "RepoDigests": [f"{name.rsplit(':', 1)[0]}@{img.digest}"]},
        "Results": [{"Target": f"{name} (debian 12.2)", "Class": "os-pkgs", "Type": "debian",
                     "Vulnerabilities": vulns}]}, indent=1) + "\n")


def main() -> None:
    good = oci.good_image(created=BUILT, labels={"org.opencontainers.image.title": "k4c demo: good"})
    bad = oci.bad_image(created=EPOCH, labels={"org.opencontainers.image.title": "k4c demo: bad"})
    key, pem = oci.cosign_keypair()
    sig = oci.cosign_signature(good.digest, "demo.k4c.invalid/shop/good", key)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    oci.write_layout(OUT / "layout", {"demo.k4c.invalid/shop/good:1.0": good,
                                      "demo.k4c.invalid/shop/bad:1.0": bad,
                                      f"demo.k4c.invalid/shop/good:{oci.signature_tag(good.digest)}": sig})
    (OUT / "cosign.pub").write_bytes(pem)
    trivy(OUT / "good.trivy.json", "demo.k4c.invalid/shop/good:1.0", good, [
        {"VulnerabilityID": "CVE-2023-4911", "PkgName": "libc6", "InstalledVersion": "2.36-9",
         "FixedVersion": "2.36-9+deb12u3", "Severity": "LOW", "Title": "demo finding below the threshold"}])
    trivy(OUT / "bad.trivy.json", "demo.k4c.invalid/shop/bad:1.0", bad, [
        {"VulnerabilityID": "CVE-2023-5678", "PkgName": "openssl", "InstalledVersion": "3.0.11-1",
         "FixedVersion": "3.0.13-1", "Severity": "CRITICAL", "Title": "demo finding, fixable"},
        {"VulnerabilityID": "CVE-2024-0727", "PkgName": "openssl", "InstalledVersion": "3.0.11-1",
         "FixedVersion": "", "Severity": "HIGH", "Title": "demo finding, no fix yet"}])
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT.relative_to(REPO)} ({size} bytes)")


if __name__ == "__main__":
    main()
