"""The image side of the tests: real docker-registry processes on loopback (anonymous, basic
auth, bearer tokens), images built by k4c_pytest.testing.oci and pushed over the HTTP API,
cosign signatures made with keys generated here, and scanner reports written for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from k4c_pytest.testing import oci
from k4c_pytest.testing.registry import k4c_registry, k4c_registry_basic, k4c_registry_token  # noqa: F401

from image_helpers import IMAGE_SUITES, NOW, grype_report, run_k4c_subprocess, trivy_report


@dataclass
class Pushed:
    """What the session pushed to the anonymous registry: image label -> digest, keys, reports."""

    host: str
    refs: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    key_pem: Path | None = None
    reports: list[Path] = field(default_factory=list)

    def ref(self, name: str) -> str:
        return self.refs[name]


@pytest.fixture(scope="session")
def pushed(k4c_registry, tmp_path_factory) -> Pushed:  # noqa: F811
    folder = tmp_path_factory.mktemp("k4c-images")
    push = oci.Pusher(k4c_registry.url)
    out = Pushed(k4c_registry.host)
    key, pem = oci.cosign_keypair()
    other_key, _ = oci.cosign_keypair()
    out.key_pem = folder / "cosign.pub"
    out.key_pem.write_bytes(pem)
    host = k4c_registry.host

    images = {
        "good": oci.good_image(),
        "bad": oci.bad_image(created=NOW - timedelta(days=400)),
        # USER by name: resolved through the image's /etc/passwd (app is 10001), so it is non-root,
        # and then port 80 is a finding.
        "named": oci.good_image(user="app", ports=["80/tcp", "8443/tcp"]),
        "static": oci.image([[oci.File("app", b"\x7fELF", mode=0o755)]], user="65532"),
        "wrongkey": oci.good_image(labels={"variant": "wrongkey"}),
        "tampered": oci.good_image(labels={"variant": "tampered"}),
    }
    for name, img in images.items():
        out.digests[name] = push.push("app", name, img)
        out.refs[name] = f"{host}/app:{name}"
    ref = f"{host}/app"
    push.push("app", oci.signature_tag(out.digests["good"]), oci.cosign_signature(out.digests["good"], ref, key))
    push.push("app", oci.signature_tag(out.digests["wrongkey"]),
              oci.cosign_signature(out.digests["wrongkey"], ref, other_key))
    # The good image's valid signature, copied under the tampered image's tag: it verifies, but
    # names another digest.
    push.push("app", oci.signature_tag(out.digests["tampered"]), oci.cosign_signature(out.digests["good"], ref, key))
    out.refs["missing"] = f"{host}/app:not-pushed"

    cfg = {n: img.config.digest for n, img in images.items()}
    low = [{"VulnerabilityID": "CVE-2024-0001", "PkgName": "libc6", "InstalledVersion": "2.36-9",
            "Severity": "LOW"}]
    out.reports = [
        trivy_report(folder / "good.trivy.json", out.digests["good"], out.refs["good"], cfg["good"], low),
        grype_report(folder / "bad.grype.json", out.digests["bad"], out.refs["bad"], [
            {"vulnerability": {"id": "CVE-2024-9999", "severity": "Critical",
                               "fix": {"versions": ["3.0.13-1"], "state": "fixed"}},
             "artifact": {"name": "openssl", "version": "3.0.11-1", "type": "deb"}},
            {"vulnerability": {"id": "CVE-2024-8888", "severity": "High", "fix": {"versions": [], "state": "not-fixed"}},
             "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"}},
            {"vulnerability": {"id": "CVE-2024-7777", "severity": "Medium", "fix": {"state": "unknown"}},
             "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"}}]),
        # A scan of an earlier build of app:named: same repository, another digest.
        trivy_report(folder / "named-stale.trivy.json", "sha256:" + "0" * 64, out.refs["named"], "sha256:" + "1" * 64,
                     []),
        # The static image's own report, but a month old.
        trivy_report(folder / "static-old.trivy.json", out.digests["static"], f"{host}/other:static", cfg["static"],
                     [], created=NOW - timedelta(days=30)),
    ]
    return out


@pytest.fixture
def k4c_images(run_k4c):
    """Run the image suites: ``k4c_images("--k4c-image=...", k="signed")``."""

    def run(*args: str, k: str | None = None, paths=None):
        return run_k4c(*args, paths=paths or IMAGE_SUITES, k=k)

    return run


@pytest.fixture(scope="module")
def run_k4c_module(tmp_path_factory):
    """Run k4c in a subprocess (as a user does), for module-scoped fixtures: one run, many checks."""
    folder = tmp_path_factory.mktemp("k4c-run")
    return lambda *args, paths=None, k=None: run_k4c_subprocess(folder, *args, paths=paths or IMAGE_SUITES, k=k)
