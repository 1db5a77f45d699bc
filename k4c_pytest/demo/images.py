"""The container layer of ``k4c demo``: a bundled OCI layout, checked without any network.

``k4c_pytest/demo/oci/`` (made by ``scripts/make-demo-images.py``) holds two images, a good
one that passes every image control, signed with the bundled cosign key, and a bad one (root,
a canary AWS key in ENV and history, port 80, a setuid and world-writable files, epoch-0
creation time, unsigned, a critical fixable CVE in its Trivy report).
"""

from __future__ import annotations

from pathlib import Path

OCI = Path(__file__).resolve().parent / "oci"
LAYOUT = OCI / "layout"
#: The demo images were built on a fixed date; a generous age keeps the demo's outcomes stable.
DEMO_MAX_AGE = "1000w"


def demo_image_args() -> list[str]:
    """Extra pytest arguments that make a run check the bundled demo images (and not the images
    of the demo cluster's workloads, which would need the network)."""
    # The demo cluster's workloads name images of public registries: the demo stays offline.
    return ["--k4c-no-cluster-images", f"--k4c-image-layout={LAYOUT}", f"--k4c-cosign-key={OCI / 'cosign.pub'}",
            f"--k4c-vuln-report={OCI / 'good.trivy.json'}", f"--k4c-vuln-report={OCI / 'bad.trivy.json'}",
            f"--k4c-max-image-age={DEMO_MAX_AGE}", f"--k4c-max-report-age={DEMO_MAX_AGE}"]
