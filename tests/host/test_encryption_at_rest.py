"""Encryption at rest proven from etcd: the real control plane with an EncryptionConfiguration
(aescbc; then secretbox) and without one; the raw etcd values decide PASS or FAIL."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Iterator

import pytest

from k4c_pytest import NotApplicable
from k4c_pytest.sources.etcd import EtcdSource, classify
from k4c_pytest.testing.controlplane import ControlPlane

pytestmark = pytest.mark.controlplane

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_encryption_at_rest.py"
CANARY = "k4c-canary-" + secrets.token_hex(8)


def _secret(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "stringData": {"password": CANARY}}


def _etcd_args(cp: ControlPlane, with_cert: bool = True) -> list[str]:
    args = [f"--k4c-etcd={cp.etcd_url}"]
    if cp.etcd_client_cert and with_cert:
        args += [f"--k4c-etcd-cert={cp.etcd_client_cert[0]}", f"--k4c-etcd-key={cp.etcd_client_cert[1]}"]
    if cp.etcd_tls:
        args.append(f"--k4c-etcd-cacert={cp.ca_path}")
    return args


@pytest.fixture(scope="module")
def identity_first_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """secretbox configured, but identity listed first: new Secrets are still written in plain text."""
    config = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
              "resources": [{"resources": ["secrets"], "providers": [
                  {"identity": {}},
                  {"secretbox": {"keys": [{"name": "sb", "secret": base64.b64encode(secrets.token_bytes(32)).decode()}]}}]}]}
    # A module fixture, started before pytester (run_k4c) points HOME at a temporary folder.
    with ControlPlane(tmp_path_factory.mktemp("identity-first"), encryption_config=config, etcd_tls=True) as cp:
        yield cp


def test_encrypted_control_plane_passes(run_k4c, hardened_node):
    cp = hardened_node.cp  # aescbc, etcd over TLS with client certificates
    with cp.api().applied(_secret("k4c-ear-pass")):
        res = run_k4c(*_etcd_args(cp), paths=[SUITE])
    rec = res.control("K4C-CL-EAR-001")
    assert rec["outcome"] == "PASS", res.stdout[-2000:]
    assert "aescbc" in rec["evidence"][0]["text"]
    assert CANARY not in res.json_path.read_text() and CANARY not in res.stdout


def test_unencrypted_control_plane_fails(run_k4c, weak_node):
    cp = weak_node.cp  # no encryption config, plain-HTTP etcd
    with cp.api().applied(_secret("k4c-ear-fail")):
        res = run_k4c(*_etcd_args(cp), paths=[SUITE])
    rec = res.control("K4C-CL-EAR-001")
    assert rec["outcome"] == "FAIL", res.stdout[-2000:]
    rows = res.offenders("K4C-CL-EAR-001")
    assert {"secret": "default/k4c-ear-fail", "stored as": "plain protobuf (not encrypted)",
            "provider": "none (identity)", "key": ""} in rows
    # Secrets never leave the target: the plain-text value read from etcd is not in any output.
    assert CANARY not in res.json_path.read_text() and CANARY not in res.stdout


def test_identity_first_fails(run_k4c, identity_first_plane):
    # The flag is set and secretbox is configured, but identity comes first: what etcd holds
    # is plain text, and the proof says so.
    cp = identity_first_plane
    with cp.api().applied(_secret("written-plain")):
        res = run_k4c(*_etcd_args(cp), paths=[SUITE])
    assert res.control("K4C-CL-EAR-001")["outcome"] == "FAIL"
    assert [r["secret"] for r in res.offenders("K4C-CL-EAR-001")] == ["default/written-plain"]


def test_etcd_refusing_the_client_errors(run_k4c, hardened_node):
    cp = hardened_node.cp
    with cp.api().applied(_secret("k4c-ear-error")):
        res = run_k4c(*_etcd_args(cp, with_cert=False), paths=[SUITE])
    rec = res.control("K4C-CL-EAR-001")
    assert rec["outcome"] == "ERROR", res.stdout[-2000:]
    assert f"etcd {cp.etcd_url}" in rec["reason"]


def test_no_etcd_option_is_not_applicable(run_k4c):
    rec = run_k4c(paths=[SUITE]).control("K4C-CL-EAR-001")
    assert rec["outcome"] == "N/A" and "--k4c-etcd" in rec["reason"]


def test_no_secret_is_not_applicable(hardened_node):
    cp = hardened_node.cp
    src = EtcdSource(cp.etcd_url, cert=str(cp.etcd_client_cert[0]), key=str(cp.etcd_client_cert[1]),
                     cacert=str(cp.ca_path), prefix="/k4c-nothing-here")
    with pytest.raises(NotApplicable, match="no Secret stored"):
        src.secrets_or_na()


def test_pages_through_all_secrets(hardened_node, monkeypatch):
    cp = hardened_node.cp
    monkeypatch.setattr("k4c_pytest.sources.etcd.PAGE", 2)
    objs = [_secret(f"k4c-page-{i}") for i in range(5)]
    with cp.api().applied(*objs):
        src = EtcdSource(cp.etcd_url, cert=str(cp.etcd_client_cert[0]), key=str(cp.etcd_client_cert[1]),
                         cacert=str(cp.ca_path))
        names = [s.name for s in src.stored_secrets() if s.name.startswith("k4c-page-")]
    assert names == [f"k4c-page-{i}" for i in range(5)]
    assert src.requests >= 3


@pytest.mark.parametrize("value, provider, encrypted", [
    (b"k8s:enc:aescbc:v1:key1:\x00\x01", "aescbc", True),
    (b"k8s:enc:secretbox:v1:sb:xyz", "secretbox", True),
    (b"k8s:enc:kms:v2:vault:xyz", "kms:v2", True),
    (b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret", None, False),
    (b'{"kind":"Secret"}', None, False),
])
def test_classify(value, provider, encrypted):
    from k4c_pytest.sources.etcd import StoredSecret

    got, _, _ = classify(value)
    assert got == provider
    assert StoredSecret("ns", "n", got, None, "").encrypted is encrypted
