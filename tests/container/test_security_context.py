"""The effective security context helper (k4c_pytest.security_context) on its own."""

from __future__ import annotations

import pytest

from k4c_pytest import security_context as sc
from k4c_pytest.workloads import Workload


def _ctx(pod_spec: dict, field: str = "containers", index: int = 0) -> sc.ContainerContext:
    (found,) = [c for c in sc.containers(pod_spec) if c.field == field and c.index == index]
    return found


def test_container_field_wins_over_pod_field():
    spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [{"name": "app", "securityContext": {"runAsNonRoot": False}}]}
    s = _ctx(spec).get("runAsNonRoot")
    assert (s.value, s.source, s.path) == (False, sc.CONTAINER, "containers[0].securityContext.runAsNonRoot")
    s = _ctx(spec).get("runAsUser")
    assert (s.value, s.source, s.path) == (1000, sc.POD, "securityContext.runAsUser")


def test_runtime_default_when_neither_sets_a_field():
    spec = {"containers": [{"name": "app"}]}
    c = _ctx(spec)
    assert c.get("allowPrivilegeEscalation") == sc.Setting(True, sc.DEFAULT, "")
    assert c.get("seccompProfile").value == {"type": "Unconfined"}
    assert c.get("readOnlyRootFilesystem").describe() == "false (unset: runtime default)"
    assert not c.get("privileged").explicit


def test_null_counts_as_unset():
    spec = {"securityContext": {"runAsNonRoot": True},
            "containers": [{"name": "app", "securityContext": {"runAsNonRoot": None, "privileged": None}}]}
    c = _ctx(spec)
    assert c.get("runAsNonRoot").source == sc.POD
    assert c.get("privileged").source == sc.DEFAULT


def test_container_only_fields_are_not_inherited_from_the_pod():
    # A pod-level "privileged" is not a Kubernetes field: it must not leak into containers.
    spec = {"securityContext": {"privileged": True, "readOnlyRootFilesystem": True}, "containers": [{"name": "a"}]}
    c = _ctx(spec)
    assert c.get("privileged").source == sc.DEFAULT
    assert c.get("readOnlyRootFilesystem").value is False


def test_struct_fields_are_replaced_whole_but_windows_options_merge():
    spec = {"securityContext": {"seLinuxOptions": {"type": "spc_t", "level": "s0"},
                                "windowsOptions": {"runAsUserName": "ContainerUser", "hostProcess": False}},
            "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"level": "s1"},
                                                            "windowsOptions": {"hostProcess": True}}}]}
    c = _ctx(spec)
    assert c.value("seLinuxOptions") == {"level": "s1"}
    assert c.value("windowsOptions") == {"runAsUserName": "ContainerUser", "hostProcess": True}


def test_init_and_ephemeral_containers_are_visited_in_admission_order():
    spec = {"containers": [{"name": "app"}], "initContainers": [{"name": "setup"}],
            "ephemeralContainers": [{"name": "debug"}]}
    assert [c.label for c in sc.containers(spec)] == ["initContainers/setup", "containers/app",
                                                      "ephemeralContainers/debug"]
    assert _ctx(spec, "ephemeralContainers").path("securityContext") == "ephemeralContainers[0].securityContext"


def test_windows_and_user_namespace_pods():
    assert sc.is_windows({"os": {"name": "windows"}})
    assert not sc.is_windows({"os": {"name": "linux"}}) and not sc.is_windows({})
    assert sc.in_user_namespace({"hostUsers": False})
    assert not sc.in_user_namespace({"hostUsers": True}) and not sc.in_user_namespace({})


def test_unknown_field_is_a_programming_error():
    with pytest.raises(KeyError, match="sysctls is not a container securityContext field"):
        _ctx({"containers": [{"name": "a"}]}).get("sysctls")


def test_offender_row_names_workload_container_and_full_path():
    spec = {"containers": [{"name": "app", "securityContext": {"privileged": True}}]}
    w = Workload("Deployment", "shop", "web", {}, {}, spec, "spec.template.spec")
    c = _ctx(spec)
    assert sc.offender(w, c.path("securityContext", "privileged"), True, c) == {
        "kind": "Deployment", "namespace": "shop", "name": "web", "container": "containers/app",
        "field": "spec.template.spec.containers[0].securityContext.privileged", "value": "true"}
    assert sc.offender(w, "hostPID", True)["container"] == "(pod)"
    assert sc.offender(w, "annotations[a]", "x", under="metadata")["field"] == "spec.template.metadata.annotations[a]"
    pod = Workload("Pod", "shop", "p", {}, {}, spec, "spec")
    assert sc.offender(pod, "annotations[a]", "x", under="metadata")["field"] == "metadata.annotations[a]"


@pytest.mark.parametrize("value, shown", [
    (None, "unset"), (True, "true"), ({"type": "RuntimeDefault"}, "RuntimeDefault"),
    ({"type": "Localhost", "localhostProfile": "p.json"}, "Localhost:p.json"), (["NET_RAW", "SYS_ADMIN"], "NET_RAW, SYS_ADMIN"),
    ([], "[]"), (0, "0"),
])
def test_show(value, shown):
    assert sc.show(value) == shown
