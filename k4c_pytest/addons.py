"""What the add-on controls (``suites/cluster/test_addons.py``) need to know about the security
add-ons of a cluster, read through the Kubernetes API: admission policy engines, runtime threat
detection, service mesh mTLS, monitoring, a secrets manager and audit logging.

Several add-ons can satisfy one control (Gatekeeper *or* Kyverno *or* Pod Security labels), so
each is judged as a :class:`Branch`. A branch whose kinds the cluster does not serve is "not
installed"; a branch whose data could not be read is "unreadable". A :class:`Verdict` passes
when one branch is proven to enforce from data read completely; it fails when every branch was
read and none enforces; otherwise (nothing enforces, something unreadable) the control must
ERROR, never FAIL or PASS, and :meth:`Verdict.require_complete` raises the first read failure.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from k4c_pytest.outcomes import DataUnavailable, KindNotServed, NotApplicable
from k4c_pytest.workloads import Workload

# The kinds these controls read (also in sources/kinds.py, so `k4c collect` captures them).
WEBHOOKS = "ValidatingWebhookConfiguration"
CONSTRAINT_TEMPLATES = "ConstraintTemplate"
KYVERNO_POLICIES = "ClusterPolicy"
PEER_AUTHENTICATIONS = "PeerAuthentication"
EXTERNAL_SECRETS = "ExternalSecret"
SECRET_PROVIDER_CLASSES = "SecretProviderClass"
CERTIFICATES = "Certificate"
#: Gatekeeper serves each template's constraints as a kind of its own, named by the template.
CONSTRAINTS_API = "constraints.gatekeeper.sh/v1beta1"

ENFORCING, NOT_ENFORCING, NOT_INSTALLED, UNREADABLE = "enforcing", "not enforcing", "not installed", "unreadable"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCING_LEVELS = ("baseline", "restricted")


class NotInstalled(Exception):
    """An add-on found to be absent by looking at objects (no kind to be missing), e.g. Linkerd."""


@dataclass
class Branch:
    """One way of satisfying a control, as found: ``status`` is one of ENFORCING, NOT_ENFORCING,
    NOT_INSTALLED, UNREADABLE; ``offenders`` are evidence rows of what keeps it from enforcing."""

    name: str
    status: str
    detail: str
    offenders: list[dict] = field(default_factory=list)
    error: DataUnavailable | None = None

    def row(self) -> dict:
        return {"add-on": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Verdict:
    branches: list[Branch]

    @property
    def passed(self) -> bool:
        return any(b.status == ENFORCING for b in self.branches)

    def summary(self) -> list[dict]:
        return [b.row() for b in self.branches]

    def offenders(self) -> list[dict]:
        """Rows of every branch that does not enforce, each naming its add-on."""
        return [{"add-on": b.name, **row} for b in self.branches if b.status == NOT_ENFORCING for row in b.offenders]

    def require_complete(self) -> None:
        """Raise the first read failure unless some branch passed: with part of the data
        unknown, "nothing enforces" is not a finding k4c can make."""
        __tracebackhide__ = True
        if self.passed:
            return
        for b in self.branches:
            if b.error is not None:
                raise b.error.with_traceback(None)


Evaluation = tuple[bool, str, list[dict]]


def branch(name: str, evaluate: Callable[[], Evaluation]) -> Branch:
    """Run one branch's evaluation, which returns (enforcing, detail, offender rows)."""
    try:
        ok, detail, offenders = evaluate()
    except KindNotServed as exc:
        return Branch(name, NOT_INSTALLED, f"not installed: the cluster does not serve {exc.kind}")
    except NotInstalled as exc:
        return Branch(name, NOT_INSTALLED, f"not installed: {exc}")
    except DataUnavailable as exc:
        return Branch(name, UNREADABLE, f"could not read {exc.source}: {exc.reason}", error=exc)
    return Branch(name, ENFORCING if ok else NOT_ENFORCING, detail, offenders)


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ref(obj: dict, kind: str | None = None) -> dict:
    meta = _meta(obj)
    return {"kind": kind or obj.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", "")}


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


# -- admission policy -------------------------------------------------------------------------------

GATEKEEPER_WEBHOOK = "validation.gatekeeper.sh"
KYVERNO_WEBHOOK_PREFIX = "validate.kyverno.svc"


def _webhooks(webhook_configs: list[dict], match: Callable[[str], bool]) -> list[tuple[dict, dict]]:
    """(configuration, webhook) of every validating webhook whose name ``match`` accepts."""
    return [(cfg, hook) for cfg in webhook_configs for hook in cfg.get("webhooks") or ()
            if isinstance(hook, dict) and match(str(hook.get("name", "")))]


def _fails_closed(hook: dict) -> bool:
    # admissionregistration/v1 defaults failurePolicy to Fail; the API server stores the default.
    return (hook.get("failurePolicy") or "Fail") == "Fail"


def _webhook_offenders(hooks: list[tuple[dict, dict]], what: str) -> list[dict]:
    if not hooks:
        return [{"kind": WEBHOOKS, "namespace": "", "name": "(none)",
                 "finding": f"no {what} validating webhook is registered: nothing is enforced at admission"}]
    return [{**_ref(cfg, WEBHOOKS), "finding": f"webhook {hook.get('name')} has failurePolicy "
                                                f"{hook.get('failurePolicy')}: requests pass when it is down"}
            for cfg, hook in hooks if not _fails_closed(hook)]


def constraint_enforces(constraint: dict) -> bool:
    """Whether a Gatekeeper constraint denies at admission: enforcementAction deny (the default),
    or scoped with a deny action for the validation webhook."""
    spec = _spec(constraint)
    action = spec.get("enforcementAction") or "deny"
    if action == "deny":
        return True
    if action != "scoped":
        return False
    for scoped in spec.get("scopedEnforcementActions") or ():
        if not isinstance(scoped, dict) or scoped.get("action") != "deny":
            continue
        points = [p.get("name") for p in scoped.get("enforcementPoints") or () if isinstance(p, dict)]
        if "validation.gatekeeper.sh" in points or "*" in points:
            return True
    return False


def gatekeeper(cluster) -> Evaluation:
    templates = cluster.list(CONSTRAINT_TEMPLATES)
    enforcing, offenders, pending = [], [], []
    for template in templates:
        names = ((_spec(template).get("crd") or {}).get("spec") or {}).get("names") or {}
        kind = names.get("kind") or ""
        if not kind:
            continue
        try:
            constraints = cluster.list(f"{CONSTRAINTS_API}/{kind.lower()}")
        except KindNotServed:
            pending.append(kind)  # the template's CRD is not created (yet): no constraint can exist
            continue
        for c in constraints:
            if constraint_enforces(c):
                enforcing.append(c)
            else:
                offenders.append({**_ref(c, kind), "finding": "enforcementAction "
                                  f"{_spec(c).get('enforcementAction')}: violations are only reported"})
    hooks = _webhooks(cluster.list(WEBHOOKS), lambda name: name == GATEKEEPER_WEBHOOK)
    hook_offenders = _webhook_offenders(hooks, "Gatekeeper")
    if not enforcing:
        offenders.insert(0, {"kind": "Constraint", "namespace": "", "name": "(none)",
                             "finding": f"no constraint denies ({len(templates)} templates"
                                        + (f"; not served yet: {', '.join(pending)}" if pending else "") + ")"})
    ok = bool(enforcing) and not hook_offenders
    return ok, f"{len(enforcing)} constraints deny, {len(templates)} templates", offenders + hook_offenders


def kyverno_rule_enforces(policy: dict, rule: dict) -> bool:
    validate = rule.get("validate")
    if not isinstance(validate, dict):
        return False
    # The per-rule failureAction (Kyverno 1.13+) overrides the deprecated policy-wide one.
    action = validate.get("failureAction") or _spec(policy).get("validationFailureAction") or "Audit"
    return str(action).lower() == "enforce"


def kyverno_policy_enforces(policy: dict) -> bool:
    spec = _spec(policy)
    if spec.get("admission") is False or spec.get("failurePolicy") == "Ignore":
        return False
    return any(isinstance(r, dict) and kyverno_rule_enforces(policy, r) for r in spec.get("rules") or ())


def kyverno(cluster) -> Evaluation:
    policies = cluster.list(KYVERNO_POLICIES)
    enforcing = [p for p in policies if kyverno_policy_enforces(p)]
    offenders = []
    for p in policies:
        if any(p is e for e in enforcing):
            continue
        spec = _spec(p)
        why = ("admission: false" if spec.get("admission") is False else
               "failurePolicy Ignore" if spec.get("failurePolicy") == "Ignore" else
               "no validate rule in Enforce mode (Audit only reports)")
        offenders.append({**_ref(p, KYVERNO_POLICIES), "finding": why})
    hooks = _webhooks(cluster.list(WEBHOOKS), lambda name: name.startswith(KYVERNO_WEBHOOK_PREFIX))
    # Kyverno registers a -fail and an -ignore webhook, each for the policies of that failurePolicy;
    # enforcing policies are served by the -fail one, which must exist and fail closed.
    fail_hooks = [(c, h) for c, h in hooks if "ignore" not in str(h.get("name"))]
    hook_offenders = _webhook_offenders(fail_hooks, "Kyverno fail-closed")
    if not enforcing:
        offenders.insert(0, {"kind": KYVERNO_POLICIES, "namespace": "", "name": "(none)",
                             "finding": f"no ClusterPolicy enforces ({len(policies)} policies)"})
    ok = bool(enforcing) and not hook_offenders
    return ok, f"{len(enforcing)} of {len(policies)} ClusterPolicies enforce", offenders + hook_offenders


def pod_security_labels(cluster, system_namespaces: Iterable[str]) -> Evaluation:
    system = set(system_namespaces)
    offenders, checked = [], 0
    for ns in cluster.namespaces():
        name = _meta(ns).get("name", "")
        if name in system:
            continue
        checked += 1
        level = (_meta(ns).get("labels") or {}).get(PSA_ENFORCE)
        if level not in PSA_ENFORCING_LEVELS:
            offenders.append({"kind": "Namespace", "namespace": "", "name": name,
                              "finding": f"{PSA_ENFORCE} is {'unset' if level is None else level}"})
    return not offenders, f"{checked - len(offenders)} of {checked} namespaces enforce baseline or restricted", offenders


def admission_enforcement(cluster, system_namespaces: Iterable[str]) -> Verdict:
    return Verdict([
        branch("OPA Gatekeeper", lambda: gatekeeper(cluster)),
        branch("Kyverno", lambda: kyverno(cluster)),
        branch("Pod Security Admission", lambda: pod_security_labels(cluster, system_namespaces)),
    ])


# -- images -----------------------------------------------------------------------------------------

def image_repository(image: str) -> str:
    """The repository path of an image reference, without registry, tag or digest:
    ``docker.io/falcosecurity/falco:0.39@sha256:..`` -> ``falcosecurity/falco``."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)


def matches_image(image: str, patterns: Iterable[str]) -> str | None:
    """The first pattern (fnmatch, on the repository path) an image matches, or None."""
    repo = image_repository(image)
    return next((p for p in patterns if fnmatch.fnmatchcase(repo, p)), None)


def workloads_with_images(workloads: Iterable[Workload], patterns: Iterable[str],
                          kinds: Iterable[str] | None = None) -> list[tuple[Workload, str]]:
    """(workload, image) of each workload with a container image matching ``patterns``."""
    patterns, kinds = list(patterns), set(kinds) if kinds else None
    found = []
    for w in workloads:
        if kinds is not None and w.kind not in kinds:
            continue
        image = next((c.get("image", "") for _, _, c in w.containers()
                      if matches_image(str(c.get("image", "")), patterns)), None)
        if image:
            found.append((w, image))
    return found


# -- runtime threat detection: DaemonSet coverage of nodes ------------------------------------------

#: Tolerations the DaemonSet controller adds to every DaemonSet pod (pkg/controller/daemon/util).
DAEMONSET_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
_HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def tolerates(toleration: dict, taint: dict) -> bool:
    """Kubernetes' ToleratesTaint: effect, key and (for Equal) value must match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"  # an empty key with Exists tolerates everything
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def _expression_matches(expr: dict, values: dict) -> bool:
    key, op, wanted = expr.get("key"), expr.get("operator"), list(expr.get("values") or ())
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, limit = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > limit if op == "Gt" else have < limit
    return False


def _term_matches(term: dict, labels: dict, node_name: str) -> bool:
    exprs = [e for e in term.get("matchExpressions") or () if isinstance(e, dict)]
    fields = [e for e in term.get("matchFields") or () if isinstance(e, dict)]
    if not exprs and not fields:
        return False  # an empty term matches no node
    return all(_expression_matches(e, labels) for e in exprs) and \
        all(_expression_matches(e, {"metadata.name": node_name}) for e in fields)


def why_not_scheduled(pod_spec: dict, node: dict) -> str | None:
    """Why a DaemonSet with this pod spec would not run on ``node`` (a taint it does not tolerate,
    a nodeSelector or required node affinity the node does not match), or None if it would."""
    meta = _meta(node)
    labels = meta.get("labels") or {}
    name = meta.get("name", "")
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [t for t in required.get("nodeSelectorTerms") or () if isinstance(t, dict)]
    if required and not any(_term_matches(t, labels, name) for t in terms):
        return "required node affinity does not match"
    tolerations = [t for t in pod_spec.get("tolerations") or () if isinstance(t, dict)]
    tolerations += list(DAEMONSET_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        tolerations.append(_HOST_NETWORK_TOLERATION)
    for taint in (node.get("spec") or {}).get("taints") or ():
        if not isinstance(taint, dict) or taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            value = f"={taint['value']}" if taint.get("value") else ""
            return f"taint {taint.get('key')}{value}:{taint.get('effect')} is not tolerated"
    return None


@dataclass
class Coverage:
    """Which nodes the detection DaemonSets cover. ``offenders`` name each node none of them
    would run on, and each DaemonSet whose controller schedules fewer pods than nodes it should."""

    nodes: int
    daemonsets: list[tuple[Workload, str]]
    offenders: list[dict]

    def summary(self) -> list[dict]:
        return [w.row(image=image, desired=str((w.obj.get("status") or {}).get("desiredNumberScheduled", "unset")),
                      ready=str((w.obj.get("status") or {}).get("numberReady", "unset")))
                for w, image in self.daemonsets]


def daemonset_coverage(nodes: list[dict], daemonsets: list[tuple[Workload, str]]) -> Coverage:
    offenders: list[dict] = []
    covered: set[str] = set()
    reasons: dict[str, list[str]] = {}
    for w, _ in daemonsets:
        should = 0
        for node in nodes:
            name = _meta(node).get("name", "")
            why = why_not_scheduled(w.pod_spec, node)
            if why is None:
                should += 1
                covered.add(name)
            else:
                reasons.setdefault(name, []).append(f"{w.ref}: {why}")
        status = w.obj.get("status") or {}
        desired = status.get("desiredNumberScheduled")
        ready = status.get("numberReady")
        if not isinstance(desired, int) or desired < should:
            # The controller's count: a node the template matches may still be missed (an
            # affinity k4c does not model, a node too full), or the controller may not run.
            offenders.append({**w.row(), "finding": f"status.desiredNumberScheduled is "
                              f"{desired if desired is not None else 'unset'}, {should} nodes match its template"})
        elif not isinstance(ready, int) or ready < desired:
            # Scheduled is not running: a crash-looping detector watches nothing.
            offenders.append({**w.row(), "finding": f"status.numberReady is {ready if ready is not None else 'unset'} "
                              f"of {desired} scheduled: detector pods not ready on every node"})
    for node in nodes:
        name = _meta(node).get("name", "")
        if name not in covered:
            offenders.append({"kind": "Node", "namespace": "", "name": name,
                              "finding": "; ".join(reasons.get(name, ["no detection DaemonSet"]))})
    return Coverage(len(nodes), daemonsets, offenders)


# -- service mesh mTLS ------------------------------------------------------------------------------

WEAK_MTLS_MODES = ("PERMISSIVE", "DISABLE")
LINKERD_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
#: Linkerd default inbound policies that refuse plaintext (unauthenticated) connections.
LINKERD_ENFORCING = ("all-authenticated", "cluster-authenticated", "deny")


def _mtls_mode(pa: dict) -> str:
    return str((_spec(pa).get("mtls") or {}).get("mode") or "UNSET")


def istio(cluster, root_namespace: str) -> Evaluation:
    pas = cluster.list(PEER_AUTHENTICATIONS)
    mesh_wide = [pa for pa in pas if _meta(pa).get("namespace") == root_namespace
                 and not ((_spec(pa).get("selector") or {}).get("matchLabels"))]
    offenders = []
    if not mesh_wide:
        offenders.append({"kind": PEER_AUTHENTICATIONS, "namespace": root_namespace, "name": "(none)",
                          "finding": "no mesh-wide PeerAuthentication in the root namespace: PERMISSIVE by default"})
    for pa in mesh_wide:
        if _mtls_mode(pa) != "STRICT":
            offenders.append({**_ref(pa, PEER_AUTHENTICATIONS), "finding": f"mesh-wide mtls.mode {_mtls_mode(pa)}"})
    for pa in pas:
        if any(pa is m for m in mesh_wide):
            continue
        weak = [f"mtls.mode {_mtls_mode(pa)}"] if _mtls_mode(pa) in WEAK_MTLS_MODES else []
        for port, setting in (_spec(pa).get("portLevelMtls") or {}).items():
            mode = str((setting or {}).get("mode") or "UNSET") if isinstance(setting, dict) else "UNSET"
            if mode in WEAK_MTLS_MODES:
                weak.append(f"port {port} mode {mode}")
        if weak:
            offenders.append({**_ref(pa, PEER_AUTHENTICATIONS), "finding": "overrides STRICT: " + ", ".join(weak)})
    return not offenders, f"{len(mesh_wide)} mesh-wide and {len(pas) - len(mesh_wide)} other PeerAuthentications", offenders


def _linkerd_default_policy(w: Workload) -> str | None:
    for _, _, c in w.containers():
        for arg in c.get("args") or ():
            arg = str(arg)
            for prefix in ("--default-policy=", "-default-policy="):
                if arg.startswith(prefix):
                    return arg[len(prefix):]
    return None


def linkerd(cluster, system_namespaces: Iterable[str]) -> Evaluation:
    workloads = cluster.workloads()
    controllers = [(w, p) for w in workloads if (p := _linkerd_default_policy(w)) is not None]
    if not controllers:
        raise NotInstalled("no Linkerd policy controller (a container with --default-policy) runs")
    control_planes = {w.namespace for w, _ in controllers}
    skip = set(system_namespaces) | control_planes
    offenders = [{**w.row(), "finding": f"cluster default inbound policy {p}"}
                 for w, p in controllers if p not in LINKERD_ENFORCING]
    for ns in cluster.namespaces():
        name = _meta(ns).get("name", "")
        value = (_meta(ns).get("annotations") or {}).get(LINKERD_POLICY_ANNOTATION)
        if name not in skip and value is not None and value not in LINKERD_ENFORCING:
            offenders.append({"kind": "Namespace", "namespace": "", "name": name,
                              "finding": f"{LINKERD_POLICY_ANNOTATION}: {value}"})
    for w in workloads:
        value = (w.pod_metadata.get("annotations") or {}).get(LINKERD_POLICY_ANNOTATION)
        if w.namespace not in skip and value is not None and value not in LINKERD_ENFORCING and \
                w.owns_pod_value("annotations", LINKERD_POLICY_ANNOTATION, under="metadata"):
            offenders.append({**w.row(), "finding": f"{LINKERD_POLICY_ANNOTATION}: {value}"})
    defaults = ", ".join(sorted({p for _, p in controllers}))
    return not offenders, f"default inbound policy {defaults}", offenders


def mesh_mtls(cluster, istio_root_namespace: str, system_namespaces: Iterable[str]) -> Verdict:
    system = list(system_namespaces)
    return Verdict([
        branch("Istio", lambda: istio(cluster, istio_root_namespace)),
        branch("Linkerd", lambda: linkerd(cluster, system)),
    ])


# -- secrets from a manager -------------------------------------------------------------------------

CSI_SECRETS_DRIVER = "secrets-store.csi.k8s.io"
VAULT_INJECT = "vault.hashicorp.com/agent-inject"


def secret_references(w: Workload) -> Iterator[tuple[str, str]]:
    """(Secret name, field path) of every Secret a workload's pods read: volumes (also projected)
    and container env / envFrom. Image pull Secrets are credentials for the kubelet, not the app."""
    for i, vol in enumerate(w.pod_spec.get("volumes") or ()):
        if not isinstance(vol, dict):
            continue
        secret = vol.get("secret")
        if isinstance(secret, dict) and secret.get("secretName"):
            yield secret["secretName"], f"{w.spec_path}.volumes[{i}].secret"
        for j, src in enumerate((vol.get("projected") or {}).get("sources") or ()):
            ref = (src or {}).get("secret") if isinstance(src, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                yield ref["name"], f"{w.spec_path}.volumes[{i}].projected.sources[{j}].secret"
    for field_name, i, c in w.containers():
        for j, var in enumerate(c.get("env") or ()):
            ref = ((var or {}).get("valueFrom") or {}).get("secretKeyRef") if isinstance(var, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                yield ref["name"], w.field_path(field_name, i, f"env[{j}].valueFrom.secretKeyRef")
        for j, src in enumerate(c.get("envFrom") or ()):
            ref = (src or {}).get("secretRef") if isinstance(src, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                yield ref["name"], w.field_path(field_name, i, f"envFrom[{j}].secretRef")


def uses_manager_directly(w: Workload) -> str | None:
    """How a workload gets secrets from a manager without a Kubernetes Secret, if it does."""
    if str((w.pod_metadata.get("annotations") or {}).get(VAULT_INJECT, "")).lower() == "true" and \
            w.owns_pod_value("annotations", VAULT_INJECT, under="metadata"):
        return "Vault agent injector"
    for vol in w.pod_spec.get("volumes") or ():
        if isinstance(vol, dict) and (vol.get("csi") or {}).get("driver") == CSI_SECRETS_DRIVER:
            return "Secrets Store CSI driver"
    return None


def _managed_secrets(objs: list[dict], names: Callable[[dict], Iterable[str]]) -> set[tuple[str, str]]:
    return {(_meta(o).get("namespace", ""), n) for o in objs for n in names(o) if n}


MANAGERS: dict[str, Callable[[dict], Iterable[str]]] = {
    # An ExternalSecret writes spec.target.name, by default its own name.
    EXTERNAL_SECRETS: lambda o: [(_spec(o).get("target") or {}).get("name") or _meta(o).get("name", "")],
    # The CSI driver syncs secretObjects into Secrets for the pods that mount the class.
    SECRET_PROVIDER_CLASSES: lambda o: [s.get("secretName", "") for s in _spec(o).get("secretObjects") or ()
                                        if isinstance(s, dict)],
    # cert-manager issues and renews the TLS Secret a Certificate names.
    CERTIFICATES: lambda o: [_spec(o).get("secretName", "")],
}


@dataclass
class SecretUse:
    references: int
    offenders: list[dict]
    managers: list[dict]
    direct: list[dict]


def secrets_from_manager(cluster, system_namespaces: Iterable[str]) -> SecretUse:
    """Every Secret reference of workloads outside the system namespaces, and which of them no
    manager produces. Raises the first read failure of a manager kind only if it could matter."""
    __tracebackhide__ = True
    system = set(system_namespaces)
    refs = [(w, name, path) for w in cluster.workloads() if w.namespace not in system
            for name, path in secret_references(w)]
    direct = [w.row(via=how) for w in cluster.workloads() if w.namespace not in system
              and (how := uses_manager_directly(w))]
    managed: set[tuple[str, str]] = set()
    managers, errors = [], []
    for kind, names in MANAGERS.items():
        try:
            objs = cluster.list(kind)
        except KindNotServed:
            managers.append({"kind": kind, "status": NOT_INSTALLED, "objects": "0"})
            continue
        except DataUnavailable as exc:
            managers.append({"kind": kind, "status": UNREADABLE, "objects": "?"})
            errors.append(exc)
            continue
        managers.append({"kind": kind, "status": "listed", "objects": str(len(objs))})
        managed |= _managed_secrets(objs, names)
    offenders = [w.row(secret=name, field=path) for w, name, path in refs if (w.namespace, name) not in managed]
    if offenders and errors:
        raise errors[0].with_traceback(None)
    return SecretUse(len(refs), offenders, managers, direct)


# -- audit logging ----------------------------------------------------------------------------------

def apiserver_pods(cluster) -> list[dict]:
    """The kube-apiserver static pods the kubelets mirror into kube-system (kubeadm and the
    like); empty where the control plane is not visible as pods (managed clusters, systemd)."""
    # Through the workloads, which hold every pod template once (a mirror pod, owned by its
    # Node, is one of them): listing the pods of kube-system again would parse every pod of a
    # large snapshot a second time.
    found = []
    for w in cluster.workloads():
        if w.namespace != "kube-system":
            continue
        meta = w.obj.get("metadata") or {} if w.kind == "Pod" else {**w.pod_metadata, "name": w.name}
        labels = meta.get("labels") or {}
        if labels.get("component") == "kube-apiserver" or \
                ("kubernetes.io/config.mirror" in (meta.get("annotations") or {})
                 and str(meta.get("name", "")).startswith("kube-apiserver")):
            found.append(w.obj if w.kind == "Pod" else
                         {"kind": w.kind, "metadata": {"namespace": w.namespace, "name": w.name}, "spec": w.pod_spec})
    return found


def command_flags(container: dict) -> dict[str, str]:
    """``--flag=value`` and ``--flag value`` of a container's command and args."""
    argv = [str(a) for a in [*(container.get("command") or ()), *(container.get("args") or ())]]
    flags: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            value = argv[i + 1]
        flags[name] = value
    return flags


def audit_gaps(pod: dict) -> list[str]:
    """What keeps a kube-apiserver pod from writing an audit log: no policy (nothing is
    recorded without one), or no backend (a log path or a webhook)."""
    containers = [c for c in (pod.get("spec") or {}).get("containers") or () if isinstance(c, dict)]
    apiserver = next((c for c in containers if c.get("name") == "kube-apiserver"), containers[0] if containers else {})
    flags = command_flags(apiserver)
    gaps = []
    if not flags.get("audit-policy-file"):
        gaps.append("--audit-policy-file is not set: no event is recorded")
    if not flags.get("audit-log-path") and not flags.get("audit-webhook-config-file"):
        gaps.append("neither --audit-log-path nor --audit-webhook-config-file is set")
    return gaps


def require_running_cluster(cluster) -> None:
    """Add-ons are judged on a running cluster (live or snapshot), not on a manifests folder:
    the folder holds what will be deployed, not the nodes, webhooks and mirror pods there are."""
    __tracebackhide__ = True
    if cluster.mode == "manifests":
        raise NotApplicable("add-ons are judged on a running cluster (--k4c-cluster or --k4c-snapshot), "
                            "not on a manifests folder")
