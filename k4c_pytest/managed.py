"""Managed control planes (EKS, GKE, AKS): what the provider owns is not the customer's finding.

On a managed cluster nobody but the provider can see or change how kube-apiserver, the
controller manager, the scheduler and etcd are started, nor their files. Controls on those carry

    @pytest.mark.provider_owned("control-plane", eks="K4C-AWS-EKS-003")

and end N/A with the reason "provider responsibility" and a pointer to where the provider's side
is checked instead (the keyword for the provider, else the provider's default pointer): never
PASS (nothing was checked) and never ERROR (nothing failed to be read).

The provider is ``--k4c-provider`` when given (``self-managed`` turns this off), else detected
once per run from the cluster target: the server version (``v1.30.2-eks-1552ad0``,
``v1.30.3-gke.1639000``), then the Nodes' labels that only the managed services set
(``eks.amazonaws.com/nodegroup``, ``cloud.google.com/gke-nodepool``, ``kubernetes.azure.com/cluster``),
with their ``providerID`` (``aws:///``, ``gce://``, ``azure://``) shown as corroboration. A
providerID alone is no proof: kubeadm clusters on EC2, GCE or Azure VMs have the same ones.
When nothing says "managed" (or the Nodes cannot be read) the controls run as on any cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from k4c_pytest.outcomes import DataUnavailable, NotApplicable

OPTION = "--k4c-provider"
SELF_MANAGED = "self-managed"
MARKER = "provider_owned"
#: How the reason of a provider-owned control's N/A starts.
PREFIX = "provider responsibility:"
MARKER_SIGNATURE = (f"{MARKER}(component, *, eks=None, gke=None, aks=None): the control checks a part a "
                    "managed Kubernetes provider operates (component: control-plane, etcd or "
                    "control-plane-files); on EKS, GKE or AKS it ends N/A 'provider responsibility', "
                    "pointing at eks=/gke=/aks= (the provider's own control) or the provider's default")

COMPONENTS = {
    "control-plane": "control plane (kube-apiserver, kube-controller-manager, kube-scheduler)",
    "etcd": "etcd",
    "control-plane-files": "control plane nodes and their files",
}


@dataclass(frozen=True)
class Provider:
    id: str
    title: str
    vendor: str
    version_pattern: re.Pattern
    node_labels: tuple[str, ...]
    provider_id_scheme: str
    pointer: str


PROVIDERS = {
    "eks": Provider(
        "eks", "Amazon EKS", "AWS", re.compile(r"-eks-[0-9a-f]+$"),
        ("eks.amazonaws.com/nodegroup", "eks.amazonaws.com/compute-type", "alpha.eksctl.io/cluster-name"),
        "aws://",
        "its settings are the EKS cluster's, checked by k4c's cloud layer (K4C-AWS-EKS-001 endpoint access, "
        "K4C-AWS-EKS-002 secrets encryption, K4C-AWS-EKS-003 control plane logging; aws eks describe-cluster)"),
    "gke": Provider(
        "gke", "Google Kubernetes Engine", "Google", re.compile(r"-gke\.\d+"),
        ("cloud.google.com/gke-nodepool", "cloud.google.com/gke-os-distribution"),
        "gce://",
        "its settings are the GKE cluster's (gcloud container clusters describe; CIS GKE Benchmark section 1: "
        "not configurable by the customer)"),
    "aks": Provider(
        "aks", "Azure Kubernetes Service", "Microsoft", re.compile(r"-aks\b"),
        ("kubernetes.azure.com/cluster", "kubernetes.azure.com/agentpool", "kubernetes.azure.com/mode"),
        "azure://",
        "its settings are the AKS cluster's (az aks show; CIS AKS Benchmark section 1: not configurable "
        "by the customer)"),
}
CHOICES = (*PROVIDERS, SELF_MANAGED)


@dataclass(frozen=True)
class Detection:
    """Which provider runs the control plane (None: self-managed or not known) and on what basis."""

    provider: str | None
    basis: str

    @property
    def managed(self) -> bool:
        return self.provider is not None


# -- detection ---------------------------------------------------------------------------------

def from_version(version: str | None) -> str | None:
    """The provider a server version string names (``v1.30.2-eks-1552ad0`` -> eks), or None."""
    if not version:
        return None
    for p in PROVIDERS.values():
        if p.version_pattern.search(version):
            return p.id
    return None


def from_nodes(nodes: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The provider the Nodes' managed-service labels name, and a description of what was seen.

    Every node carrying such a label must name the same provider; mixed answers name none."""
    found: dict[str, list[str]] = {}
    schemes: dict[str, int] = {}
    for node in nodes:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        pid = str((node.get("spec") or {}).get("providerID") or "")
        for p in PROVIDERS.values():
            if pid.startswith(p.provider_id_scheme):
                schemes[p.provider_id_scheme] = schemes.get(p.provider_id_scheme, 0) + 1
            if any(label in labels for label in p.node_labels):
                found.setdefault(p.id, []).append(str(meta.get("name", "")))
    ids = " and ".join(f"providerID {s}... on {n} of {len(nodes)} nodes" for s, n in sorted(schemes.items()))
    if len(found) == 1:
        (pid, names), = found.items()
        p = PROVIDERS[pid]
        label = next(label for label in p.node_labels if any(label in ((n.get("metadata") or {}).get("labels") or {})
                                                             for n in nodes))
        return pid, (f"node labels {label} on {len(names)} of {len(nodes)} nodes" + (f", {ids}" if ids else ""))
    if len(found) > 1:
        return None, f"nodes carry labels of several providers ({', '.join(sorted(found))}); none assumed"
    return None, (f"{ids}, but no managed-service node label: could be self-managed on "
                  f"cloud VMs (give {OPTION} if the provider runs the control plane)") if ids else \
        "no managed-service node label"


