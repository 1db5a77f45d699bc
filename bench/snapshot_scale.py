#!/usr/bin/env python3
"""Scale benchmark: the bundled suites on a synthetic snapshot of a large cluster.

Generates a snapshot the way ``k4c collect`` would write one for a cluster at the Kubernetes
scalability envelope (by default 150,000 pods, 10,000 namespaces, 5,000 nodes), then runs the
suites over it in a subprocess (``pytest --k4c-snapshot``) and compares that run with the time
to merely parse the same file. See bench/README.md for the targets.

    .venv/bin/python bench/snapshot_scale.py                      # full scale
    .venv/bin/python bench/snapshot_scale.py --pods 15000 --namespaces 1000 --nodes 500
    .venv/bin/python bench/snapshot_scale.py --pods 15000 --profile   # where the time goes

The snapshot is plain JSON (not gzip), so the floor is pure parsing. It is kept in --workdir
(default: a temporary folder) and reused when it already exists with the same parameters.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from random import Random
from typing import Any, Iterator

import orjson

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 2048.0
TARGET_RATIO = 3.0
PODS_PER_DEPLOYMENT = 3
DAEMONSETS = ("kube-proxy", "node-exporter", "cni-agent")
REDACTED = "<redacted>"
TS = "2025-01-15T08:30:00Z"

_KIND_CODE = {"Namespace": 1, "Node": 2, "Pod": 3, "ServiceAccount": 4, "Service": 5, "ConfigMap": 6,
              "Secret": 7, "Deployment": 8, "ReplicaSet": 9, "DaemonSet": 10, "Job": 11, "CronJob": 12,
              "Role": 13, "RoleBinding": 14, "ClusterRole": 15, "ClusterRoleBinding": 16, "NetworkPolicy": 17}


def uid(kind: str, i: int) -> str:
    """A stable, unique, UUID-shaped uid, so owners and their children agree without a lookup."""
    return f"{_KIND_CODE[kind]:08x}-0000-4000-8000-{i:012x}"


def meta(kind: str, i: int, name: str, namespace: str | None = None, **extra: Any) -> dict:
    m: dict[str, Any] = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    m.update({"uid": uid(kind, i), "resourceVersion": str(1000 + i), "creationTimestamp": TS})
    m.update(extra)
    return m


class Layout:
    """Who is where: namespaces, deployments, daemonsets, and how many pods each runs."""

    def __init__(self, pods: int, namespaces: int, nodes: int):
        self.pods, self.nodes = pods, max(nodes, 1)
        self.namespaces = ["kube-system", "kube-public", "kube-node-lease", "default"] + \
            [f"team-{i:05d}" for i in range(max(namespaces - 4, 1))]
        # DaemonSets put a pod on every node; they are about a tenth of the pods of a big cluster.
        self.ds_pods_each = min(self.nodes, pods // 10 // len(DAEMONSETS))
        dep_pods = pods - self.ds_pods_each * len(DAEMONSETS)
        self.deployments = -(-dep_pods // PODS_PER_DEPLOYMENT)
        self.dep_pods = dep_pods
        self.app_namespaces = self.namespaces[3:]  # default and the team namespaces

    def deployment_ns(self, d: int) -> str:
        return self.app_namespaces[d % len(self.app_namespaces)]

    def replicas(self, d: int) -> int:
        full, rest = divmod(self.dep_pods, PODS_PER_DEPLOYMENT)
        return PODS_PER_DEPLOYMENT if d < full else rest


# -- object generators --------------------------------------------------------------------------

def pod_spec(rng: Random, app: str, d: int, node: str | None = None) -> dict:
    """A pod spec of a realistic size (~2 KB as JSON) with an app and a sidecar container."""
    bad = d % 50 == 0
    secret_env = d % 7 == 0
    env = [{"name": "APP_NAME", "value": REDACTED}, {"name": "LOG_LEVEL", "value": REDACTED},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]
    if secret_env:
        env.append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{app}-db", "key": "password"}}})
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    main = {
        "name": app, "image": f"registry.example.com/team/{app}:1.{d % 40}.{d * 7 % 20}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10,
                          "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                         {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "readOnly": True}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "securityContext": {"privileged": True} if bad else restricted,
    }
    sidecar = {
        "name": "log-shipper", "image": "registry.example.com/platform/log-shipper:3.2.1",
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": restricted,
    }
    spec = {
        "volumes": [
            {"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
            {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.namespace"}}]}}]}},
        ],
        "containers": [main, sidecar],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default" if d % 3 == 0 else app,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "priority": 0, "enableServiceLinks": True,
    }
    if d % 10 == 0:
        spec["volumes"].append({"name": "host-logs", "hostPath": {"path": "/var/log", "type": ""}})
    if node:
        spec["nodeName"] = node
    return spec


def pod_status(rng: Random, spec: dict, node: str) -> dict:
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return {
        "phase": "Running",
        "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": TS}
                       for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
        "hostIP": f"172.16.{rng.randrange(256)}.{rng.randrange(1, 255)}", "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": TS, "qosClass": "Burstable",
        "containerStatuses": [{
            "name": c["name"], "state": {"running": {"startedAt": TS}}, "lastState": {}, "ready": True,
            "restartCount": rng.randrange(3), "image": c["image"],
            "imageID": f"{c['image'].split(':')[0]}@sha256:{rng.getrandbits(256):064x}",
            "containerID": f"containerd://{rng.getrandbits(256):064x}", "started": True}
            for c in spec["containers"]],
    }


def template(app: str, labels: dict, spec: dict) -> dict:
    return {"metadata": {"labels": labels, "annotations": {"kubectl.kubernetes.io/restartedAt": TS}}, "spec": spec}


def gen_workloads(rng: Random, lay: Layout) -> dict[str, list[dict] | Iterator[dict]]:
    """Deployments, ReplicaSets (the current one, and an old one for every other Deployment),
    DaemonSets and their Pods, linked by ownerReferences."""
    deployments, replicasets, daemonsets = [], [], []

    def pods() -> Iterator[dict]:
        p = 0
        for d in range(lay.deployments):
            ns, app = lay.deployment_ns(d), f"app-{d:06d}"
            rs_name = f"{app}-{d * 7919 % 0xfffffff:07x}"
            for r in range(lay.replicas(d)):
                node = f"node-{(p * 31) % lay.nodes:05d}"
                spec = pod_spec(rng, app, d, node)
                yield {"metadata": meta("Pod", p, f"{rs_name}-{r:05d}", ns,
                                        labels={"app": app, "pod-template-hash": rs_name[-7:], "team": ns},
                                        ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                          "name": rs_name, "uid": uid("ReplicaSet", 2 * d),
                                                          "controller": True, "blockOwnerDeletion": True}]),
                       "spec": spec, "status": pod_status(rng, spec, node)}
                p += 1
        for s, ds in enumerate(DAEMONSETS):
            for n in range(lay.ds_pods_each):
                node = f"node-{n:05d}"
                spec = pod_spec(rng, ds, 1 + s, node)
                spec["hostNetwork"] = ds != "node-exporter"
                yield {"metadata": meta("Pod", p, f"{ds}-{n:05x}", "kube-system", labels={"app": ds},
                                        ownerReferences=[{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds,
                                                          "uid": uid("DaemonSet", s), "controller": True,
                                                          "blockOwnerDeletion": True}]),
                       "spec": spec, "status": pod_status(rng, spec, node)}
                p += 1

    for d in range(lay.deployments):
        ns, app = lay.deployment_ns(d), f"app-{d:06d}"
        labels = {"app": app}
        spec = pod_spec(rng, app, d)
        rs_name = f"{app}-{d * 7919 % 0xfffffff:07x}"
        deployments.append({
            "metadata": meta("Deployment", d, app, ns, labels=labels, generation=3,
                             annotations={"deployment.kubernetes.io/revision": "2"}),
            "spec": {"replicas": lay.replicas(d), "selector": {"matchLabels": labels},
                     "template": template(app, labels, spec),
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 3, "replicas": lay.replicas(d), "readyReplicas": lay.replicas(d)}})
        for old in ((0, 1) if d % 2 == 0 else (0,)):
            name = rs_name if old == 0 else f"{app}-{(d * 7919 + 1) % 0xfffffff:07x}"
            owner = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": uid("Deployment", d),
                      "controller": True, "blockOwnerDeletion": True}]
            replicasets.append({
                "metadata": meta("ReplicaSet", 2 * d + old, name, ns, labels={**labels, "pod-template-hash": name[-7:]},
                                 ownerReferences=owner),
                "spec": {"replicas": 0 if old else lay.replicas(d),
                         "selector": {"matchLabels": {**labels, "pod-template-hash": name[-7:]}},
                         "template": template(app, {**labels, "pod-template-hash": name[-7:]}, spec)},
                "status": {"replicas": 0 if old else lay.replicas(d), "observedGeneration": 1}})
    for s, ds in enumerate(DAEMONSETS):
        spec = pod_spec(rng, ds, 1 + s)
        spec["hostNetwork"] = ds != "node-exporter"
        daemonsets.append({"metadata": meta("DaemonSet", s, ds, "kube-system", labels={"app": ds}),
                           "spec": {"selector": {"matchLabels": {"app": ds}},
                                    "template": template(ds, {"app": ds}, spec)},
                           "status": {"desiredNumberScheduled": lay.ds_pods_each}})
    return {"apps/v1/deployments": deployments, "apps/v1/replicasets": replicasets,
            "apps/v1/daemonsets": daemonsets, "v1/pods": pods()}


def gen_namespaced(rng: Random, lay: Layout) -> dict[str, list[dict]]:
    """Per-namespace objects: service accounts, RBAC, network policies, config, secrets, services."""
    out: dict[str, list[dict]] = {k: [] for k in (
        "v1/namespaces", "v1/serviceaccounts", "v1/configmaps", "v1/secrets", "v1/services",
        "rbac.authorization.k8s.io/v1/roles", "rbac.authorization.k8s.io/v1/rolebindings",
        "networking.k8s.io/v1/networkpolicies", "batch/v1/cronjobs", "batch/v1/jobs")}
    ca = "-----BEGIN CERTIFICATE-----\n" + "MIIDBTCCAe2gAwIBAgIIb" * 50 + "\n-----END CERTIFICATE-----\n"
    for i, ns in enumerate(lay.namespaces):
        labels = {"kubernetes.io/metadata.name": ns}
        if i % 5 != 0:  # most namespaces enforce a Pod Security level
            labels["pod-security.kubernetes.io/enforce"] = "restricted" if i % 2 else "baseline"
        out["v1/namespaces"].append({"metadata": meta("Namespace", i, ns, labels=labels),
                                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        sa = {"metadata": meta("ServiceAccount", 2 * i, "default", ns)}
        if i % 4 == 0:
            sa["automountServiceAccountToken"] = False
        out["v1/serviceaccounts"].append(sa)
        out["v1/serviceaccounts"].append({"metadata": meta("ServiceAccount", 2 * i + 1, "app", ns),
                                          "automountServiceAccountToken": False})
        out["v1/configmaps"].append({"metadata": meta("ConfigMap", 2 * i, "kube-root-ca.crt", ns),
                                     "data": {"ca.crt": REDACTED}})
        out["v1/configmaps"].append({"metadata": meta("ConfigMap", 2 * i + 1, "app-config", ns),
                                     "data": {k: REDACTED for k in ("LOG_LEVEL", "FEATURES", "DB_HOST", "CACHE_TTL")}})
        for s in range(3):
            out["v1/secrets"].append({"metadata": meta("Secret", 3 * i + s, f"app-secret-{s}", ns), "type": "Opaque",
                                      "data": {k: REDACTED for k in ("username", "password", "token")}})
        role = f"{ns}-developer"
        rules = [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments", "services", "configmaps"],
                  "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                 {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
        if i % 9 == 0:
            rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]})
        if i % 25 == 0:
            rules.append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
        out["rbac.authorization.k8s.io/v1/roles"].append({"metadata": meta("Role", i, role, ns), "rules": rules})
        out["rbac.authorization.k8s.io/v1/rolebindings"].append({
            "metadata": meta("RoleBinding", 2 * i, role, ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{ns}-devs"},
                         {"kind": "ServiceAccount", "name": "app", "namespace": ns}]})
        out["rbac.authorization.k8s.io/v1/rolebindings"].append({
            "metadata": meta("RoleBinding", 2 * i + 1, "viewers", ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "auditors"}]})
        if i % 5 in (1, 2, 3):  # network policies in three namespaces of five
            out["networking.k8s.io/v1/networkpolicies"].append({
                "metadata": meta("NetworkPolicy", 2 * i, "default-deny", ns),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
            out["networking.k8s.io/v1/networkpolicies"].append({
                "metadata": meta("NetworkPolicy", 2 * i + 1, "allow-http", ns),
                "spec": {"podSelector": {"matchLabels": {"tier": "web"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
                                      "ports": [{"protocol": "TCP", "port": 8080}]}]}})
        if i % 10 == 0:
            spec = pod_spec(rng, "report", i)
            spec["restartPolicy"] = "OnFailure"
            out["batch/v1/cronjobs"].append({"metadata": meta("CronJob", i, "nightly-report", ns),
                                             "spec": {"schedule": "0 2 * * *",
                                                      "jobTemplate": {"spec": {"template": {"spec": spec}}}}})
    for d in range(lay.deployments):
        ns, app = lay.deployment_ns(d), f"app-{d:06d}"
        out["v1/services"].append({
            "metadata": meta("Service", d, app, ns, labels={"app": app}),
            "spec": {"type": "ClusterIP", "selector": {"app": app}, "clusterIP": f"10.96.{d // 250 % 256}.{d % 250 + 1}",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
            "status": {"loadBalancer": {}}})
    return out


def gen_cluster(rng: Random, lay: Layout) -> dict[str, list[dict]]:
    """Nodes and cluster-wide RBAC (a bootstrap-like set plus some risky additions)."""
    nodes = []
    for n in range(lay.nodes):
        name = f"node-{n:05d}"
        nodes.append({
            "metadata": meta("Node", n, name, labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                       "node.kubernetes.io/instance-type": "m6i.2xlarge",
                                                       "topology.kubernetes.io/zone": f"zone-{n % 3}"}),
            "spec": {"podCIDR": f"10.{n // 256 % 256}.{n % 256}.0/24", "providerID": f"aws:///zone-{n % 3}/i-{n:017x}"},
            "status": {
                "capacity": {"cpu": "8", "memory": "32211332Ki", "pods": "110"},
                "allocatable": {"cpu": "7910m", "memory": "31260036Ki", "pods": "110"},
                "conditions": [{"type": t, "status": "False" if t != "Ready" else "True", "lastHeartbeatTime": TS,
                                "lastTransitionTime": TS, "reason": f"Kubelet{t}", "message": "kubelet is posting ready status"}
                               for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")],
                "addresses": [{"type": "InternalIP", "address": f"172.16.{n // 256 % 256}.{n % 256}"},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.37.2", "containerRuntimeVersion": "containerd://2.1.0",
                             "kernelVersion": "6.8.0-1019-aws", "osImage": "Ubuntu 24.04 LTS",
                             "operatingSystem": "linux", "architecture": "amd64"},
                "images": [{"names": [f"registry.example.com/img-{k}@sha256:{rng.getrandbits(256):064x}"],
                            "sizeBytes": rng.randrange(10**6, 10**9)} for k in range(8)]}})
    cluster_roles, bindings = [], []
    verbs = ["get", "list", "watch"]
    for r in range(120):
        cluster_roles.append({"metadata": meta("ClusterRole", r, f"system:controller:c{r}",
                                               labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
                              "rules": [{"apiGroups": [""], "resources": ["pods", "secrets", "configmaps"],
                                         "verbs": verbs + (["create", "delete"] if r % 3 == 0 else [])}]})
        bindings.append({"metadata": meta("ClusterRoleBinding", r, f"system:controller:c{r}",
                                          labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": f"system:controller:c{r}"},
                         "subjects": [{"kind": "ServiceAccount", "name": f"c{r}", "namespace": "kube-system"}]})
    for r, name in enumerate(("cluster-admin", "admin", "edit", "view"), start=200):
        cluster_roles.append({"metadata": meta("ClusterRole", r, name, labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
                              "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}] if name == "cluster-admin"
                              else [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": verbs}]})
    bindings.append({"metadata": meta("ClusterRoleBinding", 300, "cluster-admin",
                                      labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]})
    for r in range(20):
        bindings.append({"metadata": meta("ClusterRoleBinding", 400 + r, f"oncall-admin-{r}"),
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"oncall-{r}@example.com"}]})
    # Each kubelet's /configz answer, as k4c collect records it (every 100th node weak).
    configz = [{"metadata": {"name": f"node-{n:05d}"}, "kubeletconfig": {
        "enableServer": True, "port": 10250, "rotateCertificates": True, "protectKernelDefaults": True,
        "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
                           "webhook": {"enabled": True, "cacheTTL": "2m0s"}, "anonymous": {"enabled": n % 100 == 0}},
        "authorization": {"mode": "Webhook"}, "makeIPTablesUtilChains": True,
        "streamingConnectionIdleTimeout": "4h0m0s", **({"readOnlyPort": 10255} if n % 100 == 0 else {}),
        "containerRuntimeEndpoint": "unix:///var/run/containerd/containerd.sock"}} for n in range(lay.nodes)]
    return {"v1/nodes": nodes, "nodes/configz": configz, "rbac.authorization.k8s.io/v1/clusterroles": cluster_roles,
            "rbac.authorization.k8s.io/v1/clusterrolebindings": bindings}


def write_snapshot(path: Path, pods: int, namespaces: int, nodes: int, seed: int = 4) -> dict[str, int]:
    """Write the synthetic snapshot item by item (the generator never holds all pods) and
    return the object count per kind."""
    from k4c_pytest.sources.kinds import KNOWN_KINDS

    rng = Random(seed)
    lay = Layout(pods, namespaces, nodes)
    kinds: dict[str, Any] = {}
    kinds.update(gen_cluster(rng, lay))
    kinds.update(gen_namespaced(rng, lay))
    kinds.update(gen_workloads(rng, lay))
    counts: dict[str, int] = {}
    tmp = path.with_name(path.name + ".tmp")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # Format 2 of k4c_pytest.sources.cluster_snapshot: a header, then per kind a line with its
    # count and one object a line, then the end line. The counts come first, so the objects go
    # to a scratch file that is appended after the header.
    body = path.with_name(path.name + ".body")
    with open(body, "wb") as fh:
        for kind in KNOWN_KINDS:
            api_version, kind_name = kind.api_version, kind.kind
            lines = [orjson.dumps({"apiVersion": api_version, "kind": kind_name, **obj}) + b"\n"
                     for obj in kinds.get(kind.key, ())]
            fh.write(orjson.dumps({"kind": kind.key, "count": len(lines)}) + b"\n")
            fh.writelines(lines)
            counts[kind.key] = len(lines)
            del lines
        # The pseudo-kind of the kubelets' configuration: records as k4c collect writes them.
        configz = [orjson.dumps(obj) + b"\n" for obj in kinds.get("nodes/configz", ())]
        fh.write(orjson.dumps({"kind": "nodes/configz", "count": len(configz)}) + b"\n")
        fh.writelines(configz)
        counts["nodes/configz"] = len(configz)
        fh.write(orjson.dumps({"end": "k4c-snapshot", "objects": sum(counts.values())}) + b"\n")
    header = {"format": "k4c-snapshot", "version": 2, "k4c_version": "bench", "started_at": now, "finished_at": now,
              "target": {"mode": "live", "context": "bench-synthetic", "server": "https://127.0.0.1:6443"},
              "server_version": "v1.37.2",
              "bench": {"pods": pods, "namespaces": namespaces, "nodes": nodes, "seed": seed},
              "kinds": {key: {"status": "listed", "collected_at": now, "count": n} for key, n in counts.items()}}
    with open(tmp, "wb") as out, open(body, "rb") as src:
        out.write(orjson.dumps(header) + b"\n")
        shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    body.unlink()
    os.replace(tmp, path)
    return counts


# -- measuring ----------------------------------------------------------------------------------

# Runs pytest in the child, optionally without the cyclic garbage collector (to measure its
# share) and under cProfile.
_RUNNER = """
import gc, sys, pytest
profile, no_gc, args = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
if no_gc:
    gc.disable()
