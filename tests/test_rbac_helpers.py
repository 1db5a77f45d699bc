"""k4c_pytest.rbac on plain dicts: rule matching, subjects, wildcards, resolved bindings."""

from __future__ import annotations

import pytest

from k4c_pytest import rbac
from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.sources.cluster import ClusterSource

SYSTEM = ("kube-system", "kube-public", "kube-node-lease")


class FakeBackend:
    """A cluster backend serving fixed objects per Kind (``mode`` as given)."""

    def __init__(self, objects: list[dict], mode: str = "live", not_served: tuple[str, ...] = ()):
        self.mode = mode
        self.objects = objects
        self.not_served = not_served

    def describe(self):
        return {"mode": self.mode}

    def server_version(self):
        return None

    def fetch(self, kind):
        if kind.kind in self.not_served:
            raise KindNotServed(kind.key)
        return [o for o in self.objects if o["kind"] == kind.kind]


def role(name, rules, namespace=None, kind=None, labels=None):
    meta = {"name": name, **({"namespace": namespace} if namespace else {}), **({"labels": labels} if labels else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind or ("Role" if namespace else "ClusterRole"),
            "metadata": meta, "rules": rules}


def binding(name, role_name, subjects, namespace=None, role_kind="ClusterRole"):
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": role_kind, "name": role_name}, "subjects": subjects}


# -- grants -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, verb, resource, group, expected", [
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "get", "secrets", "", True),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "list", "secrets", "", False),
    ({"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["get"]}, "get", "secrets", "", False),
    ({"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["get"]}, "get", "secrets", "", True),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, "get", "secrets", "", True),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}, "watch", "secrets", "", True),
    # resourceNames narrows a rule but it still grants those Secrets
    ({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"], "verbs": ["get"]}, "get", "secrets", "", True),
    # subresources: exact, */sub, and "pods/*" which the API server does not treat as a pattern
    ({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}, "create", "pods/exec", "", True),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, "create", "pods/exec", "", True),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, "create", "pods", "", False),
    ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}, "create", "pods/exec", "", False),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, "create", "pods/exec", "", False),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["create"]}, "create", "pods/exec", "", True),
    # a non-resource rule grants nothing on resources
    ({"nonResourceURLs": ["*"], "verbs": ["*"]}, "get", "secrets", "", False),
    ({}, "get", "secrets", "", False),
])
def test_grants(rule, verb, resource, group, expected):
    assert rbac.grants([rule], verb, resource, group) is expected


def test_grants_any_rule_of_several():
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
             {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    assert rbac.grants(rules, "list", "secrets")
    assert not rbac.grants(rules, "get", "secrets")


@pytest.mark.parametrize("resources, expected", [
    (["userextras/scopes"], True), (["userextras"], False), (["*"], True), (["*/scopes"], True),
    (["users"], False), (["uids"], False),
])
def test_grants_any_subresource(resources, expected):
    rule = {"apiGroups": ["authentication.k8s.io"], "resources": resources, "verbs": ["impersonate"]}
    assert rbac.grants_any_subresource([rule], "impersonate", "userextras", "authentication.k8s.io") is expected
    assert not rbac.grants_any_subresource([rule], "get", "userextras", "authentication.k8s.io")


# -- subjects ---------------------------------------------------------------------------------

@pytest.mark.parametrize("subject, expected", [
    (rbac.Subject("Group", "system:masters"), True),
    (rbac.Subject("User", "system:kube-scheduler"), True),
    (rbac.Subject("Group", "system:nodes"), True),
    (rbac.Subject("ServiceAccount", "namespace-controller", "kube-system"), True),
    (rbac.Subject("ServiceAccount", "default", "default"), False),
    (rbac.Subject("ServiceAccount", "app", "payments"), False),
    (rbac.Subject("User", "alice"), False),
    (rbac.Subject("Group", "developers"), False),
    # the groups every identity or every service account is in are never "system only"
    (rbac.Subject("Group", "system:authenticated"), False),
    (rbac.Subject("Group", "system:unauthenticated"), False),
    (rbac.Subject("Group", "system:serviceaccounts"), False),
    (rbac.Subject("User", "system:anonymous"), False),
    # a service account named as a User or through its namespace's group: only system namespaces
    (rbac.Subject("User", "system:serviceaccount:kube-system:generic-garbage-collector"), True),
    (rbac.Subject("User", "system:serviceaccount:payments:app"), False),
    (rbac.Subject("Group", "system:serviceaccounts:kube-system"), True),
    (rbac.Subject("Group", "system:serviceaccounts:payments"), False),
    # only Users and Groups carry the system: prefix meaningfully
    (rbac.Subject("Robot", "system:thing"), False),
])
def test_subject_is_system(subject, expected):
    assert subject.is_system(SYSTEM) is expected


def test_subject_key_and_str_match_the_settings_format():
    assert rbac.Subject("Group", "system:masters").key == "Group:system:masters"
    assert rbac.Subject("ServiceAccount", "ci", "tools").key == "ServiceAccount:tools/ci"
    assert str(rbac.Subject("ServiceAccount", "ci", "tools")) == "ServiceAccount tools/ci"
    assert str(rbac.Subject("User", "alice")) == "User alice"


# -- wildcards --------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, expected", [
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, []),
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, ["apiGroups", "resources", "verbs"]),
    ({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}, ["apiGroups", "resources"]),
    ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}, []),
    ({"nonResourceURLs": ["*"], "verbs": ["get"]}, ["nonResourceURLs"]),
    ({"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}, []),
])
def test_wildcard_fields(rule, expected):
    assert rbac.wildcard_fields(rule) == expected


