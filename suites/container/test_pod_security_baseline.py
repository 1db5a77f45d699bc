"""Pod Security Standards, baseline level: one control per rule, on every workload.

Each rule reads the fields the Kubernetes PodSecurity admission reads
(``k8s.io/pod-security-admission/policy/check_*.go``, policy version 1.37), so a workload this
suite flags is one a namespace enforcing ``baseline`` rejects, and the other way round. A pod
setting a field on its own ``securityContext`` counts even where every container overrides
it, as the admission does. Workloads of the system namespaces (``k4c_system_namespaces``) are
not judged: Kubernetes' own components need host access.

Benchmark ids: ``pss`` as ``<level>:<check>`` with the admission's check names;
``cis-k8s-1.10`` section 5.2 (and 5.7.x); ``nsa-cisa-1.2`` ids are listed in
:mod:`suites.cluster.test_rbac` (``pod-security``: Pod security enforcement,
``non-root-containers``: non-root containers).
"""

from __future__ import annotations

import pytest

from k4c_pytest import security_context as sc
from k4c_pytest.workloads import note_scope as _note, outside_system as _workloads
from k4c_pytest.security_context import offender

CIS, NSA, PSS = "cis-k8s-1.10", "nsa-cisa-1.2", "pss"

# capabilities_baseline: the container runtimes' default set
DEFAULT_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# sysctls: namespaced and isolated from other pods (policy version 1.37)
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")


def _profile_type(profile) -> str:
    return str(profile.get("type") or "") if isinstance(profile, dict) else ""


@pytest.mark.control(
    "K4C-CT-PSB-001", title="No container runs privileged", severity="critical",
    benchmarks={PSS: ["baseline:privileged"], CIS: ["5.2.2"], NSA: ["pod-security"]},
    remediation="Remove securityContext.privileged (or set it to false); grant the few capabilities the "
                "container needs instead.")
def test_no_privileged_containers(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("securityContext", "privileged"), True, c)
                 for w in _workloads(cluster, k4c_settings) for c in sc.containers(w.pod_spec)
                 if c.explicit("privileged") is True]
    _note(evidence, k4c_settings, "securityContext.privileged of every container")
    evidence.table("privileged containers", offenders)
    assert not offenders, f"{len(offenders)} containers run privileged"


@pytest.mark.control(
    "K4C-CT-PSB-002", title="No Windows HostProcess containers", severity="critical",
    benchmarks={PSS: ["baseline:windowsHostProcess"], CIS: ["5.2.11"], NSA: ["pod-security"]},
    remediation="Remove securityContext.windowsOptions.hostProcess (pod and containers), or set it to false.")
