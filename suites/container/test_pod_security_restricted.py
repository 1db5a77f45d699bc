"""Pod Security Standards, restricted level: the rules restricted adds to baseline.

A namespace enforcing ``restricted`` applies these and the baseline suite
(:mod:`suites.container.test_pod_security_baseline`), where four restricted rules replace
their weaker baseline form (volume types for hostPath, capabilities, seccomp, /proc mount).
The semantics are those of ``k8s.io/pod-security-admission/policy/check_*.go`` at policy
version 1.37:

- A container's setting comes from its own securityContext, else the pod's
  (:mod:`k4c_pytest.security_context`); a pod-level value that breaks the rule is reported
  on its own, even where every container overrides it, as the admission rejects it.
- Windows pods (``spec.os.name: windows``) are exempt from the Linux-only rules (privilege
  escalation, capabilities, seccomp).
- Pods in a user namespace (``spec.hostUsers: false``) may run as UID 0 inside it.

Benchmark ids as in the baseline suite; ``nsa-cisa-1.2`` ``non-root-containers``: Non-root
containers and "rootless" container engines.
"""

from __future__ import annotations

import pytest

from k4c_pytest import security_context as sc
from k4c_pytest.workloads import note_scope as _note, outside_system as _workloads
from k4c_pytest.security_context import CONTAINER, DEFAULT, offender

CIS, NSA, PSS = "cis-k8s-1.10", "nsa-cisa-1.2", "pss"

#: inline volume sources the restricted level allows
ALLOWED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
                   "projected", "secret")
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _forbidden_volume_type(volume: dict) -> str | None:
    """The volume's type when the restricted level forbids it, else None."""
    sources = [k for k, v in volume.items() if k != "name" and v is not None]
    # A volume naming no source is an emptyDir: the API server defaults it so (manifests are
    # not defaulted yet, so k4c does it here).
    if not sources or any(k in ALLOWED_VOLUMES for k in sources):
        return None
    return sources[0]


@pytest.mark.control(
    "K4C-CT-PSR-001", title="Pods use only the volume types of the restricted level", severity="medium",
    benchmarks={PSS: ["restricted:restrictedVolumes"], CIS: ["5.2.12"], NSA: ["pod-security"]},
    remediation=f"Use only {', '.join(ALLOWED_VOLUMES)} volumes; reach network storage through a "
                "PersistentVolumeClaim instead of an inline volume.")
def test_only_restricted_volume_types(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for i, volume in enumerate(w.pod_spec.get("volumes") or ()):
            kind = _forbidden_volume_type(volume) if isinstance(volume, dict) else None
            if kind is not None:
                offenders.append(offender(w, f"volumes[{i}].{kind}", kind, volume=volume.get("name", "")))
    _note(evidence, k4c_settings, "the type of every volume in spec.volumes")
    evidence.table("volumes of types the restricted level forbids", offenders)
    assert not offenders, f"{len(offenders)} volumes of forbidden types"


@pytest.mark.control(
    "K4C-CT-PSR-002", title="Every container sets allowPrivilegeEscalation to false", severity="high",
    benchmarks={PSS: ["restricted:allowPrivilegeEscalation"], CIS: ["5.2.6"], NSA: ["pod-security"]},
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container, init and "
                "ephemeral ones included (unset means true).")
def test_no_privilege_escalation(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("securityContext", "allowPrivilegeEscalation"),
                          c.get("allowPrivilegeEscalation").describe(), c)
                 for w in _workloads(cluster, k4c_settings) if not sc.is_windows(w.pod_spec)
                 for c in sc.containers(w.pod_spec) if c.explicit("allowPrivilegeEscalation") is not False]
    _note(evidence, k4c_settings, "securityContext.allowPrivilegeEscalation of every container (Windows pods exempt)")
    evidence.table("containers that may escalate privileges", offenders)
    assert not offenders, f"{len(offenders)} containers allow privilege escalation"


@pytest.mark.control(
    "K4C-CT-PSR-003", title="Every container must run as a non-root user (runAsNonRoot)", severity="high",
    benchmarks={PSS: ["restricted:runAsNonRoot"], CIS: ["5.2.7"], NSA: ["non-root-containers", "pod-security"]},
    remediation="Set spec.securityContext.runAsNonRoot: true on the pod (or on every container), and never "
                "false on a container; or run the pod in a user namespace (hostUsers: false).")