if profile:
    import cProfile
    prof = cProfile.Profile()
    status = prof.runcall(pytest.main, args)
    prof.dump_stats(profile)
else:
    status = pytest.main(args)
sys.exit(int(status))
"""


def run_suites(snapshot: Path, workdir: Path, suites: list[str], profile: Path | None,
               no_gc: bool = False) -> tuple[float, float, int, dict]:
    """Run the suites on the snapshot in a subprocess: (wall s, peak RSS MiB, exit status, results)."""
    results_path = workdir / "results.json"
    results_path.unlink(missing_ok=True)
    root = REPO / "suites"
    paths = [str(root / s) for s in suites] if suites else [str(root)]
    argv = [sys.executable, "-c", _RUNNER, str(profile or ""), "1" if no_gc else "0", *paths,
            f"--k4c-snapshot={snapshot}", f"--k4c-json={results_path}", "-p", "no:cacheprovider", "-q",
            f"--rootdir={REPO}", "-o", "addopts=",
            # The synthetic workloads name images in registries that do not exist.
            "--k4c-no-cluster-images"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    # ru_maxrss of children is the largest of any child waited for, in KiB on Linux; this is
    # the only child this process has waited for.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if proc.returncode not in (0, 1) or not results:
        print(proc.stdout[-5000:], file=sys.stderr)
    return wall, peak, proc.returncode, results


def parse_times(snapshot: Path) -> dict[str, float]:
    """Seconds to merely parse the file: its bytes (already read) split into lines and each line
    parsed by json.loads / orjson.loads, the objects dropped as they come. This is the floor:
    any evaluation has to parse every object at least once."""
    data = snapshot.read_bytes()
    lines = data.split(b"\n")
    del data
    out = {}
    for name, loads in (("json.loads", json.loads), ("orjson.loads", orjson.loads)):
        gc.collect()
        t0 = time.perf_counter()
        for line in lines:
            if line:
                loads(line)
        out[name] = time.perf_counter() - t0
    del lines
    gc.collect()
    return out


def print_profile(profile: Path, limit: int = 30) -> None:
    import pstats

    stats = pstats.Stats(str(profile))
    print(f"\n-- top {limit} by own time --")
    stats.sort_stats("tottime").print_stats(limit)
    print(f"\n-- top {limit} by cumulative time --")
    stats.sort_stats("cumulative").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--pods", type=int, default=150_000, help="pods in the cluster (default: 150000)")
    parser.add_argument("--namespaces", type=int, default=10_000, help="namespaces (default: 10000)")
    parser.add_argument("--nodes", type=int, default=5_000, help="nodes (default: 5000)")
    parser.add_argument("--suite", action="append", default=[],
                        help="run only this suite of suites/ (default: all); repeatable")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the snapshot and results go (default: a temporary folder, removed afterwards)")
    parser.add_argument("--profile", action="store_true",
                        help="run the suites under cProfile and print the biggest costs (slower)")
    parser.add_argument("--no-gc", action="store_true",
                        help="run the suites with Python's cyclic garbage collector disabled, to measure its share")
    args = parser.parse_args(argv)
    if min(args.pods, args.namespaces, args.nodes) < 1:
        parser.error("--pods, --namespaces and --nodes must be at least 1")

    with tempfile.TemporaryDirectory(prefix="k4c-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        snapshot = workdir / f"snapshot-v2-{args.pods}p-{args.namespaces}ns-{args.nodes}n.json"
        if snapshot.exists():
            print(f"reusing {snapshot}")
        else:
            t0 = time.perf_counter()
            counts = write_snapshot(snapshot, args.pods, args.namespaces, args.nodes)
            print(f"generated {snapshot} in {time.perf_counter() - t0:.1f} s: "
                  + ", ".join(f"{k.rsplit('/', 1)[1]} {v}" for k, v in counts.items() if v))
        size = snapshot.stat().st_size
        profile = workdir / "suites.prof" if args.profile else None
        wall, peak, status, results = run_suites(snapshot, workdir, args.suite, profile, args.no_gc)
        parse = parse_times(snapshot)
        t_json = parse["json.loads"]
        totals = results.get("totals", {})
        print(f"\nsnapshot: {size / 1048576:.0f} MiB of JSON; pytest exit status {status}; outcomes: "
              + ", ".join(f"{n} {o}" for o, n in totals.items() if n))
        rows = [("wall s" + (" (gc off)" if args.no_gc else ""), f"{wall:.1f}", f"<= {TARGET_SECONDS:.0f}"),
                ("peak RSS MiB", f"{peak:.0f}", f"<= {TARGET_RSS_MIB:.0f}")]
        rows += [(f"{name} s", f"{t:.1f}", "") for name, t in parse.items()]
        rows += [("ratio wall / json.loads", f"{wall / t_json:.1f}", f"<= {TARGET_RATIO:.0f}"),
                 ("ratio wall / orjson.loads", f"{wall / parse['orjson.loads']:.1f}", "")]
        print(f"\n{'measure':<28}{'value':>10}  target")
        for name, value, target in rows:
            print(f"{name:<28}{value:>10}  {target}")
        slow = sorted(results.get("controls", []), key=lambda r: -r.get("duration_seconds", 0))[:5]
        if slow:
            print("\nslowest controls (the first to read a kind pays for loading it):")
            for r in slow:
                print(f"  {r['duration_seconds']:8.2f} s  {r['id']}  {r['outcome']}")
        if profile:
            print_profile(profile)
        met = wall <= TARGET_SECONDS and peak <= TARGET_RSS_MIB and wall / t_json <= TARGET_RATIO
        print(f"\ntargets {'met' if met else 'NOT met'}")
        if status not in (0, 1) or not results:
            return 1
        return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
