"""Manifests backend of the cluster source: a folder of YAML (or JSON) files, shift-left.

Every ``*.yaml`` and ``*.yml`` file below the folder is read with libyaml (multi-document), every
``*.json`` file with orjson; ``kind: List`` and ``*List`` documents are flattened. Documents that
are not Kubernetes objects (no ``apiVersion``/``kind``, such as a Helm values file, or a
kustomization) are skipped and counted. A file that does not parse makes every kind an ERROR,
naming the file and line: a control cannot know which objects that file would have held.

Helm charts and Kustomizations below the folder are rendered with ``helm template`` /
``kustomize build`` when the tool is on PATH, their output read with the plain files; the files
below them are not read as manifests. A chart or Kustomization that cannot be rendered (tool
missing, rendering failed) makes every kind an ERROR too (:mod:`.manifests_render`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import yaml

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED
from k4c_pytest.sources.kinds import Kind

try:
    _SafeLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _SafeLoader = yaml.SafeLoader

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
# Scalar tags whose standard constructor returns the value at once (not a generator).
_SCALAR_TAGS = frozenset("tag:yaml.org,2002:" + t for t in ("null", "bool", "int", "float", "timestamp", "binary"))


class _NotPlain(Exception):
    """The document needs PyYAML's full constructor (aliases, merge keys, odd tags)."""


class _Loader(_SafeLoader):  # type: ignore[misc, valid-type]
    """libyaml's safe loader, building plain documents without PyYAML's per-node generators
    and bookkeeping, which cost about as much as libyaml's parsing itself (bench/manifests_scale.py).

    A document is plain when it holds maps, sequences and scalars with a standard tag, no cycle
    and no ``<<`` merge or ``=`` value keys; an aliased map or sequence is the same object at
    every use, as PyYAML makes it. Any other document is built again from the same nodes by the
    standard constructor, so the result (values, errors and their messages) is always what
    ``yaml.CSafeLoader`` gives."""

    # Plain scalar -> tag. Implicit resolution tries regular expressions on every plain scalar;
    # manifests repeat the same keys and values (name, image, true, 8080) all the time. Bounded,
    # and only short values: a name or hash seen once is not worth keeping.
    _tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0] and len(value) <= 40:
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._tags) < 50_000:
                    self._tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return self._plain(node, {})
        except (_NotPlain, RecursionError, yaml.YAMLError):
            # Errors too are the standard constructor's, from the same nodes.
            return super().construct_document(node)

    def _plain(self, node: yaml.Node, built: dict[int, Any]) -> Any:
        """``built`` maps each collection node met so far to its object (None while it is being
        built: meeting it again then is a cycle)."""
        tag = node.tag
        if tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value
        if isinstance(node, yaml.ScalarNode):
            if tag not in _SCALAR_TAGS:
                raise _NotPlain
            return self.yaml_constructors[tag](self, node)
        key = id(node)
        if key in built:
            if built[key] is None:
                raise _NotPlain
            return built[key]
        built[key] = None
        if tag == _MAP and isinstance(node, yaml.MappingNode):
            out: Any = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag in _SPECIAL_KEYS:
                    raise _NotPlain
                # A scalar key builds a str, number, bool, None, date or bytes: all hashable.
                out[self._plain(key_node, built)] = self._plain(value_node, built)
        elif tag == _SEQ and isinstance(node, yaml.SequenceNode):
            out = [self._plain(item, built) for item in node.value]
        else:
            raise _NotPlain
        built[key] = out
        return out


# Kinds that live in no namespace (a namespace set on one of them is ignored when it is applied).
_CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "VolumeAttachment", "CSIDriver", "CSINode", "VolumeAttributesClass", "PriorityClass",
    "RuntimeClass", "IngressClass", "APIService", "CertificateSigningRequest", "ClusterTrustBundle",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
    "FlowSchema", "PriorityLevelConfiguration", "ComponentStatus", "DeviceClass", "ResourceSlice",
    "IPAddress", "ServiceCIDR", "StorageVersionMigration", "PodSecurityPolicy", "ConstraintTemplate",
})
# Namespaced kinds an object may name no namespace of (it goes to the one it is applied to).
_NAMESPACED = frozenset({
    "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController",
    "Service", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "Ingress", "NetworkPolicy",
    "Role", "RoleBinding", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Endpoints", "EndpointSlice",
    "LimitRange", "ResourceQuota", "PodTemplate", "Lease", "Event",
})

