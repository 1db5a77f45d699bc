"""Pod templates of every workload kind, de-duplicated by owner.

A Deployment's ReplicaSets and Pods run the Deployment's template, so a control reports the
Deployment once rather than the same finding on every replica. A Pod or ReplicaSet whose
controlling owner is not in the data (an operator's own kind, or a manifests folder) stands
for itself: it is the only template k4c has for it.

An owned Pod may still run what no template holds: an ephemeral container (``kubectl
debug``), or a container a mutating webhook injected (a mesh proxy, an agent). Such a Pod is a
workload of its own, judged for those containers only: its pod spec keeps every pod-level
field (its containers inherit the pod's securityContext), but the containers and volumes its
controller's template has are replaced by ``None`` (so indexes and field paths stay those of
the Pod, and :func:`containers` skips them), and :meth:`Workload.owns_pod_value` tells pod-level
controls which pod-level values are the Pod's own rather than the template's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TYPE_CHECKING, Iterator

import hashlib

import orjson

from k4c_pytest.outcomes import KindNotServed

if TYPE_CHECKING:
    from k4c_pytest.sources.cluster import ClusterSource

CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")

# kind -> path from the object to its pod template's {metadata, spec}
_TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# The order matters only for the report: owners first.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet",
                  "ReplicationController", "Pod")
#: The kinds whose template their Pods run (the others' templates are never compared with a Pod).
_POD_OWNERS = ("ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController", "Job")
#: The same kinds, each after every kind that can control it.
_OWNERS_FIRST = ("CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicationController", "Job",
                 "ReplicaSet", "Pod")


@dataclass(frozen=True, slots=True)
class Workload:
    """One pod template: a bare Pod or the top-level controller of its Pods."""

    kind: str
    namespace: str
    name: str
    obj: dict
    pod_metadata: dict
    pod_spec: dict
    #: the path from the object to the pod spec, for evidence ("spec.template.spec")
    spec_path: str
    #: for an owned Pod judged only for what its controller's template lacks: the ref of the
    #: workload that stands for its template ("Deployment/shop/web"); empty otherwise
    extra_of: str = ""
    #: that controller's pod template (``{"metadata": ..., "spec": ...}``)
    owner_template: dict | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def __repr__(self) -> str:
        # Short, so an assertion message lists offenders rather than whole objects.
        return f"<{self.ref}>"

    def containers(self) -> Iterator[tuple[str, int, dict]]:
        """Every container of the pod, init and ephemeral ones included: ``(field, index, container)``."""
        return containers(self.pod_spec)

    @property
    def service_account(self) -> str:
        """The name of the service account its pods run as (``default`` when none is set)."""
        return service_account_name(self.pod_spec)

    def field_path(self, field: str, index: int, *rest: str) -> str:
        """The path of a container field in this object, for evidence:
        ``field_path("containers", 0, "env[1]")`` -> ``spec.template.spec.containers[0].env[1]``."""
        return ".".join((f"{self.spec_path}.{field}[{index}]", *rest))

    def row(self, **extra) -> dict:
        """An evidence row naming this workload."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, **extra}

    def owns_pod_value(self, *path: str, under: str = "spec") -> bool:
        """Whether the pod-level value at ``path`` (below the pod spec, or below the pod's
        metadata with ``under="metadata"``) is this workload's to judge: always, unless this is
        a Pod judged for its extra containers, where only a value that differs from its
        controller's template is (a webhook or an edit set it); the template's own value is
        judged, and reported, on the workload that stands for the template."""
        if self.owner_template is None:
            return True
        mine = self.pod_spec if under == "spec" else self.pod_metadata
        return _dig(mine, path) != _dig(self.owner_template.get(under), path)


def outside_system(cluster: "ClusterSource", settings) -> list[Workload]:
    """The workloads the container controls judge: every one outside the system namespaces
    (``k4c_system_namespaces``)."""
    return [w for w in cluster.workloads() if not settings.is_system_namespace(w.namespace)]


def note_scope(evidence, settings, what: str, *, init_and_ephemeral: bool = True) -> None:
    """The evidence note of a container control: what it checked, of which workloads."""
    containers = "; init and ephemeral containers included, and" if init_and_ephemeral else ", and"
    evidence.note(f"Checked {what} of every workload outside the system namespaces "
                  f"({', '.join(sorted(settings.system_namespaces))}), each pod template once under its "
                  f"top-level owner{containers} an owned Pod's containers its owner's template lacks "
                  "(kubectl debug, webhook injection) under the Pod.")


def service_account_name(pod_spec: dict) -> str:
    """The service account a pod spec runs as: ``serviceAccountName``, else the deprecated
    ``serviceAccount``, else ``default`` (what the API server's admission fills in)."""
    return pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"


@dataclass(frozen=True, slots=True)
class TokenAutomount:
    """Whether a pod gets its service-account token mounted, and which setting decided it."""

    mounted: bool
    #: "pod spec", "ServiceAccount <ns>/<name>" or "default" (neither sets the field)
    decided_by: str


