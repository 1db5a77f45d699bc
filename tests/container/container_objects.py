"""Workloads for the container suite's tests: at least one offender of every control (``bad``),
a namespace of compliant workloads (``good``), and what each control must report.

The same objects are written to a manifests folder and created in the real API server, so
both backends are held to the same expectations.
"""

from __future__ import annotations

import copy
from typing import Any

BAD, GOOD, SYSTEM = "k4c-ct-bad", "k4c-ct-good", "kube-system"
ENFORCE = "pod-security.kubernetes.io/enforce"
DIGEST = "sha256:" + "ab" * 32
GOOD_IMAGE = f"registry.example.com/shop/api:1.4.2@{DIGEST}"

PSB = [f"K4C-CT-PSB-{i:03d}" for i in range(1, 13)]
PSR = [f"K4C-CT-PSR-{i:03d}" for i in range(1, 8)]
WL = [f"K4C-CT-WL-{i:03d}" for i in range(1, 9)]
ALL_IDS = [*PSB, *PSR, *WL]


def _meta(name: str, ns: str | None = None, **extra: Any) -> dict:
    return {"name": name, **({"namespace": ns} if ns else {}), **extra}


def namespace(name: str, level: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(name, labels={ENFORCE: level} if level else {})}


def pod(name: str, ns: str, spec: dict, annotations: dict | None = None, owner: dict | None = None) -> dict:
    meta = _meta(name, ns, labels={"app": name})
    if annotations:
        meta["annotations"] = annotations
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(spec)}


def owner(kind: str, name: str) -> dict:
    api = "batch/v1" if kind in ("CronJob", "Job") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "name": name, "controller": True}


def with_template(kind: str, name: str, ns: str, spec: dict, owned_by: dict | None = None) -> dict:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": copy.deepcopy(spec)}
    if kind == "CronJob":
        body = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        body = {"template": template}
    else:
        body = {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}
    meta = _meta(name, ns)
    if owned_by:
        meta["ownerReferences"] = [owned_by]
    return {"apiVersion": "batch/v1" if kind in ("CronJob", "Job") else "apps/v1", "kind": kind,
            "metadata": meta, "spec": body}


# -- compliant building blocks -------------------------------------------------------------

RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}
PROBES = {"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
          "readinessProbe": {"tcpSocket": {"port": 8080}}}
SAFE_CONTEXT = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]}}
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}


def good_container(name: str, **extra: Any) -> dict:
    c = {"name": name, "image": GOOD_IMAGE, "resources": copy.deepcopy(RESOURCES),
         "securityContext": copy.deepcopy(SAFE_CONTEXT), **copy.deepcopy(PROBES)}
    c.update(extra)
    return c


def good_objects() -> list[dict]:
    api = {"serviceAccountName": "api", "securityContext": RESTRICTED_POD,
           "initContainers": [{k: v for k, v in good_container("migrate").items() if not k.endswith("Probe")}],
           "containers": [good_container("api", ports=[{"containerPort": 8080}], securityContext={
               **SAFE_CONTEXT, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
               "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/api.json"}})],
           "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "api"}},
                       {"name": "creds", "secret": {"secretName": "api"}},
                       {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}
    # batch: no probes; only limits, which the API server copies into the requests
    report = {"securityContext": RESTRICTED_POD, "restartPolicy": "OnFailure",
              "containers": [{"name": "report", "image": GOOD_IMAGE, "imagePullPolicy": "Always",
                              "resources": {"limits": RESOURCES["limits"]}, "securityContext": SAFE_CONTEXT}]}
    # a pod in a user namespace may be root inside it (runAsUser 0 without runAsNonRoot)
    userns = {"hostUsers": False, "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
              "containers": [good_container("app")]}
    return [
        namespace(GOOD, "restricted"),
        with_template("Deployment", "api", GOOD, api),
        with_template("CronJob", "report", GOOD, report),
        pod("userns", GOOD, userns),
    ]


# -- offenders -----------------------------------------------------------------------------

