"""kube-apiserver controls that read the files its flags name: the AuthorizationConfiguration
(--authorization-config) and the EncryptionConfiguration (--encryption-provider-config), on a
node laid out from static pod manifests in a temporary root."""

from __future__ import annotations

from pathlib import Path

import pytest
from static_node import StaticNode

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_control_plane_flags.py"
AUTHZ = "/etc/kubernetes/authz.yaml"
ENC = "/etc/kubernetes/enc/config.yaml"
AUTHZ_IDS = ("K4C-CL-API-005", "K4C-CL-API-006", "K4C-CL-API-007")
KEY = {"keys": [{"name": "k1", "secret": "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg=="}]}


def _authz(*types: str) -> dict:
    authorizers = [{"type": t, "name": t.lower()} for t in types]
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AuthorizationConfiguration",
            "authorizers": authorizers}


def _apiserver(node: StaticNode, *flags: str) -> None:
    node.manifest("kube-apiserver", ["kube-apiserver", "--anonymous-auth=false", *flags])


def _outcomes(res, ids) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in res.controls if r["id"] in ids}


def test_authorizers_read_from_the_authorization_config(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _apiserver(node, f"--authorization-config={AUTHZ}")
    node.file(AUTHZ, _authz("Webhook", "AlwaysAllow"))
    res = run_k4c(*node.args(), paths=[SUITE], k="authz or always_allow")
    # The file lists AlwaysAllow and neither Node nor RBAC: all three fail (no silent pass).
    assert _outcomes(res, AUTHZ_IDS) == dict.fromkeys(AUTHZ_IDS, "FAIL"), res.stdout[-3000:]
    [row] = res.offenders("K4C-CL-API-005")
    assert row["problem"] == f"authorizers in {AUTHZ}: Webhook,AlwaysAllow"
    assert row["source"] == "static pod manifest /etc/kubernetes/manifests/kube-apiserver.yaml"


def test_node_and_rbac_in_the_authorization_config_pass(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _apiserver(node, f"--authorization-config={AUTHZ}")
    node.file(AUTHZ, _authz("Node", "RBAC", "Webhook"))
    res = run_k4c(*node.args(), paths=[SUITE], k="authz or always_allow")
    assert _outcomes(res, AUTHZ_IDS) == dict.fromkeys(AUTHZ_IDS, "PASS"), res.stdout[-3000:]


def test_authorization_mode_without_node(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _apiserver(node, "--authorization-mode=RBAC")
    res = run_k4c(*node.args(), paths=[SUITE], k="authz or always_allow")
    assert _outcomes(res, AUTHZ_IDS) == {"K4C-CL-API-005": "PASS", "K4C-CL-API-006": "FAIL",
                                         "K4C-CL-API-007": "PASS"}
    assert res.offenders("K4C-CL-API-006")[0]["problem"] == "--authorization-mode=RBAC"


@pytest.mark.parametrize("content, flags, reason", [
    (None, [], "the --authorization-config file does not exist"),
    ("kind: AuthorizationConfiguration\nauthorizers: [unclosed\n", [], "malformed YAML line"),
    ({"kind": "EncryptionConfiguration", "resources": []}, [],
     "is of kind 'EncryptionConfiguration', not AuthorizationConfiguration"),
    ({"kind": "AuthorizationConfiguration", "authorizers": []}, [], "lists no authorizers"),
    ({"kind": "AuthorizationConfiguration", "authorizers": [{"type": "Node"}, {"name": "x"}]}, [],
     "an authorizer of the AuthorizationConfiguration has no type"),
    (_authz("Node", "RBAC"), ["--authorization-mode=Node,RBAC"], "both --authorization-config and"),
], ids=["missing", "malformed", "other-kind", "no-authorizers", "no-type", "both-flags"])
def test_unreadable_authorization_config_errors(run_k4c, tmp_path, content, flags, reason):
    node = StaticNode(tmp_path / "root")
    _apiserver(node, f"--authorization-config={AUTHZ}", *flags)
    if content is not None:
        node.file(AUTHZ, content)
    res = run_k4c(*node.args(), paths=[SUITE], k="authz or always_allow")
    assert _outcomes(res, AUTHZ_IDS) == dict.fromkeys(AUTHZ_IDS, "ERROR"), res.stdout[-3000:]
    for r in res.controls:
        assert r["reason"].startswith(f"could not read {AUTHZ} on local: ") and reason in r["reason"], r["reason"]


def _encryption(*entries: tuple[list[str], list[str]]) -> dict:
    """An EncryptionConfiguration: each entry is (resources, provider names in order)."""
    def provider(name):
        if name == "identity":
            return {name: {}}
        if name == "kms":
            return {name: {"apiVersion": "v2", "name": "vault", "endpoint": "unix:///run/kms/socket.sock"}}
        return {name: KEY}
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": res, "providers": [provider(p) for p in providers]}
                          for res, providers in entries]}


def _api022(run_k4c, tmp_path, content) -> dict:
    node = StaticNode(tmp_path / "root")
    _apiserver(node, f"--encryption-provider-config={ENC}")
    if content is not None:
        node.file(ENC, content)
    res = run_k4c(*node.args(), paths=[SUITE], k="encryption_provider")
    return res.control("K4C-CL-API-022") | {"offenders": res.offenders("K4C-CL-API-022")}


@pytest.mark.parametrize("entries", [
    [(["secrets"], ["aescbc", "identity"])],
    # Wildcards (EncryptionConfiguration v1): "*.*" is every resource, "*." every resource of the
    # core group, which Secrets belong to.
    [(["*.*"], ["aescbc", "identity"])],
    [(["*."], ["secretbox"])],
    [(["events"], ["identity"]), (["configmaps", "*."], ["kms"])],
    [(["events"], ["identity"]), (["*.apps"], ["identity"]), (["*.*"], ["aesgcm"])],
], ids=["secrets", "all-resources", "core-group", "core-group-second", "all-after-others"])
def test_secrets_encrypted_by_their_first_provider(run_k4c, tmp_path, entries):
    rec = _api022(run_k4c, tmp_path, _encryption(*entries))
    assert rec["outcome"] == "PASS", rec


@pytest.mark.parametrize("entries, problem", [
    # identity first for secrets: written in plain text, although aescbc is configured after it.
    ([(["secrets"], ["identity", "aescbc"])], f"{ENC}: first provider for secrets (secrets) is identity"),
    ([(["*.*"], ["identity", "aescbc"])], f"{ENC}: first provider for secrets (*.*) is identity"),
    # Entries are matched in order: an earlier entry for secrets wins over a later "*.*".
    ([(["secrets"], ["identity"]), (["*.*"], ["aescbc"])], f"{ENC}: first provider for secrets (secrets) is identity"),
    # "*.apps" is the apps group only; a bare "*" is no wildcard of the configuration.
    ([(["*.apps", "*"], ["aescbc"])], f"{ENC}: no provider configured for secrets"),
    ([(["secrets.apps"], ["aescbc"])], f"{ENC}: no provider configured for secrets"),
], ids=["identity-first", "identity-first-wildcard", "earlier-entry-wins", "other-group", "named-in-other-group"])
def test_secrets_not_encrypted_fail(run_k4c, tmp_path, entries, problem):
    rec = _api022(run_k4c, tmp_path, _encryption(*entries))
    assert rec["outcome"] == "FAIL", rec
    assert [r["problem"] for r in rec["offenders"]] == [problem]


@pytest.mark.parametrize("content, reason", [
    (None, "the --encryption-provider-config file does not exist"),
    ("kind: EncryptionConfiguration\nresources:\n  - resources: [secrets\n", "malformed YAML line"),
    ("just a string\n", "the --encryption-provider-config file is not a YAML mapping"),
    ({"kind": "EncryptionConfiguration"}, "has no resources list"),
    ({"kind": "EncryptionConfiguration", "resources": [{"resources": "secrets", "providers": [{"aescbc": KEY}]}]},
     "has no list of names"),
    ({"kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets"], "providers": []}]},
     "the resources[] entry for secrets has no provider list"),
], ids=["missing", "malformed", "not-a-mapping", "no-resources", "names-not-a-list", "no-providers"])
def test_unreadable_encryption_config_errors(run_k4c, tmp_path, content, reason):
    rec = _api022(run_k4c, tmp_path, content)
    assert rec["outcome"] == "ERROR", rec
    assert rec["reason"].startswith(f"could not read {ENC} on local: ") and reason in rec["reason"], rec["reason"]