SUFFIXES = (".yaml", ".yml", ".json")
# Build-tool configuration that looks like a Kubernetes object but is never deployed.
_TOOL_GROUPS = ("kustomize.config.k8s.io/", "config.kubernetes.io/")
_CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def default_plural(kind: str) -> str:
    """The plural a CRD most likely gives a Kind (``NetworkPolicy`` -> ``networkpolicies``,
    ``Gateway`` -> ``gateways``), for a custom resource whose CRD is not in the folder."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


class ManifestsBackend:
    """Reads Kubernetes objects from manifest files."""

    mode = "manifests"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._by_kind: dict[tuple[str, str], list[dict]] | None = None
        # "could not parse" message, kept to fail every kind the same way
        self._error: str | None = None
        # (group, Kind) -> plural, from the CustomResourceDefinitions in the folder
        self._plurals: dict[tuple[str, str], str] = {}
        self.files = 0
        self._all_files: list[Path] | None = None
        self._roots: tuple[list, list[Path], set[Path]] | None = None
        self.skipped_documents = 0
        self.requests = 0

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": "manifests", "manifests": str(self.folder)}
        try:
            roots = self._render_roots()[0]
        except Exception:  # an unreadable chart or kustomization: the controls ERROR naming it
            roots = []
        if roots:
            d["rendered"] = [r.command() for r in roots]
        return d

    def _files(self) -> list[Path]:
        if self._all_files is None:
            self._all_files = sorted(p for p in self.folder.rglob("*") if p.is_file())
        return self._all_files

    def _render_roots(self):
        """(charts and Kustomizations to render, chart folders, files the Kustomizations build from)."""
        if self._roots is None:
            from k4c_pytest.sources import manifests_render

            self._roots = manifests_render.find(self.folder, self._files())
        return self._roots

    def server_version(self) -> str | None:
        return None

    def _add(self, doc: Any, by_kind: dict[tuple[str, str], list[dict]]) -> None:
        kind, api_version = (doc.get("kind"), doc.get("apiVersion")) if isinstance(doc, dict) else (None, None)
        if not (isinstance(kind, str) and kind and isinstance(api_version, str) and api_version) \
                or api_version.startswith(_TOOL_GROUPS):
            self.skipped_documents += 1
            return
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                self._add(item, by_kind)
            return
        redact(doc, kind)
        if not isinstance(doc.get("metadata"), dict):
            doc["metadata"] = {}
        if (api_version, kind) == _CRD:
            spec = doc.get("spec")
            names = spec.get("names") if isinstance(spec, dict) else None
            if isinstance(names, dict) and names.get("kind") and names.get("plural"):
                self._plurals[(str(spec.get("group", "")), str(names["kind"]))] = str(names["plural"])
        by_kind[(api_version, kind)].append(doc)

    def namespace_references(self) -> dict[str, str]:
        """The namespaces the folder's objects will live in: ``{namespace: "Kind/namespace/name"}``
        of the first object in each, whatever its kind (a Service or a custom resource counts as
        much as a Deployment). ``""`` stands for the namespace an object that names none is
        applied to (``kubectl apply -n``); only kinds known to be namespaced count for it, as a
        cluster-scoped custom resource names no namespace either. Raises DataUnavailable like
        :meth:`fetch` when the folder cannot be read."""
        from k4c_pytest.sources.kinds import resolve

        by_kind = self._load(resolve("Namespace"))
        scopes = {(str(crd["spec"].get("group", "")), str(crd["spec"]["names"].get("kind", ""))): crd["spec"].get("scope")
                  for crd in by_kind.get(_CRD, ()) if isinstance(crd.get("spec"), dict)
                  and isinstance(crd["spec"].get("names"), dict)}
        out: dict[str, str] = {}
        for (api_version, kind), objs in sorted(by_kind.items()):
            group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
            scope = scopes.get((group, kind))
            if kind in _CLUSTER_SCOPED or scope == "Cluster" or (kind.startswith("Cluster") and scope != "Namespaced"):
                continue
            unset_counts = kind in _NAMESPACED or scope == "Namespaced"
            for obj in objs:
                name, ns = obj["metadata"].get("name", ""), obj["metadata"].get("namespace") or ""
                if ns not in out and (ns or unset_counts):
                    out[ns] = f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"
        return out

    def _read(self, path: Path, rel: str) -> list[Any]:
        """The documents of one file; raises ValueError naming the file and line if it does not parse."""
        if path.suffix == ".json":
            try:
                return [orjson.loads(path.read_bytes())]
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{rel}: line {exc.lineno}: {exc.msg}") from None
        try:
            with path.open("rb") as fh:
                return list(yaml.load_all(fh, Loader=_Loader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ValueError(f"{rel}: {line}{problem}") from None

    def _load(self, kind: Kind) -> dict[tuple[str, str], list[dict]]:
        if self._error is None and self._by_kind is None:
            from k4c_pytest.sources import manifests_render

            by_kind: dict[tuple[str, str], list[dict]] = defaultdict(list)
            try:
                roots, charts, built_from = self._render_roots()
            except manifests_render.RenderError as exc:
                roots, charts, built_from = [], [], set()
                self._error = f"{exc} (in manifests {self.folder})"
            files = [p for p in self._files() if p.suffix in SUFFIXES and not any(d in p.parents for d in charts)
                     and not (built_from and p.resolve() in built_from)] if self._error is None else []
            for path in files:
                rel = str(path.relative_to(self.folder))
                try:
                    docs = self._read(path, rel)
                except ValueError as exc:
                    self._error = f"{exc} (in manifests {self.folder})"
                    break
                except (OSError, UnicodeDecodeError) as exc:
                    self._error = f"{rel}: cannot read: {exc} (in manifests {self.folder})"
                    break
                for doc in docs:
                    self._add(doc, by_kind)
                self.files += 1
            else:
                for root in roots:
                    try:
                        output = manifests_render.render(root)
                        docs = list(yaml.load_all(output, Loader=_Loader))
                    except manifests_render.RenderError as exc:
                        self._error = f"{exc} (in manifests {self.folder})"
                        break
                    except yaml.YAMLError as exc:
                        mark = getattr(exc, "problem_mark", None)
                        line = f"line {mark.line + 1}: " if mark is not None else ""
                        self._error = (f"{root.rel}: the output of {root.command()}: {line}"
                                       f"{getattr(exc, 'problem', None) or exc} (in manifests {self.folder})")
                        break
                    for doc in docs:
                        self._add(doc, by_kind)
                if self._error is None:
                    self._by_kind = by_kind
        if self._error is not None:
            # Named per kind, so the control's ERROR says which kind it could not know.
            exc = DataUnavailable(kind.key, self._error)
            exc.status = FAILED  # type: ignore[attr-defined]
            raise exc
        assert self._by_kind is not None
        return self._by_kind

    def fetch(self, kind: Kind) -> list[dict]:
        # A kind absent from the folder is simply not part of what will be deployed.
        by_kind = self._load(kind)
        if kind.kind:
            return list(by_kind.get((kind.api_version, kind.kind), ()))
        # A custom resource named by its plural: the folder's CRD says which Kind that is, else
        # the plural its CRD most likely gives it.
        out: list[dict] = []
        for (api_version, kind_name), objs in by_kind.items():
            if api_version != kind.api_version:
                continue
            plural = self._plurals.get((kind.group, kind_name)) or default_plural(kind_name)
            if plural == kind.plural:
                out.extend(objs)
        return out
