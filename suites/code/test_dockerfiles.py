"""Dockerfiles: CIS Docker Benchmark v1.7.0 section 4 (container images and build file).

Each Dockerfile is parsed (line continuations, comments, multi-stage builds) by the ``code``
fixture; the checks below look at instructions, and the evidence names file, line, stage and
instruction, never an ENV/ARG value.
"""

from __future__ import annotations

import re

import pytest

from k4c_pytest.sources.code_dockerfile import assigned_values, is_root
from k4c_pytest.sources.code_secrets import value_secret_types

CIS = "cis-docker-1.7"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_URL = re.compile(r"^(https?|ftp)://", re.IGNORECASE)
_SECRET_NAME = re.compile(r"(PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|"
                          r"AUTH|DSN|CONNECTION_?STRING)", re.IGNORECASE)
_PIPE_TO_SHELL = re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+(-\S+\s+)*)?(sh|bash|zsh|dash|ash|ksh)\b"
                            r"|\b(sh|bash)\s+-c\s+[\"']?\$\((curl|wget)\b")
_UPGRADE = re.compile(r"\b(apt-get|apt|aptitude)\s+(-\S+\s+)*(upgrade|dist-upgrade|full-upgrade)\b"
                      r"|\bapk\s+(-\S+\s+)*upgrade\b|\b(yum|dnf|microdnf)\s+(-\S+\s+)*(upgrade|update)\s*($|[;&|])")
_SUDO = re.compile(r"(^|[\s;&|(])sudo\b")


def _row(df, stage, ins, rule: str, severity: str, **extra) -> dict:
    return {"file": df.path, "line": ins.line if ins is not None else stage.line, "rule": rule, "severity": severity,
            "stage": stage.name or str(stage.index), **extra}


def _runs(df):
    for stage in df.stages:
        for ins in stage.all("RUN"):
            yield stage, ins


@pytest.mark.control(
    "K4C-CODE-DF-001", title="Dockerfiles switch to a non-root USER in the final stage", severity="high",
    benchmarks={CIS: ["4.1"], "nsa-cisa-1.2": ["pod-security"]},
    remediation="Create an unprivileged user in the image and end the final stage with 'USER <uid>' "
                "(a numeric uid lets Kubernetes' runAsNonRoot verify it).")
def test_final_stage_user_not_root(code, evidence):
    offenders = []
    for df in code.dockerfiles():
        user, ins = df.effective_user()
        if user is None:
            offenders.append(_row(df, df.final, None, "dockerfile-user", "high", user="-",
                                  reason="no USER in the final stage or the stages it is built from"))
        elif is_root(user):
            offenders.append(_row(df, df.final, ins, "dockerfile-user", "high", user=user, reason="USER is root"))
    evidence.table("Dockerfiles whose final stage runs as root", offenders)
    assert not offenders, f"{len(offenders)} Dockerfiles run their final stage as root"


@pytest.mark.control(
    "K4C-CODE-DF-002", title="Dockerfile base images are pinned by digest", severity="medium",
    benchmarks={CIS: ["4.2"], "nist-ssdf-1.1": ["PS.2.1"]},
    remediation="Refer to each base image by digest, e.g. 'FROM python:3.12-slim@sha256:<digest>', and let a "
                "bot (Renovate, Dependabot) update the digest.")
def test_base_images_pinned_by_digest(code, evidence):
    offenders = [{"file": df.path, "line": s.line, "rule": "dockerfile-digest", "severity": "medium",
                  "stage": s.name or str(s.index), "image": s.image}
                 for df in code.dockerfiles() for s in df.external_images() if not _DIGEST.search(s.image)]
    evidence.table("base images not pinned by digest", offenders)
    assert not offenders, f"{len(offenders)} base images are not pinned by digest"


@pytest.mark.control(
    "K4C-CODE-DF-003", title="Dockerfiles do not ADD files from a URL", severity="medium",
    benchmarks={CIS: ["4.9"], "owasp-asvs-4.0.3": ["V10.3.2"]},
    remediation="Download in a RUN step that verifies a checksum or signature, or use COPY for local files.")
def test_no_add_from_url(code, evidence):
    offenders = []
    for df in code.dockerfiles():
        for stage in df.stages:
            for ins in stage.all("ADD"):
                sources = [w for w in ins.value.split()[:-1] if not w.startswith("--")]
                if any(_URL.match(w.strip("[\",]")) for w in sources):
                    offenders.append(_row(df, stage, ins, "dockerfile-add-url", "medium", instruction="ADD"))
    evidence.table("ADD instructions fetching a URL", offenders)
    assert not offenders, f"{len(offenders)} ADD instructions fetch a URL"


@pytest.mark.control(
    "K4C-CODE-DF-004", title="Dockerfiles put no secrets in ENV or ARG", severity="critical",
    benchmarks={CIS: ["4.10"], "owasp-asvs-4.0.3": ["V2.10.4"]},
    remediation="Pass build secrets with 'RUN --mount=type=secret' and runtime secrets as mounted files; ENV and "
                "ARG values stay in the image's configuration and history.")
