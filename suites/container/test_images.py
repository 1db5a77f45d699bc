"""Image configuration: who the image runs as, secrets baked into it, ports, age.

Every control here runs once per image of the run (the ``image`` fixture is parametrized:
``--k4c-image`` references, the cluster's workload images, ``--k4c-image-layout``). A
multi-platform image is checked on each of its platforms; evidence names image and platform.

Benchmark ids: ``cis-docker-1.7`` (CIS Docker Benchmark v1.7.0, section 4 "Container Images
and Build File Configuration", 5.8 ports); ``nsa-cisa-1.2`` by section:
``non-root-containers`` (Kubernetes Pod security, non-root containers) and ``image-scanning``
(Building secure container images).
"""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable
from k4c_pytest.sources.image_vulns import CLOCK_SKEW

CIS_DOCKER = "cis-docker-1.7"
NSA = "nsa-cisa-1.2"
PRIVILEGED_PORT = 1024


def _runs_as(image, variant) -> tuple[int | None, str]:
    """The uid the image's processes get: the image's USER, unless every workload running it sets
    a non-zero runAsUser (then that wins, as the kubelet passes it to the runtime)."""
    user = variant.resolve_user()
    if image.usages and all(u.run_as_user not in (None, 0) for u in image.usages):
        uids = sorted({u.run_as_user for u in image.usages})
        return uids[0], f"{user.note}; every workload running it sets runAsUser ({', '.join(map(str, uids))})"
    return user.uid, user.note


@pytest.mark.control(
    "K4C-IMG-001", title="Images run as a non-root user", severity="high",
    benchmarks={CIS_DOCKER: ["4.1"], NSA: ["non-root-containers"]},
    remediation="Create an unprivileged user in the image and end the Dockerfile with USER <uid> (numeric, so "
                "runAsNonRoot can check it), or set a non-zero runAsUser in the securityContext of every "
                "workload that runs the image.")
def test_image_runs_as_non_root(image, evidence):
    offenders = []
    for v in image.variants():
        uid, why = _runs_as(image, v)
        if uid is None or uid == 0:
            offenders.append(v.row(USER=v.user or "(unset)", uid="unknown" if uid is None else uid, reason=why))
    if image.usages:
        evidence.table("Containers running this image", [u.row() for u in image.usages])
    evidence.note("The image's USER is resolved to a uid (names through the image's /etc/passwd; no USER is "
                  "root). A root image passes only when every workload running it sets a non-zero runAsUser.")
    evidence.table("Images that run as root (or an unknown user)", offenders)
    assert not offenders, f"{len(offenders)} platform images run as root or an unresolvable user: " \
                          f"{offenders[0]['reason']}"


@pytest.mark.control(
    "K4C-IMG-002", title="No secrets in image environment variables, labels or build history", severity="critical",
    benchmarks={CIS_DOCKER: ["4.10"], NSA: ["image-scanning"]},
    remediation="Remove the credential from the Dockerfile (ENV, LABEL, ARG) and rebuild; revoke it, since "
                "anyone who can pull the image has it. Pass secrets at run time from a Secret volume, or "
                "at build time with BuildKit's --mount=type=secret.")
def test_image_has_no_secrets(image, evidence):
    offenders = [v.row(**s.row()) for v in image.variants() for s in v.secrets]
    evidence.note("ENV entries, labels and every history step were scanned with detect-secrets' credential "
                  "plugins (cloud keys, private keys, tokens, passwords by keyword). The location and the kind "
                  "are shown; the value never leaves the image.")
    evidence.table("Secrets found", offenders)
    assert not offenders, f"{len(offenders)} secrets in image configs ({offenders[0]['location']}: " \
                          f"{offenders[0]['type']})"


@pytest.mark.control(
    "K4C-IMG-003", title="Non-root images expose no privileged port (below 1024)", severity="low",
    benchmarks={CIS_DOCKER: ["5.8"]},
    remediation="Listen on a port of 1024 or above (8080 rather than 80) and map the privileged port in the "
                "Service; a non-root process cannot bind a port below 1024 without NET_BIND_SERVICE.")
def test_image_no_privileged_ports_when_non_root(image, evidence):
    checked = 0
    offenders = []
    for v in image.variants():
        uid, why = _runs_as(image, v)
        if uid is None or uid == 0:
            continue  # a root image is K4C-IMG-001's finding
        checked += 1
        low = [f"{port}/{proto}" for port, proto in v.exposed_ports if port < PRIVILEGED_PORT]
        if low:
            offenders.append(v.row(uid=uid, ports=", ".join(low)))
    if not checked:
        raise NotApplicable("the image runs as root (K4C-IMG-001), so privileged ports need no capability")
    evidence.table("Non-root images exposing ports below 1024", offenders)
    assert not offenders, f"{len(offenders)} non-root platform images expose privileged ports ({offenders[0]['ports']})"


@pytest.mark.control(
    "K4C-IMG-004", title="Images were built recently (within --k4c-max-image-age)", severity="medium",
    benchmarks={CIS_DOCKER: ["4.4"]},
    remediation="Rebuild the image on a fresh base image regularly (at least as often as --k4c-max-image-age) "
                "so that security fixes reach it, and set the image's created time when building.")
def test_image_is_recent(image, evidence, image_policy):
    now = image_policy.now()
    offenders = []
    for v in image.variants():
        created = v.created
        if created is None:
            offenders.append(v.row(created="unset", reason="the config has no creation time"))
        elif created.year <= 1970:
            offenders.append(v.row(created=created.isoformat(), reason="created at the Unix epoch (a reproducible "
                                                                       "build without SOURCE_DATE_EPOCH): age unknown"))
        elif created - now > CLOCK_SKEW:
            offenders.append(v.row(created=created.isoformat(timespec="seconds"),
                                   reason="created in the future (a wrong build clock or a forged time): age "
                                          "unknown"))
        elif now - created > image_policy.max_image_age:
            offenders.append(v.row(created=created.isoformat(timespec="seconds"),
                                   reason=f"{(now - created).days} days old"))
    evidence.note(f"Maximum age: {image_policy.max_image_age_text} (--k4c-max-image-age).")
    evidence.table("Images older than allowed, or of unknown age", offenders)
    assert not offenders, f"{len(offenders)} platform images too old or of unknown age: {offenders[0]['reason']}"
