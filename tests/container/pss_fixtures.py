"""Kubernetes' own Pod Security Standards fixtures (k8s.io/pod-security-admission, test/testdata)
and what the container suite's Pod Security controls must make of them.

``make test-deps`` (scripts/fetch-pss-fixtures.sh) puts the module in the Go module cache;
here it is only looked up (``GOPROXY=off``), never downloaded.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from k4c_pytest.testing.controlplane import K8S_VERSION

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "container"
PSS_FILES = [SUITE / "test_pod_security_baseline.py", SUITE / "test_pod_security_restricted.py"]
LEVELS = ("baseline", "restricted")

#: the admission's check ids, as the fixture files are named (lower case), -> the pss requirement
CHECKS = {
    "privileged": "baseline:privileged",
    "windowshostprocess": "baseline:windowsHostProcess",
    "hostnamespaces": "baseline:hostNamespaces",
    "hostpathvolumes": "baseline:hostPathVolumes",
    "hostports": "baseline:hostPorts",
    "hostprobesandhostlifecycle": "baseline:hostProbesAndHostLifecycle",
    "capabilities_baseline": "baseline:capabilities",
    "apparmorprofile": "baseline:appArmorProfile",
    "selinuxoptions": "baseline:seLinuxOptions",
    "procmount": "baseline:procMount",
    "seccompprofile_baseline": "baseline:seccompProfile",
    "sysctls": "baseline:sysctls",
    "restrictedvolumes": "restricted:restrictedVolumes",
    "allowprivilegeescalation": "restricted:allowPrivilegeEscalation",
    "runasnonroot": "restricted:runAsNonRoot",
    "runasuser": "restricted:runAsUser",
    "seccompprofile_restricted": "restricted:seccompProfile",
    "capabilities_restricted": "restricted:capabilities",
    "procmount_restricted": "restricted:procMount",
}
#: the baseline checks the restricted level replaces with a stricter one (OverrideCheckIDs)
OVERRIDES = {
    "baseline:capabilities": "restricted:capabilities",
    "baseline:seccompProfile": "restricted:seccompProfile",
    "baseline:hostPathVolumes": "restricted:restrictedVolumes",
    "baseline:procMount": "restricted:procMount",
}


def module_version(k8s_version: str = "") -> str:
    """The pod-security-admission module version of a Kubernetes release: v1.37.2 -> v0.37.2."""
    version = k8s_version or os.environ.get("K4C_K8S_VERSION") or K8S_VERSION
    return "v0." + version.split(".", 1)[1]


def locate_testdata() -> Path:
    """The fixtures folder in the Go module cache; fails (never skips) when it is not there."""
    module = f"k8s.io/pod-security-admission@{module_version()}"
    fix = f"run `make test-deps` (or scripts/fetch-pss-fixtures.sh) to fetch {module} into the Go module cache"
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"the Pod Security fixtures need Go to locate them ('go' is not on PATH); {fix}", pytrace=False)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    # pytester points HOME at a temporary folder; Go's module cache lives under the real one.
    env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    proc = subprocess.run([go, "mod", "download", "-json", module], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        info = {"Error": proc.stderr.strip() or f"go mod download exited with {proc.returncode}"}
    if proc.returncode != 0 or info.get("Error"):
        pytest.fail(f"Pod Security fixtures not found: {info.get('Error')}; {fix}", pytrace=False)
    testdata = Path(info["Dir"]) / "test" / "testdata"
    if not testdata.is_dir():
        pytest.fail(f"{module} at {info['Dir']} has no test/testdata; {fix}", pytrace=False)
    return testdata


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def latest_version(testdata: Path) -> str:
    """The newest policy version the fixtures cover (``v1.37``)."""
    return max((d.name for d in (testdata / "baseline").iterdir() if d.is_dir()), key=_version_key)


@dataclass(frozen=True)
class Fixture:
    level: str
    outcome: str  # "pass" or "fail"
    path: Path
    name: str  # the pod's metadata.name
    check: str | None  # the admission's check id (lower case), None for the base pods

    @property
    def requirement(self) -> str | None:
        return CHECKS.get(self.check) if self.check else None

    def expected(self) -> str:
        """The pss requirement whose control must flag this (fail) pod at its level."""
        req = CHECKS[self.check]
        return OVERRIDES.get(req, req) if self.level == "restricted" else req

    @property
    def pod(self) -> dict:
        return yaml.safe_load(self.path.read_text())


def fixtures(testdata: Path, level: str, outcome: str) -> list[Fixture]:
    folder = testdata / level / latest_version(testdata) / outcome
    found = []
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        check = re.sub(r"\d+$", "", path.stem)
        found.append(Fixture(level, outcome, path, doc["metadata"]["name"],
                             None if check.startswith("base") else check))
    return found


def flagged(result, level: str | None = None) -> dict[str, set[str]]:
    """pod name -> the pss requirements of the controls that named it (only ``level``'s, if given)."""
    out: dict[str, set[str]] = {}
    for record in result.controls:
        reqs = set(record["benchmarks"].get("pss", ()))
        if level == "baseline":
            reqs = {r for r in reqs if r.startswith("baseline:")}
        if not reqs:
            continue
        for row in result.offenders(record["id"]):
            out.setdefault(row["name"], set()).update(reqs)
    return out
