"""Redaction of secret values, applied by every source before anything is cached.

Secret ``data``/``stringData``, ConfigMap ``data``/``binaryData``, container ``env`` values
and the ``kubectl.kubernetes.io/last-applied-configuration`` annotation (which repeats all of
the above in clear) never reach a control, a snapshot or a report. Keys stay, values go:
"which keys a Secret holds" is evidence, the values are not.
"""

from __future__ import annotations

from typing import Any

REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_DATA_FIELDS = {"Secret": ("data", "stringData"), "ConfigMap": ("data", "binaryData")}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# Where a pod spec sits in each workload kind: the fast path, which avoids walking every field
# of 150,000 pods.
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_PASSIVE_KINDS = frozenset({
    "Namespace", "Node", "ServiceAccount", "Service", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "NetworkPolicy",
})


def _redact_metadata(meta: Any) -> None:
    if isinstance(meta, dict):
        ann = meta.get("annotations")
        if isinstance(ann, dict) and LAST_APPLIED in ann:
            ann[LAST_APPLIED] = REDACTED


def _redact_env(container: Any) -> None:
    if not isinstance(container, dict):
        return
    env = container.get("env")
    if isinstance(env, list):
        for var in env:
            if isinstance(var, dict) and "value" in var:
                var["value"] = REDACTED


def _redact_pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    for field in _CONTAINER_LISTS:
        containers = spec.get(field)
        if isinstance(containers, list):
            for c in containers:
                _redact_env(c)


def _redact_generic(node: Any) -> None:
    """Walk an object of a kind k4c does not know (a custom resource may embed pod templates)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                for var in value:
                    if isinstance(var, dict) and "value" in var:
                        var["value"] = REDACTED
            elif key == "annotations" and isinstance(value, dict) and LAST_APPLIED in value:
                value[LAST_APPLIED] = REDACTED
            else:
                _redact_generic(value)
    elif isinstance(node, list):
        for value in node:
            _redact_generic(value)


def redact(obj: dict, kind: str | None = None) -> dict:
    """Redact a Kubernetes object in place and return it. Also drops ``managedFields``,
    which no control reads and which can be half of an object's size."""
    if not isinstance(obj, dict):
        return obj
    kind = kind or obj.get("kind")
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        _redact_metadata(meta)
    if kind in _DATA_FIELDS:
        for field in _DATA_FIELDS[kind]:
            data = obj.get(field)
            if isinstance(data, dict):
                obj[field] = {k: REDACTED for k in data}
            elif data is not None:
                obj[field] = REDACTED
        return obj
    path = _POD_SPEC_PATHS.get(kind)
    if path is not None:
        node: Any = obj
        for i, step in enumerate(path):
            node = node.get(step) if isinstance(node, dict) else None
            # Templates carry metadata of their own, with their own annotations.
            if step == "template" and isinstance(node, dict):
                _redact_metadata(node.get("metadata"))
            if step == "jobTemplate" and isinstance(node, dict):
                _redact_metadata(node.get("metadata"))
        _redact_pod_spec(node)
        return obj
    if kind in _PASSIVE_KINDS:
        return obj
    _redact_generic(obj)
    return obj