def test_no_secrets_in_env_or_arg(code, evidence):
    def types(df, line: int, name: str, value: str | None) -> str:
        found = ["secret-like name"] if _SECRET_NAME.search(name) else []
        if value:  # what the value is, whatever its name: detect-secrets' plugins
            found += value_secret_types(name, value, f"{df.path}:{line}")
        return ", ".join(found)

    offenders = []
    for df in code.dockerfiles():
        for stage in df.stages:
            for ins in stage.all("ENV", "ARG"):
                for name, value in assigned_values(ins):
                    if kind := types(df, ins.line, name, value):
                        offenders.append(_row(df, stage, ins, "dockerfile-secret", "critical",
                                              instruction=ins.instruction, variable=name, type=kind))
        for name, value in df.global_args.items():
            if kind := types(df, df.global_arg_lines[name], name, value):
                offenders.append({"file": df.path, "line": df.global_arg_lines[name], "rule": "dockerfile-secret",
                                  "severity": "critical", "stage": "(global)", "instruction": "ARG",
                                  "variable": name, "type": kind})
    evidence.note("Variables are matched by name (password, secret, token, key, credential...) and their values by "
                  "detect-secrets' plugins (AWS keys, credentials in URLs, tokens, high-entropy strings...); "
                  "findings name the variable and the type, values are never shown.")
    evidence.table("secret-like ENV and ARG variables", offenders)
    assert not offenders, f"{len(offenders)} ENV/ARG variables look like secrets"


@pytest.mark.control(
    "K4C-CODE-DF-005", title="Dockerfiles define a HEALTHCHECK in the final stage", severity="low",
    benchmarks={CIS: ["4.6"]},
    remediation="Add 'HEALTHCHECK CMD <probe>' to the final stage (Kubernetes uses its own probes, but the image "
                "then states how to check it).")
def test_healthcheck(code, evidence):
    offenders = []
    for df in code.dockerfiles():
        stage, found = df.final, None
        while stage is not None and found is None:  # inherited from the stage it is built FROM
            checks = stage.all("HEALTHCHECK")
            found = checks[-1] if checks else None
            stage = df.parent_stage(stage)
        if found is None or found.value.strip().upper() == "NONE":
            offenders.append(_row(df, df.final, found, "dockerfile-healthcheck", "low",
                                  reason="HEALTHCHECK NONE" if found else "no HEALTHCHECK"))
    evidence.table("Dockerfiles without a HEALTHCHECK", offenders)
    assert not offenders, f"{len(offenders)} Dockerfiles have no HEALTHCHECK"


@pytest.mark.control(
    "K4C-CODE-DF-006", title="Dockerfiles do not pipe downloads into a shell", severity="high",
    benchmarks={CIS: ["4.11"], "owasp-asvs-4.0.3": ["V10.3.2"]},
    remediation="Download the installer, verify its checksum or signature, then run it; or install from the "
                "distribution's signed packages.")
def test_no_curl_pipe_shell(code, evidence):
    offenders = [_row(df, stage, ins, "dockerfile-pipe-to-shell", "high", instruction="RUN")
                 for df in code.dockerfiles() for stage, ins in _runs(df) if _PIPE_TO_SHELL.search(ins.value)]
    evidence.table("RUN instructions piping a download into a shell", offenders)
    assert not offenders, f"{len(offenders)} RUN instructions pipe a download into a shell"


@pytest.mark.control(
    "K4C-CODE-DF-007", title="Dockerfiles do not upgrade the base image's packages", severity="low",
    benchmarks={CIS: ["4.7"]},
    remediation="Rebuild on a newer, patched base image (pinned by digest) instead of 'apt-get upgrade': the "
                "image then stays reproducible and its scan matches its base.")
def test_no_package_upgrade(code, evidence):
    offenders = [_row(df, stage, ins, "dockerfile-upgrade", "low", instruction="RUN")
                 for df in code.dockerfiles() for stage, ins in _runs(df) if _UPGRADE.search(ins.value)]
    evidence.table("RUN instructions upgrading all packages", offenders)
    assert not offenders, f"{len(offenders)} RUN instructions upgrade all packages"


@pytest.mark.control(
    "K4C-CODE-DF-008", title="Dockerfiles do not use sudo", severity="medium",
    benchmarks={CIS: ["4.1"]},
    remediation="Run root steps before 'USER', and drop sudo from the image: it keeps a path back to root.")
def test_no_sudo(code, evidence):
    offenders = [_row(df, stage, ins, "dockerfile-sudo", "medium", instruction="RUN")
                 for df in code.dockerfiles() for stage, ins in _runs(df) if _SUDO.search(ins.value)]
    evidence.table("RUN instructions using sudo", offenders)
    assert not offenders, f"{len(offenders)} RUN instructions use sudo"
