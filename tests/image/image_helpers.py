"""Helpers of the image tests: the suites to run, k4c in a subprocess, reading its results."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from k4c_pytest.testing import oci

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUITES = [REPO_ROOT / "suites" / "container" / f for f in
                ("test_images.py", "test_image_contents.py", "test_image_supply_chain.py")]
IMG = [f"K4C-IMG-{n:03d}" for n in range(1, 10)]
_counter = itertools.count()
NOW = datetime.now(timezone.utc)


def _iso(created: datetime) -> str:
    return created.isoformat().replace("+00:00", "Z")


def trivy_report(path: Path, digest: str, repo_ref: str, config_digest: str, vulns: list[dict],
                 created: datetime | None = NOW) -> Path:
    """A ``trivy image -f json`` report of an image (``created`` None: without CreatedAt)."""
    name = repo_ref.rsplit(":", 1)[0]
    doc = {"SchemaVersion": 2, "ArtifactName": repo_ref, "ArtifactType": "container_image",
           "Metadata": {"ImageID": config_digest, "RepoDigests": [f"{name}@{digest}"],
                        # Trivy copies the whole config, ENV values included, into its report.
                        "ImageConfig": {"config": {"Env": [f"AWS_ACCESS_KEY_ID={oci.CANARY_AWS_KEY}"]}}},
           "Results": [{"Target": "debian", "Class": "os-pkgs", "Vulnerabilities": vulns}]}
    if created is not None:
        doc["CreatedAt"] = _iso(created)
    path.write_text(json.dumps(doc))
    return path


def grype_report(path: Path, digest: str, repo_ref: str, matches: list[dict],
                 created: datetime | None = NOW) -> Path:
    """A ``grype -o json`` report of an image (``created`` None: without descriptor.timestamp)."""
    descriptor = {"name": "grype", "version": "0.74.0"}
    if created is not None:
        descriptor["timestamp"] = _iso(created)
    path.write_text(json.dumps({
        "matches": matches,
        "source": {"type": "image", "target": {"userInput": repo_ref, "manifestDigest": digest,
                                               "repoDigests": [f"{repo_ref.rsplit(':', 1)[0]}@{digest}"]}},
        "descriptor": descriptor}))
    return path


@dataclass
class Result:
    ret: int
    stdout: str
    results: dict[str, Any]
    json_path: Path

    @property
    def controls(self) -> list[dict[str, Any]]:
        return self.results.get("controls", [])


def run_k4c_subprocess(folder: Path, *args: str, paths: list[Path], k: str | None = None) -> Result:
    n = next(_counter)
    json_path = folder / f"results-{n}.json"
    argv = [sys.executable, "-m", "pytest", *(str(p) for p in paths), *args, f"--k4c-json={json_path}",
            "-p", "no:cacheprovider", "-q", f"--rootdir={REPO_ROOT}"]
    if k:
        argv += ["-k", k]
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=600)
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    return Result(proc.returncode, proc.stdout + "\n" + proc.stderr, results, json_path)


def image_record(res, control_id: str, label: str) -> dict:
    found = [r for r in res.controls if r["id"] == control_id and r["nodeid"].endswith(f"[{label}]")]
    assert len(found) == 1, f"{control_id}[{label}]: {len(found)} records\n{res.stdout[-3000:]}"
    return found[0]


def image_outcome(res, control_id: str, label: str) -> str:
    return image_record(res, control_id, label)["outcome"]


def outcomes(res, label: str) -> dict[str, str]:
    return {c: image_outcome(res, c, label) for c in IMG}


def rows(res, control_id: str, label: str) -> list[dict[str, Any]]:
    return [dict(zip(e["columns"], r)) for e in image_record(res, control_id, label)["evidence"]
            if e["type"] == "table" for r in e["rows"]]