def detect(version: str | None, nodes: list[dict[str, Any]] | None, nodes_error: str = "") -> Detection:
    """The provider from what the cluster shows: the version string first, then Node labels."""
    by_version = from_version(version)
    if by_version:
        return Detection(by_version, f"server version {version}")
    if nodes is None:
        return Detection(None, f"server version {version or 'unknown'}; nodes not read: {nodes_error}")
    by_nodes, seen = from_nodes(nodes)
    return Detection(by_nodes, f"server version {version or 'unknown'}; {seen}" if not by_nodes else seen)


# -- the marker --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProviderOwned:
    """A control's ``provider_owned`` marker: which part it checks, and the providers' own controls."""

    component: str
    pointers: dict[str, str] = field(default_factory=dict)

    def reason(self, detection: Detection) -> str:
        p = PROVIDERS[detection.provider]
        own = self.pointers.get(p.id)
        see = f"see {own} for the provider's side; {p.pointer}" if own else p.pointer
        return (f"{PREFIX} {p.vendor} operates the {COMPONENTS[self.component]} of this "
                f"{p.title} cluster ({detection.basis}); {see}")


def parse_marker(mark: pytest.Mark) -> ProviderOwned:
    """The marker's arguments checked; ValueError saying what is wrong."""
    if len(mark.args) != 1 or mark.args[0] not in COMPONENTS:
        given = mark.args[0] if len(mark.args) == 1 else f"{len(mark.args)} arguments"
        raise ValueError(f"{MARKER}() takes one component, one of {', '.join(COMPONENTS)}; got {given!r}")
    unknown = set(mark.kwargs) - set(PROVIDERS)
    if unknown:
        raise ValueError(f"{MARKER}(): unknown keyword(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(PROVIDERS)})")
    for k, v in mark.kwargs.items():
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{MARKER}(): {k}= must name the provider's own control, got {v!r}")
    return ProviderOwned(mark.args[0], dict(mark.kwargs))


# -- the run -----------------------------------------------------------------------------------

OWNED_KEY = pytest.StashKey[ProviderOwned]()