BOOT = {"kubernetes.io/bootstrapping": "rbac-defaults"}
GC_RULE = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["delete", "get", "list", "patch", "update", "watch"]}


def test_bootstrap_wildcard_needs_label_name_and_rule():
    gc = role("system:controller:generic-garbage-collector", [GC_RULE], labels=BOOT)
    assert rbac.is_bootstrap_wildcard(gc, GC_RULE)
    # a narrower rule is still within the bootstrap policy
    assert rbac.is_bootstrap_wildcard(gc, {**GC_RULE, "verbs": ["get", "list"]})
    # the same role without the label is someone else's role of that name
    assert not rbac.is_bootstrap_wildcard(role(gc["metadata"]["name"], [GC_RULE]), GC_RULE)
    # the label on any other role is not enough: anyone who writes ClusterRoles can set it
    fake = role("my-operator", [GC_RULE], labels=BOOT)
    assert not rbac.is_bootstrap_wildcard(fake, GC_RULE)
    fake_system = role("system:controller:my-operator", [GC_RULE], labels=BOOT)
    assert not rbac.is_bootstrap_wildcard(fake_system, GC_RULE)
    # a bootstrap role widened beyond its own rule (the API server never removes extras)
    assert not rbac.is_bootstrap_wildcard(gc, {**GC_RULE, "verbs": ["*"]})
    assert not rbac.is_bootstrap_wildcard(gc, {"apiGroups": ["*"], "resources": ["*"], "verbs": ["create"]})
    # a namespaced Role is never a bootstrap wildcard
    assert not rbac.is_bootstrap_wildcard(role(gc["metadata"]["name"], [GC_RULE], "default", labels=BOOT), GC_RULE)


def test_bootstrap_cluster_admin_rules_are_exempt():
    admin = role("cluster-admin", list(rbac.BOOTSTRAP_WILDCARD_RULES["cluster-admin"]), labels=BOOT)
    assert all(rbac.is_bootstrap_wildcard(admin, r) for r in admin["rules"])


# -- resolved bindings ------------------------------------------------------------------------

def _source(objects, mode="live", not_served=()):
    return ClusterSource(FakeBackend(objects, mode, not_served))


def test_resolve_bindings_with_rules_and_subjects():
    objs = [
        role("reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        role("local", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "team"),
        binding("crb", "reader", [{"kind": "Group", "name": "devs"}]),
        # a RoleBinding may name a service account without its namespace: it is the binding's
        binding("rb", "local", [{"kind": "ServiceAccount", "name": "ci"}], "team", role_kind="Role"),
        binding("rb-cr", "reader", [{"kind": "User", "name": "bob"}], "team"),
        binding("dangling", "gone", [{"kind": "User", "name": "carol"}]),
    ]
    by_name = {b.name: b for b in rbac.resolve_bindings(_source(objs))}
    assert by_name["crb"].grants("get", "secrets") and by_name["crb"].ref == "ClusterRoleBinding/crb"
    assert by_name["rb"].subjects == (rbac.Subject("ServiceAccount", "ci", "team"),)
    assert by_name["rb"].grants("create", "pods") and by_name["rb"].role_ref == "Role/local"
    assert by_name["rb-cr"].grants("get", "secrets") and by_name["rb-cr"].ref == "RoleBinding/team/rb-cr"
    # live: a binding to a role that does not exist grants nothing, and that is known
    assert not by_name["dangling"].role_found and by_name["dangling"].rules == ()
    assert by_name["dangling"].rules_known
    assert by_name["rb"].row(by_name["rb"].subjects[0]) == {
        "kind": "RoleBinding", "namespace": "team", "name": "rb", "role": "Role/local", "subject": "ServiceAccount team/ci"}


def test_role_of_another_namespace_is_not_used():
    objs = [role("local", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], "a"),
            binding("rb", "local", [{"kind": "User", "name": "x"}], "b", role_kind="Role")]
    (b,) = rbac.resolve_bindings(_source(objs))
    assert not b.role_found and not b.grants("get", "secrets")