def bad_objects(live: bool = False) -> list[dict]:
    """Offenders of every control, in creation order (owners first).

    ``live``: objects the API server accepts. A live Pod gets its ephemeral container through
    the ephemeralcontainers subresource (add_ephemeral_container), and validation refuses an
    Unmasked /proc outside a user namespace, so the baseline /proc rule has no live offender.
    """
    web = {
        "hostPID": True,
        "securityContext": {"seccompProfile": {"type": "Unconfined"}, "runAsNonRoot": False,
                            "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                        {"name": "kernel.msgmax", "value": "65536"}],
                            "seLinuxOptions": {"type": "spc_t"}},
        "initContainers": [{"name": "setup", "image": "registry.example.com/shop/setup:2.0",
                            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}],
        "containers": [{"name": "app", "image": "registry.example.com/shop/web:1.2", "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080, "hostPort": 8080}],
                        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": 8080, "host": "10.0.0.1"}},
                        "securityContext": {"privileged": True, "readOnlyRootFilesystem": False,
                                            "capabilities": {"add": ["NET_RAW", "NET_BIND_SERVICE"]},
                                            "appArmorProfile": {"type": "Unconfined"}}}],
        "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}},
                    {"name": "share", "nfs": {"server": "nfs.example.com", "path": "/exports"}},
                    {"name": "scratch"}],
    }
    nightly = {"restartPolicy": "OnFailure",
               "securityContext": {"runAsUser": 0},
               "containers": [{"name": "job", "image": "busybox",
                               "securityContext": {"allowPrivilegeEscalation": True, "runAsNonRoot": True,
                                                   "seLinuxOptions": {"user": "system_u", "role": "sysadm_r"}}}]}
    debug = {"securityContext": RESTRICTED_POD,
             "containers": [good_container("app")]}
    if not live:
        debug["ephemeralContainers"] = [DEBUGGER]
        nightly["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    userns = {"hostUsers": False, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
              "containers": [good_container("app", securityContext={**SAFE_CONTEXT, "procMount": "Unmasked"})]}
    objs = [
        namespace(BAD, "privileged"),
        with_template("Deployment", "web", BAD, web),
        with_template("ReplicaSet", "web-5d8", BAD, web, owned_by=owner("Deployment", "web")),
        pod("web-5d8-x", BAD, web, owner=owner("ReplicaSet", "web-5d8")),
        with_template("CronJob", "nightly", BAD, nightly),
        pod("debug", BAD, debug,
            annotations={"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
        pod("userns-unmasked", BAD, userns),
        # what Kubernetes' own components do in kube-system is not judged
        pod("kube-proxy-x", SYSTEM, {"hostNetwork": True, "containers": [
            {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.37.2", "securityContext": {"privileged": True}}]}),
        pod("win-host", BAD, WINDOWS_SPEC),
    ]
    return objs


# -- an owned Pod running what its owner's template lacks -----------------------------------

OWNED = "k4c-ct-owned"
#: ``kubectl debug --profile=sysadmin``: a privileged ephemeral container
PRIVILEGED_DEBUGGER = {"name": "shell", "image": GOOD_IMAGE, "securityContext": {"privileged": True}}
#: a sidecar a mesh's webhook injects into every Pod: compliant, but without probes
INJECTED_SIDECAR = {k: v for k, v in good_container("mesh-proxy", restartPolicy="Always").items()
                    if not k.endswith("Probe")}


def owned_objects(live: bool = False) -> list[dict]:
    """A Deployment whose template breaks one pod-level rule (hostIPC) and nothing else, its
    ReplicaSet, and a Pod of it with an injected sidecar and (unless ``live``: then added
    through the ephemeralcontainers subresource) a privileged ephemeral container."""
    template = copy.deepcopy(next(o for o in good_objects() if o["kind"] == "Deployment")["spec"]["template"]["spec"])
    template["hostIPC"] = True
    pod_spec = copy.deepcopy(template)
    pod_spec["initContainers"].append(copy.deepcopy(INJECTED_SIDECAR))
    if not live:
        pod_spec["ephemeralContainers"] = [copy.deepcopy(PRIVILEGED_DEBUGGER)]
    return [namespace(OWNED, "privileged"),
            with_template("Deployment", "api", OWNED, template),
            with_template("ReplicaSet", "api-5d8", OWNED, template, owned_by=owner("Deployment", "api")),
            pod("api-5d8-x", OWNED, pod_spec, owner=owner("ReplicaSet", "api-5d8"))]


def owned_expectations() -> dict[str, tuple[str, list[dict], list[dict]]]:
    """What the container suite reports on owned_objects(): the Pod's own containers under the
    Pod, the template's pod-level offence under the Deployment only, the rest PASS."""
    d, p = {"kind": "Deployment", "namespace": OWNED, "name": "api"}, {"kind": "Pod", "namespace": OWNED,
                                                                       "name": "api-5d8-x"}
    shell, sidecar = {**p, "container": "ephemeralContainers/shell"}, {**p, "container": "initContainers/mesh-proxy"}
    template_containers = [{"container": "containers/api"}, {"container": "initContainers/migrate"}]
    exp = {cid: ("PASS", [], []) for cid in ALL_IDS}
    exp["K4C-CT-PSB-001"] = ("FAIL", [{**shell, "field": "spec.ephemeralContainers[0].securityContext.privileged",
                                       "value": "true"}], [{"kind": "Deployment"}, {"kind": "ReplicaSet"}])
    exp["K4C-CT-PSB-003"] = ("FAIL", [{**d, "container": "(pod)", "field": "spec.template.spec.hostIPC"}],
                             [{"kind": "Pod"}])
    exp["K4C-CT-PSR-002"] = ("FAIL", [{**shell, "field": "spec.ephemeralContainers[0].securityContext."
                                                          "allowPrivilegeEscalation"}],
                             [{"kind": "Deployment"}, {"container": "initContainers/mesh-proxy"}])
    exp["K4C-CT-PSR-006"] = ("FAIL", [shell], [{"kind": "Deployment"}, *template_containers])
    exp["K4C-CT-WL-003"] = ("FAIL", [shell], [{"kind": "Deployment"}, *template_containers])
    # the injected sidecar runs all along: it needs probes, as the regular containers do
    exp["K4C-CT-WL-004"] = ("FAIL", [{**sidecar, "field": "spec.initContainers[1].livenessProbe"},
                                     {**sidecar, "field": "spec.initContainers[1].readinessProbe"}],
                            [{"kind": "Deployment"}, *template_containers])
    return exp


DEBUGGER = {"name": "dbg", "image": "registry.example.com/tools/debug:latest",
            "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}
# A Windows HostProcess pod: exempt from the Linux-only restricted rules, not from baseline.
WINDOWS_SPEC = {"os": {"name": "windows"}, "hostNetwork": True,
                "securityContext": {"runAsNonRoot": True, "windowsOptions": {"hostProcess": True,
                                                                             "runAsUserName": "NT AUTHORITY\\SYSTEM"}},
                "containers": [{"name": "agent", "image": GOOD_IMAGE, "resources": RESOURCES, **PROBES}]}


def _row(kind: str, name: str, container: str = "(pod)", field: str = "", value: str | None = None) -> dict:
    row = {"kind": kind, "namespace": BAD, "name": name, "container": container}
    if field:
        row["field"] = field
    if value is not None:
        row["value"] = value
    return row


WEB = "spec.template.spec"
NIGHTLY = "spec.jobTemplate.spec.template.spec"

#: rows that would mean owners were not de-duplicated or system namespaces were judged
NOT_OWNED = [{"kind": "ReplicaSet"}, {"name": "web-5d8-x"}, {"namespace": GOOD}, {"namespace": SYSTEM}]


def bad_expectations(live: bool = False) -> dict[str, tuple[str, list[dict], list[dict]]]:
    """``id -> (outcome, rows that must be offenders, rows that must not be)`` for bad_objects()."""
    d, n, p = "Deployment", "CronJob", "Pod"
    win = {"name": "win-host"}
    exp = {
        "K4C-CT-PSB-001": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].securityContext.privileged",
                                         "true")], []),
        "K4C-CT-PSB-002": ("FAIL", [_row(p, "win-host", field="spec.securityContext.windowsOptions.hostProcess",
                                         value="true")], []),
        "K4C-CT-PSB-003": ("FAIL", [_row(d, "web", field=f"{WEB}.hostPID", value="true"),
                                    _row(p, "win-host", field="spec.hostNetwork", value="true")], []),
        "K4C-CT-PSB-004": ("FAIL", [_row(d, "web", field=f"{WEB}.volumes[0].hostPath", value="/var/run/docker.sock")],
                           [{"volume": "share"}]),
        "K4C-CT-PSB-005": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].ports[0].hostPort", "8080")],
                           []),
        "K4C-CT-PSB-006": ("FAIL", [_row(d, "web", "containers/app",
                                         f"{WEB}.containers[0].livenessProbe.httpGet.host", "10.0.0.1")], []),
        "K4C-CT-PSB-007": ("FAIL", [_row(d, "web", "containers/app",
                                         f"{WEB}.containers[0].securityContext.capabilities.add", "NET_RAW"),
                                    _row(p, "debug", "ephemeralContainers/dbg",
                                         "spec.ephemeralContainers[0].securityContext.capabilities.add", "SYS_PTRACE")],
                           []),
        "K4C-CT-PSB-008": ("FAIL", [_row(d, "web", "containers/app",
                                         f"{WEB}.containers[0].securityContext.appArmorProfile.type", "Unconfined"),
                                    _row(p, "debug", field="metadata.annotations[container.apparmor.security.beta."
                                                           "kubernetes.io/app]", value="unconfined")], []),
        "K4C-CT-PSB-009": ("FAIL", [_row(d, "web", field=f"{WEB}.securityContext.seLinuxOptions", value="type=spc_t"),
                                    _row(n, "nightly", "containers/job", f"{NIGHTLY}.containers[0].securityContext."
                                         "seLinuxOptions", "user=system_u; role=sysadm_r")], []),
        # hostUsers: false makes Unmasked acceptable at baseline
        "K4C-CT-PSB-010": ("FAIL", [_row(n, "nightly", "containers/job",
                                         f"{NIGHTLY}.containers[0].securityContext.procMount", "Unmasked")],
                           [{"name": "userns-unmasked"}]),
        # the init container's own RuntimeDefault is fine; the pod's Unconfined is not
        "K4C-CT-PSB-011": ("FAIL", [_row(d, "web", field=f"{WEB}.securityContext.seccompProfile.type", value="Unconfined")],
                           [{"container": "initContainers/setup"}]),
        "K4C-CT-PSB-012": ("FAIL", [_row(d, "web", field=f"{WEB}.securityContext.sysctls[1].name", value="kernel.msgmax")],
                           [{"value": "net.ipv4.tcp_syncookies"}]),
        # a volume naming no source is an emptyDir
        "K4C-CT-PSR-001": ("FAIL", [_row(d, "web", field=f"{WEB}.volumes[0].hostPath", value="hostPath"),
                                    _row(d, "web", field=f"{WEB}.volumes[1].nfs", value="nfs")],
                           [{"volume": "scratch"}]),
        # Windows pods are exempt from the Linux-only restricted rules (PSR-002, 005, 006)
        "K4C-CT-PSR-002": ("FAIL", [
            _row(d, "web", "initContainers/setup", f"{WEB}.initContainers[0].securityContext.allowPrivilegeEscalation",
                 "true (unset: runtime default)"),
            _row(n, "nightly", "containers/job", f"{NIGHTLY}.containers[0].securityContext.allowPrivilegeEscalation",
                 "true"),
            _row(p, "debug", "ephemeralContainers/dbg")], [win, {"name": "debug", "container": "containers/app"}]),
        # the pod's false is reported once; containers that set true themselves are fine
        "K4C-CT-PSR-003": ("FAIL", [_row(d, "web", field=f"{WEB}.securityContext.runAsNonRoot", value="false")],
                           [{"container": "initContainers/setup"}, {"name": "web", "container": "containers/app"},
                            {"name": "nightly"}, {"name": "userns-unmasked"}, {"name": "debug"}, win]),
        "K4C-CT-PSR-004": ("FAIL", [_row(n, "nightly", field=f"{NIGHTLY}.securityContext.runAsUser", value="0")],
                           [{"name": "userns-unmasked"}]),
        "K4C-CT-PSR-005": ("FAIL", [
            _row(d, "web", field=f"{WEB}.securityContext.seccompProfile.type", value="Unconfined"),
            _row(n, "nightly", "containers/job", f"{NIGHTLY}.containers[0].securityContext.seccompProfile.type",
                 "unset in the container and the pod")],
            [{"container": "initContainers/setup"}, {"name": "web", "container": "containers/app"}, {"name": "debug"},
             win]),
        "K4C-CT-PSR-006": ("FAIL", [
            _row(d, "web", "containers/app", f"{WEB}.containers[0].securityContext.capabilities.drop", "unset"),
            _row(d, "web", "containers/app", f"{WEB}.containers[0].securityContext.capabilities.add", "NET_RAW"),
            _row(d, "web", "initContainers/setup", f"{WEB}.initContainers[0].securityContext.capabilities.drop"),
            _row(p, "debug", "ephemeralContainers/dbg", "spec.ephemeralContainers[0].securityContext.capabilities.add",
                 "SYS_PTRACE")],
            [{"name": "debug", "container": "containers/app"}, win]),
        "K4C-CT-PSR-007": ("FAIL", [_row(p, "userns-unmasked", "containers/app",
                                         "spec.containers[0].securityContext.procMount", "Unmasked")], []),
        # a memory limit stands for the missing memory request
        "K4C-CT-WL-001": ("FAIL", [_row(d, "web", "initContainers/setup", f"{WEB}.initContainers[0].resources.requests",
                                        "no cpu or memory request"),
                                   _row(n, "nightly", "containers/job")],
                          [{"name": "web", "container": "containers/app"}, {"container": "ephemeralContainers/dbg"},
                           {"name": "debug"}]),
        "K4C-CT-WL-002": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].resources.limits",
                                        "no cpu limit")],
                          [{"container": "ephemeralContainers/dbg"}]),
        "K4C-CT-WL-003": ("FAIL", [_row(d, "web", "containers/app",
                                        f"{WEB}.containers[0].securityContext.readOnlyRootFilesystem", "false"),
                                   _row(d, "web", "initContainers/setup", value="false (unset: runtime default)"),
                                   _row(p, "debug", "ephemeralContainers/dbg")], [win]),
        # batch workloads and init containers need no probes
        "K4C-CT-WL-004": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].readinessProbe", "unset")],
                          [{"field": f"{WEB}.containers[0].livenessProbe"}, {"name": "nightly"},
                           {"container": "initContainers/setup"}, {"name": "debug"}]),
        "K4C-CT-WL-005": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].imagePullPolicy",
                                        "IfNotPresent"),
                                   _row(d, "web", "initContainers/setup",
                                        value="IfNotPresent (unset: the default for a tag)")],
                          [{"name": "nightly"}, {"container": "ephemeralContainers/dbg"}, {"name": "debug"}]),
        "K4C-CT-WL-006": ("FAIL", [_row(n, "nightly", "containers/job", f"{NIGHTLY}.containers[0].image", "busybox")],
                          [{"name": "web"}, {"name": "debug"}]),
        "K4C-CT-WL-007": ("FAIL", [_row(d, "web", "containers/app", f"{WEB}.containers[0].image",
                                        "registry.example.com/shop/web:1.2"),
                                   _row(p, "debug", "ephemeralContainers/dbg")],
                          [{"name": "debug", "container": "containers/app"}]),
        "K4C-CT-WL-008": ("FAIL", [_row(n, "nightly", "containers/job", value="busybox"),
                                   _row(p, "debug", "ephemeralContainers/dbg",
                                        value="registry.example.com/tools/debug:latest")], [{"name": "web"}]),
    }
    if live:
        exp["K4C-CT-PSB-010"] = ("PASS", [], [])
        # the API server fills in imagePullPolicy: the default is then a value like any other
        exp["K4C-CT-WL-005"][1][1]["value"] = "IfNotPresent"
        exp["K4C-CT-PSR-007"][1].insert(0, _row(p, "userns-unmasked", "containers/app"))
    else:
        exp["K4C-CT-PSR-007"][1].append(_row(n, "nightly", "containers/job"))
    return {cid: (outcome, present, [*absent, *NOT_OWNED]) for cid, (outcome, present, absent) in exp.items()}


# -- checking a run's results ---------------------------------------------------------------

def named(rows: list[dict], **fields: str) -> bool:
    """Whether a row has all ``fields`` (a value ending in ``*`` matches as a prefix)."""
    def match(value: Any, wanted: str) -> bool:
        value = str(value)
        return value.startswith(wanted[:-1]) if wanted.endswith("*") else value == wanted
    return any(all(match(r.get(k, ""), v) for k, v in fields.items()) for r in rows)


def check(res, expectations: dict[str, tuple[str, list[dict], list[dict]]]) -> None:
    """Every control's outcome and offenders as expected; all mismatches reported at once."""
    __tracebackhide__ = True
    problems = []
    for cid, (outcome, present, absent) in expectations.items():
        record = res.control(cid)
        if record["outcome"] != outcome:
            problems.append(f"{cid}: {record['outcome']} ({record['reason']}), expected {outcome}")
            continue
        rows = res.offenders(cid)
        problems += [f"{cid}: no offender {want}" for want in present if not named(rows, **want)]
        problems += [f"{cid}: unexpected offender {bad}" for bad in absent if named(rows, **bad)]
    assert not problems, "\n".join(problems) + f"\n{res.stdout[-4000:]}"