class ProviderHooks:
    """``--k4c-provider``, the detection (once per target and process) and the hook that ends provider-owned
    controls N/A on a managed cluster. Registered by the k4c plugin in ``pytest_configure``."""

    def __init__(self, config: pytest.Config, run_key: pytest.StashKey):
        value = config.getoption("k4c_provider")
        if value is not None and value not in CHOICES:
            raise pytest.UsageError(f"{OPTION}: {value!r} is not one of {', '.join(CHOICES)}")
        self.option = value
        self.run_key = run_key
        self.config = config
        # Per cluster target (None: the first, or the only one), detected on first use.
        self._detections: dict[str | None, Detection] = {}

    def detection(self, target: str | None = None) -> Detection:
        """The provider of a cluster target (default: the run's first) -- the option, else
        detected on first use, once per target and process."""
        if target not in self._detections:
            self._detections[target] = self._detect(target)
        return self._detections[target]

    def detection_for(self, item: pytest.Item) -> Detection:
        """The provider that owns what ``item`` checks.

        A control run against one cluster target (its id ends in the target) gets that target's
        detection. Host and etcd controls are not tied to one target: with several clusters they
        count as provider-owned only when every target is managed by the same provider -- a host
        one can reach belongs to a self-managed cluster, so with mixed targets they run."""
        run = self.config.stash.get(self.run_key, None)
        names = run.target_names if run is not None else []
        if len(names) <= 1 or self.option:
            return self.detection()
        target = run.item_target(item)
        if target in names:
            return self.detection(target)
        each = {name: self.detection(name) for name in names}
        providers = {d.provider for d in each.values()}
        if len(providers) == 1 and None not in providers:
            provider = providers.pop()
            return Detection(provider, f"all {len(names)} cluster targets are {PROVIDERS[provider].title}: " +
                             "; ".join(f"{n}: {d.basis}" for n, d in each.items()))
        return Detection(None, "cluster targets differ: " +
                         "; ".join(f"{n}: {d.provider or 'self-managed or unknown'}" for n, d in each.items()))

    def _detect(self, target: str | None = None) -> Detection:
        if self.option == SELF_MANAGED:
            return Detection(None, f"{OPTION}={SELF_MANAGED}")
        if self.option:
            return Detection(self.option, f"{OPTION}={self.option}")
        run = self.config.stash.get(self.run_key, None)
        try:
            source = run.cluster_source(target) if run is not None else None
        except NotApplicable:
            source = None
        if source is None:
            return Detection(None, "no cluster target to detect a provider from")
        version = source.server_version
        if from_version(version):
            return detect(version, None)
        try:
            nodes, error = source.list("Node"), ""
        except (DataUnavailable, NotApplicable) as exc:
            # Not knowing the provider is no reason to skip a control: it runs as on any cluster.
            nodes, error = None, getattr(exc, "reason", str(exc))
        return detect(version, nodes, error)

    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        for item in items:
            mark = item.get_closest_marker(MARKER)
            if mark is None:
                continue
            try:
                item.stash[OWNED_KEY] = parse_marker(mark)
            except ValueError as exc:
                message = f"{item.nodeid}: {exc}"
                if not hasattr(config, "workerinput"):
                    raise pytest.UsageError(message) from None
                # An xdist worker cannot end the run with a UsageError (the controller sees a
                # crash); a failed collection report reaches the controller and stops the run.
                config.hook.pytest_collectreport(report=pytest.CollectReport("", "failed", message, []))
                config.hook.pytest_deselected(items=list(items))
                items[:] = []
                return

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        owned = item.stash.get(OWNED_KEY, None)
        if owned is None or item.get_closest_marker("control") is None:
            return
        detection = self.detection_for(item)
        if detection.managed:
            raise NotApplicable(owned.reason(detection))

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"k4c provider: {self.option} ({OPTION})"] if self.option else []

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        # From the records, which reach the controller also under xdist (workers detect for themselves).
        run = config.stash.get(self.run_key, None)
        if hasattr(config, "workerinput") or run is None:
            return
        owned = [r for r in run.records if r["outcome"] == "N/A" and r["reason"].startswith(PREFIX)]
        if owned:
            why = owned[0]["reason"].removeprefix(PREFIX).split(";")[0].strip()
            terminalreporter.write_line(f"provider responsibility: {len(owned)} controls N/A: {why}")