def token_automount(workload: Workload, service_accounts: dict[tuple[str, str], dict]) -> TokenAutomount:
    """The effective ``automountServiceAccountToken`` of a workload's pods.

    The pod spec's field wins; else its service account's field; else the token is mounted.
    ``service_accounts`` maps ``(namespace, name)`` to ServiceAccount objects; a service
    account that is not there (not created yet, or not in a manifests folder) sets nothing.
    """
    value = workload.pod_spec.get("automountServiceAccountToken")
    if isinstance(value, bool):
        return TokenAutomount(value, "pod spec")
    sa_name = workload.service_account
    sa = service_accounts.get((workload.namespace, sa_name))
    if sa is not None and isinstance(sa.get("automountServiceAccountToken"), bool):
        return TokenAutomount(sa["automountServiceAccountToken"], f"ServiceAccount {workload.namespace}/{sa_name}")
    return TokenAutomount(True, "default")


def _dig(node: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    # an empty object or list sets nothing, as an absent one
    return None if node in ({}, []) else node


def containers(pod_spec: dict) -> Iterator[tuple[str, int, dict]]:
    """Every container of a pod spec: ``(field, index, container)`` for init, regular and ephemeral containers."""
    for field in CONTAINER_FIELDS:
        for i, c in enumerate(pod_spec.get(field) or ()):
            if isinstance(c, dict):
                yield field, i, c


def template_of(kind: str, obj: dict) -> tuple[dict, dict, str] | None:
    """``(pod_metadata, pod_spec, spec_path)`` of a workload object, or None if it has no template."""
    path = _TEMPLATE_PATHS.get(kind)
    if path is None:
        return None
    node = obj
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    if not isinstance(node, dict):
        return None
    spec = node.get("spec")
    if not isinstance(spec, dict):
        return None
    meta = node.get("metadata")
    return (meta if isinstance(meta, dict) else {}), spec, ".".join((*path, "spec"))


def _controller(obj: dict) -> dict | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def _canon(value: Any) -> bytes:
    """A 16-byte fingerprint of a JSON value (keys sorted). Not orjson's output itself: each of
    its bytes objects keeps a 4 KiB buffer, 200 MiB for the templates of a 15,000-pod cluster."""
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class _TemplateDigest:
    """What :func:`collect` keeps of a controller's pod template to compare its Pods with: per
    container list, each container's name -> its image and securityContext; the volumes; the
    pod-level rest, serialized. Compact, so the templates of a large cluster's ReplicaSets cost
    little memory (a whole template per ReplicaSet would keep every streamed one alive)."""

    containers: dict[str, dict[Any, tuple[Any, bytes]]]
    volumes: frozenset[bytes]
    #: the pod-level rest as JSON text (a str is allocated at its size)
    pod_level: str
    #: fingerprint of the pod-level fields the Pod Security Standards judge
    judged: bytes = b""

    @classmethod
    def of(cls, pod_meta: dict | None, pod_spec: dict | None) -> "_TemplateDigest":
        spec = pod_spec if isinstance(pod_spec, dict) else {}
        containers = {field: {c.get("name"): _container_key(c) for c in spec.get(field) or () if isinstance(c, dict)}
                      for field in ("initContainers", "containers")}
        volumes = frozenset(_canon(v) for v in spec.get("volumes") or () if isinstance(v, dict))
        rest = {k: v for k, v in spec.items() if k not in CONTAINER_FIELDS and k != "volumes"}
        return cls(containers, volumes, orjson.dumps({"metadata": pod_meta or {}, "spec": rest}).decode(),
                   _judged(spec))

    def template(self) -> dict:
        """The template's pod-level fields (``{"metadata": ..., "spec": ...}``, containers and
        volumes left out), for :meth:`Workload.owns_pod_value`."""
        return orjson.loads(self.pod_level)


def _container_key(c: dict) -> tuple[Any, bytes]:
    # A webhook that rewrites images or security contexts changes these.
    return c.get("image") or None, _canon(c.get("securityContext") or None)


def extra_spec(pod_spec: dict, template_spec: "dict | _TemplateDigest | None") -> dict | None:
    """A copy of an owned Pod's spec with the containers and volumes of its controller's
    template replaced by None; None when every container is the template's.

    A container is the template's when the template has one of that name in the same list
    (``initContainers``, ``containers``) with the same image and securityContext; an ephemeral
    container never is. A volume is the template's when the template has an equal one. A Pod
    with no container of its own is still returned (every container None) when its judged
    pod-level fields (host namespaces, securityContext, os) differ from the template's or it
    mounts a host path the template lacks: a webhook changed what the template promised."""
    digest = template_spec if isinstance(template_spec, _TemplateDigest) else _TemplateDigest.of({}, template_spec)
    out = dict(pod_spec)
    extra = False
    for field in CONTAINER_FIELDS:
        items = pod_spec.get(field)
        if not isinstance(items, list):
            continue
        known = digest.containers.get(field, {})
        kept: list[dict | None] = []
        for c in items:
            own = isinstance(c, dict) and (field == "ephemeralContainers" or c.get("name") not in known
                                           or _container_key(c) != known[c.get("name")])
            kept.append(c if own else None)
            extra = extra or own
        out[field] = kept
    volumes = pod_spec.get("volumes")
    if not extra:
        # No container of its own, but a webhook (or an edit) may have changed what is judged at
        # pod level (host namespaces, the pod securityContext) or mounted a host path.
        added_host_path = isinstance(volumes, list) and any(
            isinstance(v, dict) and "hostPath" in v and _canon(v) not in digest.volumes for v in volumes)
        if not added_host_path and _judged(pod_spec) == digest.judged:
            return None
    if isinstance(volumes, list):
        out["volumes"] = [v if isinstance(v, dict) and _canon(v) not in digest.volumes else None for v in volumes]
    return out


#: Pod-level fields the Pod Security Standards judge: an injection is the same only if these are.
_POD_LEVEL_JUDGED = ("hostNetwork", "hostPID", "hostIPC", "hostUsers", "securityContext", "os")


def _judged(spec: dict) -> bytes:
    # Unset, false and empty all mean "not set" (a defaulted empty securityContext is no change).
    return _canon({k: spec.get(k) for k in _POD_LEVEL_JUDGED if spec.get(k) not in (None, False, {}, [])})


def _injection_key(owner_ref: str, spec: dict) -> bytes:
    """Which Pods of one controller carry the same injection: the judged parts of their extra
    containers and pod-level fields (not names of per-Pod token volumes, node names and the like)."""
    extra = [(field, i, c.get("name"), c.get("image"), c.get("securityContext"), c.get("ports"), c.get("resources"),
              c.get("imagePullPolicy"), bool(c.get("livenessProbe")), bool(c.get("readinessProbe")))
             for field in CONTAINER_FIELDS for i, c in enumerate(spec.get(field) or ()) if isinstance(c, dict)]
    return _canon([owner_ref, extra, {k: spec.get(k) for k in _POD_LEVEL_JUDGED}])


def collect(source: "ClusterSource") -> list[Workload]:
    """All workloads of a cluster source, each pod template once.

    One pass over each kind, owners before what they own (a CronJob before its Jobs, a
    Deployment before its ReplicaSets, every controller before the Pods): an object whose
    controller was already seen is left out, since its owner stands for it, except a Pod that
    runs containers its controller's template lacks (see :func:`extra_spec`), kept for those.
    One pass matters on a large snapshot, where each pass over the ReplicaSets and Pods parses
    them again."""
    # a seen controller (by uid, and by kind/namespace/name) -> (the ref of the workload that
    # stands for it, a digest of its pod template or None)
    seen: dict[Any, tuple[str, _TemplateDigest | None]] = {}
    # The Pods of one controller with one injection (a mesh sidecar in every replica) are one
    # finding: the first stands for the others, so a mesh of 150,000 Pods is not 150,000 workloads.
    injections: set[bytes] = set()
    result: list[Workload] = []
    objects: dict[str, Any] = {}
    # Every kind is asked for first, in the usual order, so that an unreadable one ends the
    # control before any work (a large kind of a snapshot is only parsed when iterated below).
    for kind in WORKLOAD_KINDS:
        try:
            objects[kind] = source.list(kind)
        except KindNotServed:
            # A cluster that does not serve a workload kind has none of it.
            objects[kind] = ()
    for kind in _OWNERS_FIRST:
        for o in objects[kind]:
            meta = o.get("metadata", {})
            ns = meta.get("namespace", "") or ""
            name = meta.get("name", "")
            tpl = template_of(kind, o)
            owner = _controller(o)
            by = None
            if owner is not None:
                by = seen.get(owner.get("uid")) if owner.get("uid") else None
                by = by or seen.get((owner.get("kind"), ns, owner.get("name")))
            if kind != "Pod":
                # No workload kind is controlled by a Pod.
                ref = by[0] if by is not None else (f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}")
                entry = (ref, _TemplateDigest.of(tpl[0], tpl[1]) if tpl is not None and kind in _POD_OWNERS else None)
                if meta.get("uid"):
                    seen[meta["uid"]] = entry
                seen[(kind, ns, name)] = entry
            if tpl is None:
                continue
            pod_meta, pod_spec, path = tpl
            if by is not None:
                digest = by[1] or _TemplateDigest.of({}, {})
                spec = extra_spec(pod_spec, digest) if kind == "Pod" else None
                if spec is not None:
                    key = _injection_key(by[0], spec)
                    if key not in injections:
                        injections.add(key)
                        result.append(Workload(kind, ns, name, o, pod_meta, spec, path, extra_of=by[0],
                                               owner_template=digest.template()))
                continue
            result.append(Workload(kind, ns, name, o, pod_meta, pod_spec, path))
    # Reported in the usual order of kinds, whatever order they were read in.
    order = {kind: i for i, kind in enumerate(WORKLOAD_KINDS)}
    result.sort(key=lambda w: order[w.kind])
    return result
