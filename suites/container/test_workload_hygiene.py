"""Workload hygiene of the container layer: resources, immutability, probes and where images
come from, on every workload (each pod template once, system namespaces excepted).

Benchmark ids: ``cis-k8s-1.10`` 5.5.1 (image provenance) and 5.7.3 (security contexts);
``nsa-cisa-1.2`` ``immutable-filesystems``, ``secure-images`` and ``resource-policies``
(listed in :mod:`suites.cluster.test_rbac`). Probes map to no benchmark requirement: they
are reliability hygiene the container layer of the 4C model asks for.
"""

from __future__ import annotations

import re

import pytest

from k4c_pytest import security_context as sc
from k4c_pytest.container_plugin import image_name
from k4c_pytest.security_context import offender
from k4c_pytest.workloads import note_scope, outside_system as _workloads

CIS, NSA = "cis-k8s-1.10", "nsa-cisa-1.2"
RESOURCES = ("cpu", "memory")
#: a digest the runtime accepts (OCI image spec: sha256 and sha512 are registered)
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
#: kinds whose pods run to completion: liveness and readiness mean little there
_BATCH_KINDS = ("Job", "CronJob")


def _note(evidence, settings, what: str) -> None:
    note_scope(evidence, settings, what, init_and_ephemeral=False)


def _resourced(pod_spec: dict):
    """Containers that take resources of their own: init and regular ones (the API forbids
    resources on ephemeral containers)."""
    return [c for c in sc.containers(pod_spec) if c.field != "ephemeralContainers"]


def _missing(c: sc.ContainerContext, section: str) -> list[str]:
    """The resources a container sets no ``section`` ("requests" or "limits") for, counting the
    pod-level ``spec.resources`` (which covers every container) and, for requests, a limit
    (the API server copies a limit into a missing request)."""
    own = c.container.get("resources") if isinstance(c.container.get("resources"), dict) else {}
    pod = c.pod_spec.get("resources") if isinstance(c.pod_spec.get("resources"), dict) else {}
    sources = [own.get(section), pod.get(section)]
    if section == "requests":
        sources += [own.get("limits"), pod.get("limits")]
    return [r for r in RESOURCES if not any(isinstance(s, dict) and s.get(r) not in (None, "") for s in sources)]


@pytest.mark.control(
    "K4C-CT-WL-001", title="Every container requests CPU and memory", severity="medium",
    benchmarks={NSA: ["resource-policies"]},
    remediation="Set resources.requests.cpu and resources.requests.memory on every container and init "
                "container (or spec.resources on the pod), so the scheduler reserves what it needs.")
def test_resource_requests_set(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("resources", "requests"), f"no {' or '.join(missing)} request", c)
                 for w in _workloads(cluster, k4c_settings) for c in _resourced(w.pod_spec)
                 if (missing := _missing(c, "requests"))]
    _note(evidence, k4c_settings, "resources.requests (or a limit, which the API server copies into a missing "
                                  "request, or pod-level spec.resources) of every container and init container")
    evidence.table("containers without CPU or memory requests", offenders)
    assert not offenders, f"{len(offenders)} containers request no CPU or memory"


@pytest.mark.control(
    "K4C-CT-WL-002", title="Every container has CPU and memory limits", severity="medium",
    benchmarks={NSA: ["resource-policies"]},
    remediation="Set resources.limits.cpu and resources.limits.memory on every container and init container "
                "(or spec.resources.limits on the pod), so one container cannot starve the node.")
def test_resource_limits_set(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("resources", "limits"), f"no {' or '.join(missing)} limit", c)
                 for w in _workloads(cluster, k4c_settings) for c in _resourced(w.pod_spec)
                 if (missing := _missing(c, "limits"))]
    _note(evidence, k4c_settings, "resources.limits (or pod-level spec.resources.limits) of every container and "
                                  "init container")
    evidence.table("containers without CPU or memory limits", offenders)
    assert not offenders, f"{len(offenders)} containers have no CPU or memory limit"


@pytest.mark.control(
    "K4C-CT-WL-003", title="Every container's root filesystem is read-only", severity="medium",
    benchmarks={CIS: ["5.7.3"], NSA: ["immutable-filesystems"]},
    remediation="Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the application "
                "must write (/tmp, caches).")
def test_read_only_root_filesystem(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("securityContext", "readOnlyRootFilesystem"),
                          c.get("readOnlyRootFilesystem").describe(), c)
                 for w in _workloads(cluster, k4c_settings) if not sc.is_windows(w.pod_spec)
                 for c in sc.containers(w.pod_spec) if c.value("readOnlyRootFilesystem") is not True]
    _note(evidence, k4c_settings, "securityContext.readOnlyRootFilesystem of every container, init and ephemeral "
                                  "ones included (Windows pods, which cannot set it, exempt)")
    evidence.table("containers with a writable root filesystem", offenders)
    assert not offenders, f"{len(offenders)} containers have a writable root filesystem"


def _long_running(w) -> bool:
    if w.kind in _BATCH_KINDS:
        return False
    return w.pod_spec.get("restartPolicy") in (None, "Always")


def _serves(c: sc.ContainerContext) -> bool:
    """A container that runs for the pod's whole life: a regular one, or a sidecar (an init
    container with ``restartPolicy: Always``)."""
    return c.field == "containers" or (c.field == "initContainers" and c.container.get("restartPolicy") == "Always")