def test_manifests_role_not_defined_is_unknown_except_cluster_admin():
    objs = [binding("view", "view", [{"kind": "User", "name": "carol"}], "team"),
            binding("admin", "cluster-admin", [{"kind": "User", "name": "alice"}])]
    by_name = {b.name: b for b in rbac.resolve_bindings(_source(objs, mode="manifests"))}
    assert not by_name["view"].rules_known
    assert by_name["admin"].rules_known and by_name["admin"].grants("get", "secrets")


def test_subjects_granted_and_require_known():
    objs = [role("reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
            binding("mixed", "reader", [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "system:masters"}]),
            binding("unknown", "view", [{"kind": "User", "name": "carol"}], "team"),
            binding("unknown-system", "view", [{"kind": "Group", "name": "system:nodes"}], "team")]
    bindings = rbac.resolve_bindings(_source(objs, mode="manifests"))
    allowed = lambda s: s.is_system(SYSTEM)  # noqa: E731
    check = lambda rules: ", ".join(v for v in ("get", "list", "watch") if rbac.grants(rules, v, "secrets"))  # noqa: E731
    found, unknown = rbac.subjects_granted(bindings, allowed, check)
    assert [(g.binding.name, str(g.subject), g.detail) for g in found] == [("mixed", "User alice", "get, list")]
    assert found[0].row()["granted"] == "get, list"
    # only bindings to subjects that matter are unknown
    assert [b.name for b in unknown] == ["unknown"]
    with pytest.raises(DataUnavailable) as exc:
        rbac.require_known(unknown)
    assert exc.value.source == "ClusterRole/view" and "RoleBinding/team/unknown" in exc.value.reason
    rbac.require_known([])


def test_unreadable_rbac_kind_raises_and_unserved_rbac_api_is_not_applicable():
    class Forbidden(FakeBackend):
        def fetch(self, kind):
            if kind.kind == "Role":
                raise DataUnavailable(kind.key, "forbidden (HTTP 403)")
            return super().fetch(kind)

    with pytest.raises(DataUnavailable):
        rbac.resolve_bindings(ClusterSource(Forbidden([])))
    # without the RBAC API there is nothing to check: N/A, never an empty PASS
    with pytest.raises(KindNotServed):
        rbac.resolve_bindings(_source([], not_served=("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")))


def test_binding_is_default_reads_the_label():
    b = binding("x", "y", [])
    b["metadata"]["labels"] = dict(BOOT)
    (resolved,) = rbac.resolve_bindings(_source([b]))
    assert resolved.is_default()


# -- aggregated ClusterRoles --------------------------------------------------------------------

AGG = "rbac.example.com/aggregate-to-monitoring"


@pytest.mark.parametrize("selector, labels, expected", [
    ({}, {}, True),  # an empty selector selects everything, as in the API server
    ({}, {"a": "1"}, True),
    (None, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchLabels": {"a": "1"}}, {}, False),
    ({"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, {"a": "3"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {"a": "2"}, False),
    # matchLabels and matchExpressions together: both must hold
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
     {"a": "1", "b": "x"}, True),
])
def test_selector_matches(selector, labels, expected):
    assert rbac.selector_matches(selector, labels) is expected


def aggregated(name, *selectors, rules=None):
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
           "aggregationRule": {"clusterRoleSelectors": list(selectors)}}
    if rules is not None:
        obj["rules"] = rules
    return obj


SECRETS_GET = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
PODS_CREATE = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
IMPERSONATE = {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}


def aggregation_objects():
    return [
        aggregated("monitoring", {"matchLabels": {AGG: "true"}},
                   {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["ops"]}]}),
        role("mon-secrets", [SECRETS_GET], labels={AGG: "true"}),
        role("ops-pods", [PODS_CREATE, SECRETS_GET], labels={"tier": "ops"}),
        role("not-selected", [IMPERSONATE], labels={AGG: "false", "tier": "dev"}),
        binding("mon", "monitoring", [{"kind": "User", "name": "dave"}]),
    ]