def test_no_windows_host_process(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        options = sc.pod_context(w.pod_spec).get("windowsOptions")
        if isinstance(options, dict) and options.get("hostProcess") is True and \
                w.owns_pod_value("securityContext", "windowsOptions", "hostProcess"):
            offenders.append(offender(w, "securityContext.windowsOptions.hostProcess", True))
        for c in sc.containers(w.pod_spec):
            options = c.explicit("windowsOptions")
            if isinstance(options, dict) and options.get("hostProcess") is True:
                offenders.append(offender(w, c.path("securityContext", "windowsOptions", "hostProcess"), True, c))
    _note(evidence, k4c_settings, "securityContext.windowsOptions.hostProcess of the pod and of every container")
    evidence.table("HostProcess pods and containers", offenders)
    assert not offenders, f"{len(offenders)} pods or containers are Windows HostProcess"


@pytest.mark.control(
    "K4C-CT-PSB-003", title="No pod shares the host's network, PID or IPC namespace", severity="high",
    benchmarks={PSS: ["baseline:hostNamespaces"], CIS: ["5.2.3", "5.2.4", "5.2.5"], NSA: ["pod-security"]},
    remediation="Remove spec.hostNetwork, spec.hostPID and spec.hostIPC (or set them to false).")
def test_no_host_namespaces(cluster, evidence, k4c_settings):
    offenders = [offender(w, field, True) for w in _workloads(cluster, k4c_settings)
                 for field in HOST_NAMESPACES if w.pod_spec.get(field) is True and w.owns_pod_value(field)]
    _note(evidence, k4c_settings, ", ".join(HOST_NAMESPACES))
    evidence.table("pods in host namespaces", offenders)
    assert not offenders, f"{len(offenders)} host namespaces shared by pods"


@pytest.mark.control(
    "K4C-CT-PSB-004", title="No hostPath volumes", severity="high",
    benchmarks={PSS: ["baseline:hostPathVolumes"], CIS: ["5.2.12"], NSA: ["pod-security"]},
    remediation="Replace hostPath volumes with emptyDir, a ConfigMap/Secret, or a PersistentVolumeClaim.")
def test_no_host_path_volumes(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for i, volume in enumerate(w.pod_spec.get("volumes") or ()):
            if isinstance(volume, dict) and volume.get("hostPath") is not None:
                path = volume["hostPath"].get("path", "") if isinstance(volume["hostPath"], dict) else ""
                offenders.append(offender(w, f"volumes[{i}].hostPath", path, volume=volume.get("name", "")))
    _note(evidence, k4c_settings, "spec.volumes")
    evidence.table("hostPath volumes", offenders)
    assert not offenders, f"{len(offenders)} hostPath volumes"


@pytest.mark.control(
    "K4C-CT-PSB-005", title="No container binds a host port", severity="medium",
    benchmarks={PSS: ["baseline:hostPorts"], CIS: ["5.2.13"], NSA: ["pod-security"]},
    remediation="Remove ports[].hostPort; expose the pod through a Service instead.")
def test_no_host_ports(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            for j, port in enumerate(c.container.get("ports") or ()):
                if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                    offenders.append(offender(w, c.path(f"ports[{j}]", "hostPort"), port["hostPort"], c))
    _note(evidence, k4c_settings, "ports[].hostPort of every container")
    evidence.table("host ports", offenders)
    assert not offenders, f"{len(offenders)} host ports bound by containers"


def _probe_hosts(c: sc.ContainerContext):
    for probe in PROBES:
        handlers = [(probe, c.container.get(probe))]
        yield from _handler_hosts(c, handlers)
    lifecycle = c.container.get("lifecycle")
    if isinstance(lifecycle, dict):
        yield from _handler_hosts(c, [(f"lifecycle.{h}", lifecycle.get(h)) for h in LIFECYCLE_HANDLERS])


def _handler_hosts(c: sc.ContainerContext, handlers):
    for where, handler in handlers:
        if not isinstance(handler, dict):
            continue
        for action in ("httpGet", "tcpSocket"):
            host = handler.get(action, {}).get("host") if isinstance(handler.get(action), dict) else None
            if host:
                yield c.path(*where.split("."), action, "host"), host


@pytest.mark.control(
    "K4C-CT-PSB-006", title="No probe or lifecycle hook targets another host", severity="medium",
    benchmarks={PSS: ["baseline:hostProbesAndHostLifecycle"], NSA: ["pod-security"]},
    remediation="Remove the host field of httpGet and tcpSocket probes and lifecycle handlers: the kubelet "
                "then probes the pod itself.")
def test_no_host_probes_or_lifecycle_hooks(cluster, evidence, k4c_settings):
    offenders = [offender(w, path, host, c) for w in _workloads(cluster, k4c_settings)
                 for c in sc.containers(w.pod_spec) for path, host in _probe_hosts(c)]
    _note(evidence, k4c_settings, "the host field of every httpGet and tcpSocket probe and lifecycle handler")
    evidence.table("probes and lifecycle hooks aimed at a host", offenders)
    assert not offenders, f"{len(offenders)} probes or lifecycle hooks target a host"


@pytest.mark.control(
    "K4C-CT-PSB-007", title="No container adds capabilities beyond the runtime's default set", severity="high",
    benchmarks={PSS: ["baseline:capabilities"], CIS: ["5.2.8", "5.2.9"], NSA: ["pod-security"]},
    remediation="Remove from securityContext.capabilities.add every capability not in the default set "
                f"({', '.join(sorted(DEFAULT_CAPABILITIES))}); NET_RAW and SYS_ADMIN above all.")
def test_no_added_capabilities_beyond_default(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        for c in sc.containers(w.pod_spec):
            caps = c.explicit("capabilities")
            added = (caps.get("add") if isinstance(caps, dict) else None) or ()
            extra = [str(cap) for cap in added if cap not in DEFAULT_CAPABILITIES]
            if extra:
                offenders.append(offender(w, c.path("securityContext", "capabilities", "add"), extra, c))
    _note(evidence, k4c_settings, "securityContext.capabilities.add of every container")
    evidence.table("capabilities added beyond the default set", offenders)
    assert not offenders, f"{len(offenders)} containers add capabilities beyond the default set"


def _bad_apparmor_annotation(value) -> bool:
    value = "" if value is None else str(value)
    return not (value == "" or value == "runtime/default" or value.startswith("localhost/"))


@pytest.mark.control(
    "K4C-CT-PSB-008", title="No pod or container disables or overrides the default AppArmor profile",
    severity="medium", benchmarks={PSS: ["baseline:appArmorProfile"], CIS: ["5.7.3"], NSA: ["pod-security"]},
    remediation="Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost (or leave it unset), "
                "and remove container.apparmor.security.beta.kubernetes.io annotations set to unconfined.")
def test_apparmor_not_overridden(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        profile = sc.pod_context(w.pod_spec).get("appArmorProfile")
        if profile is not None and _profile_type(profile) not in PROFILE_TYPES and \
                w.owns_pod_value("securityContext", "appArmorProfile"):
            offenders.append(offender(w, "securityContext.appArmorProfile.type", _profile_type(profile) or "empty"))
        for c in sc.containers(w.pod_spec):
            profile = c.explicit("appArmorProfile")
            if profile is not None and _profile_type(profile) not in PROFILE_TYPES:
                offenders.append(offender(w, c.path("securityContext", "appArmorProfile", "type"),
                                          _profile_type(profile) or "empty", c))
        annotations = w.pod_metadata.get("annotations") or {}
        for key, value in sorted(annotations.items()):
            if key.startswith(APPARMOR_ANNOTATION) and _bad_apparmor_annotation(value) and \
                    w.owns_pod_value("annotations", key, under="metadata"):
                offenders.append(offender(w, f"annotations[{key}]", str(value), under="metadata"))
    _note(evidence, k4c_settings, "securityContext.appArmorProfile of the pod and of every container, and the "
                                  f"{APPARMOR_ANNOTATION}* annotations of the pod template")
    evidence.table("AppArmor profiles other than RuntimeDefault or Localhost", offenders)
    assert not offenders, f"{len(offenders)} AppArmor settings disable or replace the default profile"


def _bad_selinux(options) -> list[str]:
    if not isinstance(options, dict):
        return []
    bad = []
    if (options.get("type") or "") not in SELINUX_TYPES:
        bad.append(f"type={options['type']}")
    bad += [f"{key}={options[key]}" for key in ("user", "role") if options.get(key)]
    return bad


@pytest.mark.control(
    "K4C-CT-PSB-009", title="No custom SELinux user, role or type", severity="medium",
    benchmarks={PSS: ["baseline:seLinuxOptions"], CIS: ["5.7.3"], NSA: ["pod-security"]},
    remediation="Remove seLinuxOptions.user and .role, and set .type only to container_t, container_init_t, "
                "container_kvm_t or container_engine_t.")
def test_selinux_options_restricted(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        bad = _bad_selinux(sc.pod_context(w.pod_spec).get("seLinuxOptions"))
        if bad and w.owns_pod_value("securityContext", "seLinuxOptions"):
            offenders.append(offender(w, "securityContext.seLinuxOptions", "; ".join(bad)))
        for c in sc.containers(w.pod_spec):
            bad = _bad_selinux(c.explicit("seLinuxOptions"))
            if bad:
                offenders.append(offender(w, c.path("securityContext", "seLinuxOptions"), "; ".join(bad), c))
    _note(evidence, k4c_settings, "securityContext.seLinuxOptions of the pod and of every container")
    evidence.table("forbidden SELinux options", offenders)
    assert not offenders, f"{len(offenders)} pods or containers set forbidden SELinux options"


@pytest.mark.control(
    "K4C-CT-PSB-010", title="No container unmasks /proc outside a user namespace", severity="medium",
    benchmarks={PSS: ["baseline:procMount"], CIS: ["5.7.3"], NSA: ["pod-security"]},
    remediation="Remove securityContext.procMount (or set it to Default), or run the pod in a user "
                "namespace with spec.hostUsers: false.")
def test_proc_mount_default(cluster, evidence, k4c_settings):
    offenders = [offender(w, c.path("securityContext", "procMount"), c.explicit("procMount"), c)
                 for w in _workloads(cluster, k4c_settings) if not sc.in_user_namespace(w.pod_spec)
                 for c in sc.containers(w.pod_spec) if c.explicit("procMount") not in (None, "Default")]
    _note(evidence, k4c_settings, "securityContext.procMount of every container (any value is allowed when the pod "
                                  "sets hostUsers: false)")
    evidence.table("containers with an unmasked /proc", offenders)
    assert not offenders, f"{len(offenders)} containers unmask /proc"


@pytest.mark.control(
    "K4C-CT-PSB-011", title="No pod or container sets the seccomp profile to Unconfined", severity="medium",
    benchmarks={PSS: ["baseline:seccompProfile"], CIS: ["5.7.2"], NSA: ["pod-security"]},
    remediation="Set securityContext.seccompProfile.type to RuntimeDefault or Localhost, or leave it unset.")
def test_seccomp_not_unconfined(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        profile = sc.pod_context(w.pod_spec).get("seccompProfile")
        if profile is not None and _profile_type(profile) not in PROFILE_TYPES and \
                w.owns_pod_value("securityContext", "seccompProfile"):
            offenders.append(offender(w, "securityContext.seccompProfile.type", _profile_type(profile) or "empty"))
        for c in sc.containers(w.pod_spec):
            profile = c.explicit("seccompProfile")
            if profile is not None and _profile_type(profile) not in PROFILE_TYPES:
                offenders.append(offender(w, c.path("securityContext", "seccompProfile", "type"),
                                          _profile_type(profile) or "empty", c))
    _note(evidence, k4c_settings, "securityContext.seccompProfile of the pod and of every container")
    evidence.table("seccomp profiles other than RuntimeDefault or Localhost", offenders)
    assert not offenders, f"{len(offenders)} pods or containers set a seccomp profile other than RuntimeDefault or Localhost"


@pytest.mark.control(
    "K4C-CT-PSB-012", title="Pods set only safe sysctls", severity="medium",
    benchmarks={PSS: ["baseline:sysctls"], NSA: ["pod-security"]},
    remediation=f"Remove spec.securityContext.sysctls other than {', '.join(sorted(SAFE_SYSCTLS))}.")
def test_only_safe_sysctls(cluster, evidence, k4c_settings):
    offenders = []
    for w in _workloads(cluster, k4c_settings):
        if not w.owns_pod_value("securityContext", "sysctls"):
            continue
        for i, sysctl in enumerate(sc.pod_context(w.pod_spec).get("sysctls") or ()):
            name = sysctl.get("name", "") if isinstance(sysctl, dict) else ""
            if name not in SAFE_SYSCTLS:
                offenders.append(offender(w, f"securityContext.sysctls[{i}].name", name))
    _note(evidence, k4c_settings, "spec.securityContext.sysctls")
    evidence.table("unsafe sysctls", offenders)
    assert not offenders, f"{len(offenders)} unsafe sysctls set by pods"