@pytest.mark.control(
    "K4C-CT-WL-004", title="Every long-running container has liveness and readiness probes", severity="low",
    remediation="Add a livenessProbe (restart a hung process) and a readinessProbe (send traffic only when ready) "
                "to every container and sidecar of Deployments, StatefulSets, DaemonSets and always-restarting "
                "Pods.")
def test_probes_set(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path(probe), "unset", c)
                 for w in _workloads(cluster, k4c_settings) if _long_running(w)
                 for c in sc.containers(w.pod_spec) if _serves(c)
                 for probe in ("livenessProbe", "readinessProbe") if not c.container.get(probe)]
    _note(evidence, k4c_settings, "livenessProbe and readinessProbe of the regular containers and sidecars (init "
                                  "containers with restartPolicy Always) of workloads that run continuously "
                                  "(Jobs, CronJobs and Pods with restartPolicy Never or OnFailure run to "
                                  "completion and are not judged)")
    evidence.table("containers without a liveness or readiness probe", offenders)
    assert not offenders, f"{len(offenders)} probes missing"


def _pull_policy(container: dict, image) -> tuple[str, bool]:
    """The effective imagePullPolicy and whether the API server's default decided it."""
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy), False
    return ("Always" if image.digest is None and image.tag in (None, "latest") else "IfNotPresent"), True


@pytest.mark.control(
    "K4C-CT-WL-005", title="Images referenced by tag are always pulled", severity="medium",
    benchmarks={CIS: ["5.5.1"], NSA: ["secure-images"]},
    remediation="Pin the image by digest, or set imagePullPolicy: Always so each start checks the registry "
                "(with its credentials) instead of running whatever the node cached under the tag.")
def test_image_pull_policy(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            image = image_name(str(c.container.get("image") or ""))
            policy, defaulted = _pull_policy(c.container, image)
            if image.digest is None and policy != "Always":
                offenders.append(offender(w, c.path("imagePullPolicy"),
                                          f"{policy} (unset: the default for a tag)" if defaulted else policy,
                                          c, image=image.text))
    _note(evidence, k4c_settings, "the effective imagePullPolicy (the API server's default when unset: Always for "
                                  "latest or no tag, else IfNotPresent) of every container whose image is not "
                                  "pinned by digest")
    evidence.table("tagged images not always pulled", offenders)
    assert not offenders, f"{len(offenders)} containers may run a cached image for a mutable tag"


@pytest.mark.control(
    "K4C-CT-WL-006", title="Images come only from allowed registries", severity="high",
    benchmarks={CIS: ["5.5.1"], NSA: ["secure-images"]},
    remediation="Mirror the image into an allowed registry and reference it there, or add the registry to "
                "--k4c-allowed-registries once it is trusted.")
def test_images_from_allowed_registries(cluster, evidence, k4c_settings, allowed_registries):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            image = image_name(str(c.container.get("image") or ""))
            if not allowed_registries.allows(image):
                offenders.append(offender(w, c.path("image"), image.text, c, registry=image.name))
    evidence.note(f"Allowed: {', '.join(allowed_registries.prefixes)} (a registry, or a repository prefix). "
                  "References are normalised as the runtime reads them: busybox is docker.io/library/busybox.")
    _note(evidence, k4c_settings, "the image of every container, init and ephemeral ones included")
    evidence.table("images from registries not allowed", offenders)
    assert not offenders, f"{len(offenders)} containers use images from registries not allowed"


@pytest.mark.control(
    "K4C-CT-WL-007", title="Images are pinned by digest", severity="medium",
    benchmarks={NSA: ["secure-images"]},
    remediation="Reference each image as registry/repository@sha256:<digest> (a tag may stay for readers: "
                "repository:1.2.3@sha256:...), and update the digest through your release process.")
def test_images_pinned_by_digest(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            image = image_name(str(c.container.get("image") or ""))
            if image.digest is None:
                offenders.append(offender(w, c.path("image"), image.text, c, problem="no digest"))
            elif not _DIGEST.match(image.digest):
                offenders.append(offender(w, c.path("image"), image.text, c, problem="malformed digest"))
    _note(evidence, k4c_settings, "the image of every container, init and ephemeral ones included")
    evidence.table("images not pinned by digest", offenders)
    assert not offenders, f"{len(offenders)} containers use images not pinned by digest"


@pytest.mark.control(
    "K4C-CT-WL-008", title="No image uses the latest tag or no tag", severity="high",
    benchmarks={NSA: ["secure-images"]},
    remediation="Reference a versioned tag (app:1.4.2) or, better, a digest; latest changes under the workload "
                "and makes a rollout unrepeatable.")
def test_no_latest_tag(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            image = image_name(str(c.container.get("image") or ""))
            if image.digest is None and image.tag in (None, "latest"):
                offenders.append(offender(w, c.path("image"), image.text, c,
                                          problem="no tag (means latest)" if image.tag is None else "latest tag"))
    _note(evidence, k4c_settings, "the image of every container, init and ephemeral ones included (a reference "
                                  "pinned by digest is immutable whatever its tag)")
    evidence.table("images on latest or without a tag", offenders)
    assert not offenders, f"{len(offenders)} containers use the latest tag or no tag"