@pytest.mark.parametrize("rules", [None, []])
def test_aggregated_cluster_role_gets_the_rules_of_the_roles_it_selects(rules):
    objs = aggregation_objects()
    objs[0] = aggregated("monitoring", *objs[0]["aggregationRule"]["clusterRoleSelectors"], rules=rules)
    (b,) = rbac.resolve_bindings(_source(objs))
    # each distinct rule once, from both selectors; the unselected role adds nothing
    assert b.rules == (SECRETS_GET, PODS_CREATE)
    assert b.grants("get", "secrets") and b.grants("create", "pods") and not b.grants("impersonate", "users")
    # a live cluster or snapshot holds every ClusterRole: the resolution is complete
    assert b.rules_known


def test_filled_in_rules_of_an_aggregated_role_are_used_as_stored():
    objs = aggregation_objects()
    objs[0]["rules"] = [IMPERSONATE]  # what the aggregation controller wrote
    (b,) = rbac.resolve_bindings(_source(objs))
    assert b.rules == (IMPERSONATE,)


def test_aggregation_resolves_nested_aggregated_roles_and_survives_cycles():
    objs = [
        aggregated("top", {"matchLabels": {"level": "top"}}),
        {**aggregated("middle", {"matchLabels": {"level": "middle"}}),
         "metadata": {"name": "middle", "labels": {"level": "top"}}},
        role("leaf", [PODS_CREATE], labels={"level": "middle"}),
        # two aggregated roles selecting each other and nothing else grant nothing
        {**aggregated("a", {"matchLabels": {"ring": "b"}}), "metadata": {"name": "a", "labels": {"ring": "a"}}},
        {**aggregated("b", {"matchLabels": {"ring": "a"}}), "metadata": {"name": "b", "labels": {"ring": "b"}}},
        # a role selecting everything does not select itself
        aggregated("everything", {}),
        binding("t", "top", [{"kind": "User", "name": "erin"}]),
        binding("ring", "a", [{"kind": "User", "name": "erin"}]),
        binding("all", "everything", [{"kind": "User", "name": "erin"}]),
    ]
    by_name = {b.name: b for b in rbac.resolve_bindings(_source(objs))}
    assert by_name["t"].rules == (PODS_CREATE,)
    assert by_name["ring"].rules == ()
    assert by_name["all"].rules == (PODS_CREATE,)


def test_manifests_aggregated_role_finds_offenders_but_never_passes():
    allowed = lambda s: s.is_system(SYSTEM)  # noqa: E731
    secrets = lambda rules: "get" if rbac.grants(rules, "get", "secrets") else ""  # noqa: E731
    impersonate = lambda rules: "impersonate" if rbac.grants(rules, "impersonate", "users") else ""  # noqa: E731
    bindings = rbac.resolve_bindings(_source(aggregation_objects(), mode="manifests"))
    (b,) = bindings
    assert b.rules == (SECRETS_GET, PODS_CREATE) and not b.rules_known
    assert "aggregated ClusterRole" in b.unknown_reason
    # what the folder's roles grant is an offender...
    found, unknown = rbac.subjects_granted(bindings, allowed, secrets)
    assert [(g.binding.name, str(g.subject), g.detail) for g in found] == [("mon", "User dave", "get")]
    assert unknown == []
    # ...and what they do not grant is unknown: ClusterRoles outside the folder may add it
    found, unknown = rbac.subjects_granted(bindings, allowed, impersonate)
    assert found == [] and unknown == [b]
    with pytest.raises(DataUnavailable) as exc:
        rbac.require_known(unknown)
    assert exc.value.source == "ClusterRole/monitoring"
    assert exc.value.reason.startswith("bound by ClusterRoleBinding/mon but it is an aggregated ClusterRole")


def test_require_known_names_each_reason():
    objs = [*aggregation_objects(), binding("v", "view", [{"kind": "User", "name": "carol"}], "team")]
    bindings = rbac.resolve_bindings(_source(objs, mode="manifests"))
    unknown = [b for b in bindings if not b.rules_known]
    with pytest.raises(DataUnavailable) as exc:
        rbac.require_known(unknown)
    assert exc.value.source == "ClusterRole/monitoring, ClusterRole/view"
    assert "ClusterRole/monitoring: it is an aggregated ClusterRole" in exc.value.reason
    assert "ClusterRole/view: not defined in the data" in exc.value.reason
