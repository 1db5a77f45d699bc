"""The effective security context of every container of a pod.

A container's setting comes from its own ``securityContext``, else from the pod's
``securityContext`` (for the fields both have), else from what the kubelet and the container
runtime do when nobody sets it. Scanners that read only one of the two levels report the most
common false results in this area (a pod-level ``runAsNonRoot: true`` missed, or an init
container forgotten), so every container-level control of the container suite asks here.

The merge follows the kubelet's ``DetermineEffectiveSecurityContext``: a container's field
replaces the pod's whole (``seLinuxOptions`` and ``seccompProfile`` included), except
``windowsOptions``, merged field by field. Init, regular and ephemeral containers are all
visited, in that order, as the Pod Security admission's checks do. A pod is a Windows pod when
``spec.os.name`` is ``windows``: the Linux-only fields (capabilities, seccomp, privilege
escalation, a read-only root, ...) mean nothing there and the API server rejects them.

A JSON ``null`` counts as unset, as a nil pointer does in the Go types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from k4c_pytest.workloads import CONTAINER_FIELDS

CONTAINER, POD, DEFAULT = "container", "pod", "default"

#: Fields a pod's securityContext sets for all its containers, and each container may override.
INHERITED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions", "seccompProfile",
             "appArmorProfile", "windowsOptions")
#: Fields only a container's securityContext has.
CONTAINER_ONLY = ("privileged", "allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem", "procMount")
WINDOWS_OPTIONS = ("gmsaCredentialSpecName", "gmsaCredentialSpec", "runAsUserName", "hostProcess")

#: What happens when neither the container nor the pod sets a field. None means "decided
#: elsewhere": the image's USER for runAsUser, the runtime's capability set, SELinux labels
#: the runtime assigns. Seccomp is Unconfined unless the node's kubelet runs with
#: ``seccompDefault``, which the API does not show, so k4c assumes the kubelet's own default.
RUNTIME_DEFAULTS: dict[str, Any] = {
    "privileged": False,
    "allowPrivilegeEscalation": True,
    "readOnlyRootFilesystem": False,
    "procMount": "Default",
    "runAsNonRoot": False,
    "runAsUser": None,
    "runAsGroup": None,
    "capabilities": None,
    "seLinuxOptions": None,
    "seccompProfile": {"type": "Unconfined"},
    "appArmorProfile": {"type": "RuntimeDefault"},
    "windowsOptions": None,
}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def is_windows(pod_spec: dict) -> bool:
    """Whether the pod declares itself a Windows pod (``spec.os.name: windows``)."""
    return _dict(pod_spec.get("os")).get("name") == "windows"


def in_user_namespace(pod_spec: dict) -> bool:
    """Whether the pod runs in its own user namespace (``spec.hostUsers: false``): root in the
    container is then not root on the node, which relaxes some Pod Security rules."""
    return pod_spec.get("hostUsers") is False


def pod_context(pod_spec: dict) -> dict:
    """The pod-level ``securityContext`` (empty when unset)."""
    return _dict(pod_spec.get("securityContext"))


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective field: its value and where it came from."""

    value: Any
    #: CONTAINER, POD or DEFAULT
    source: str
    #: the field's path below the pod spec ("containers[0].securityContext.runAsUser",
    #: "securityContext.runAsUser"), empty for a runtime default
    path: str

    @property
    def explicit(self) -> bool:
        return self.source != DEFAULT

    def describe(self) -> str:
        """The value for evidence: ``true``, ``Unconfined (runtime default)``, ``RuntimeDefault (pod)``."""
        shown = show(self.value)
        return {CONTAINER: shown, POD: f"{shown} (from the pod)", DEFAULT: f"{shown} (unset: runtime default)"}[self.source]


def show(value: Any) -> str:
    """A field value as evidence shows it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and set(value) <= {"type", "localhostProfile"} and "type" in value:
        return str(value["type"]) if not value.get("localhostProfile") else f"{value['type']}:{value['localhostProfile']}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={show(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value) or "[]"
    return str(value)


@dataclass(frozen=True, slots=True)
class ContainerContext:
    """A container of a pod and its effective security context."""

    #: "initContainers", "containers" or "ephemeralContainers"
    field: str
    index: int
    container: dict
    pod_spec: dict

    @property
    def name(self) -> str:
        return str(self.container.get("name") or self.index)

    @property
    def label(self) -> str:
        """How evidence names the container: ``containers/web``, ``initContainers/setup``."""
        return f"{self.field}/{self.name}"

    @property
    def windows(self) -> bool:
        return is_windows(self.pod_spec)

    @property
    def own(self) -> dict:
        """The container's own ``securityContext`` (empty when unset)."""
        return _dict(self.container.get("securityContext"))

    def path(self, *rest: str) -> str:
        """A path below the pod spec: ``path("securityContext", "privileged")`` ->
        ``containers[0].securityContext.privileged``."""
        return ".".join((f"{self.field}[{self.index}]", *rest))

    def explicit(self, name: str) -> Any:
        """The container's own value of a securityContext field, None when it does not set it."""
        return self.own.get(name)

    def get(self, name: str) -> Setting:
        """The effective value of a securityContext field and where it came from."""
        if name not in INHERITED and name not in CONTAINER_ONLY:
            raise KeyError(f"{name} is not a container securityContext field")
        own = self.explicit(name)
        pod = pod_context(self.pod_spec).get(name) if name in INHERITED else None
        if name == "windowsOptions" and own is not None and pod is not None:
            merged = dict(_dict(pod))
            merged.update({k: v for k, v in _dict(own).items() if k in WINDOWS_OPTIONS and v is not None})
            return Setting(merged, CONTAINER, self.path("securityContext", name))
        if own is not None:
            return Setting(own, CONTAINER, self.path("securityContext", name))
        if pod is not None:
            return Setting(pod, POD, f"securityContext.{name}")
        return Setting(RUNTIME_DEFAULTS[name], DEFAULT, "")

    def value(self, name: str) -> Any:
        """Shorthand for ``get(name).value``."""
        return self.get(name).value


def containers(pod_spec: dict) -> Iterator[ContainerContext]:
    """Every container of a pod spec, init and ephemeral ones included, with its context."""
    for field in CONTAINER_FIELDS:
        for i, c in enumerate(pod_spec.get(field) or ()):
            if isinstance(c, dict):
                yield ContainerContext(field, i, c, pod_spec)


POD_LEVEL = "(pod)"


def metadata_path(workload) -> str:
    """The path of the pod template's metadata in a workload object (``spec.template.metadata``)."""
    return workload.spec_path[:-len("spec")] + "metadata"


def offender(workload, path: str, value: Any, container: ContainerContext | None = None, *,
             under: str = "spec", **extra: Any) -> dict:
    """An evidence row: the workload (kind/namespace/name), the container (``(pod)`` for a
    pod-level field), the field's full path in the object and the value found there.

    ``path`` is below the pod spec, or below the pod template's metadata with ``under="metadata"``.
    """
    base = workload.spec_path if under == "spec" else metadata_path(workload)
    return workload.row(container=container.label if container is not None else POD_LEVEL,
                        field=f"{base}.{path}" if path else base,
                        value=value if isinstance(value, str) else show(value), **extra)