def test_run_as_non_root(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        if sc.in_user_namespace(w.pod_spec):
            continue
        pod_value = sc.pod_context(w.pod_spec).get("runAsNonRoot")
        if pod_value is False and w.owns_pod_value("securityContext", "runAsNonRoot"):
            offenders.append(offender(w, "securityContext.runAsNonRoot", False))
        for c in sc.containers(w.pod_spec):
            setting = c.get("runAsNonRoot")
            # a container inheriting the pod's false is reported once, as the pod
            if setting.value is not True and not (setting.source == sc.POD and pod_value is False):
                offenders.append(offender(w, c.path("securityContext", "runAsNonRoot"), setting.describe(), c))
    _note(evidence, k4c_settings, "the effective securityContext.runAsNonRoot of every container and the pod's own "
                                  "(pods with hostUsers: false exempt)")
    evidence.table("containers not required to run as non-root", offenders)
    assert not offenders, f"{len(offenders)} pods or containers are not required to run as non-root"


def _is_root(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


@pytest.mark.control(
    "K4C-CT-PSR-004", title="No pod or container sets runAsUser to 0 (root)", severity="high",
    benchmarks={PSS: ["restricted:runAsUser"], CIS: ["5.2.7"], NSA: ["non-root-containers", "pod-security"]},
    remediation="Set runAsUser to a non-zero UID (or leave it unset and set runAsNonRoot: true); or run the pod "
                "in a user namespace (hostUsers: false).")
def test_run_as_user_not_root(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        if sc.in_user_namespace(w.pod_spec):
            continue
        if _is_root(sc.pod_context(w.pod_spec).get("runAsUser")) and w.owns_pod_value("securityContext", "runAsUser"):
            offenders.append(offender(w, "securityContext.runAsUser", 0))
        offenders += [offender(w, c.path("securityContext", "runAsUser"), 0, c)
                      for c in sc.containers(w.pod_spec) if _is_root(c.explicit("runAsUser"))]
    _note(evidence, k4c_settings, "securityContext.runAsUser of the pod and of every container "
                                  "(pods with hostUsers: false exempt)")
    evidence.table("pods and containers set to run as root", offenders)
    assert not offenders, f"{len(offenders)} pods or containers set runAsUser: 0"


def _profile_type(profile) -> str:
    return str(profile.get("type") or "") if isinstance(profile, dict) else ""


@pytest.mark.control(
    "K4C-CT-PSR-005", title="Every container runs with the RuntimeDefault or a Localhost seccomp profile",
    severity="high", benchmarks={PSS: ["restricted:seccompProfile"], CIS: ["5.7.2"], NSA: ["pod-security"]},
    remediation="Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or Localhost with a "
                "profile), and no other type on a container.")
def test_seccomp_required(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        if sc.is_windows(w.pod_spec):
            continue
        pod_profile = sc.pod_context(w.pod_spec).get("seccompProfile")
        pod_bad = pod_profile is not None and _profile_type(pod_profile) not in PROFILE_TYPES
        if pod_bad and w.owns_pod_value("securityContext", "seccompProfile"):
            offenders.append(offender(w, "securityContext.seccompProfile.type", _profile_type(pod_profile) or "empty"))
        for c in sc.containers(w.pod_spec):
            setting = c.get("seccompProfile")
            path = c.path("securityContext", "seccompProfile", "type")
            if setting.source == CONTAINER and _profile_type(setting.value) not in PROFILE_TYPES:
                offenders.append(offender(w, path, _profile_type(setting.value) or "empty", c))
            elif setting.source == DEFAULT:
                offenders.append(offender(w, path, "unset in the container and the pod", c))
    _note(evidence, k4c_settings, "the effective securityContext.seccompProfile of every container and the pod's own "
                                  "(Windows pods exempt)")
    evidence.table("containers without the RuntimeDefault or a Localhost seccomp profile", offenders)
    assert not offenders, f"{len(offenders)} pods or containers lack a RuntimeDefault or Localhost seccomp profile"


@pytest.mark.control(
    "K4C-CT-PSR-006", title="Every container drops ALL capabilities and adds at most NET_BIND_SERVICE",
    severity="medium", benchmarks={PSS: ["restricted:capabilities"], CIS: ["5.2.8", "5.2.9", "5.2.10"],
                                   NSA: ["pod-security"]},
    remediation='Set securityContext.capabilities.drop: ["ALL"] on every container and add back only '
                "NET_BIND_SERVICE if it must bind a port below 1024.")
def test_capabilities_dropped(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        if sc.is_windows(w.pod_spec):
            continue
        for c in sc.containers(w.pod_spec):
            caps = c.explicit("capabilities")
            caps = caps if isinstance(caps, dict) else {}
            dropped = caps.get("drop") if isinstance(caps.get("drop"), list) else []
            if "ALL" not in dropped:
                offenders.append(offender(w, c.path("securityContext", "capabilities", "drop"),
                                          sc.show(dropped) if dropped else "unset", c))
            added = [str(cap) for cap in caps.get("add") or () if cap != "NET_BIND_SERVICE"]
            if added:
                offenders.append(offender(w, c.path("securityContext", "capabilities", "add"), added, c))
    _note(evidence, k4c_settings, "securityContext.capabilities of every container (Windows pods exempt)")
    evidence.table("containers that keep or add capabilities", offenders)
    assert not offenders, f"{len(offenders)} capability settings keep or add more than NET_BIND_SERVICE"


@pytest.mark.control(
    "K4C-CT-PSR-007", title="No container unmasks /proc, even in a user namespace", severity="medium",
    benchmarks={PSS: ["restricted:procMount"], CIS: ["5.7.3"], NSA: ["pod-security"]},
    remediation="Remove securityContext.procMount or set it to Default.")
def test_proc_mount_default_always(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("securityContext", "procMount"), c.explicit("procMount"), c)
                 for w in _workloads(cluster, k4c_settings)
                 for c in sc.containers(w.pod_spec) if c.explicit("procMount") not in (None, "Default")]
    _note(evidence, k4c_settings, "securityContext.procMount of every container")
    evidence.table("containers with an unmasked /proc", offenders)
    assert not offenders, f"{len(offenders)} containers unmask /proc"
