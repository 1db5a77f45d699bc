"""Secrets encrypted at rest, proven from etcd itself (CIS Kubernetes Benchmark v1.10, 1.2.27
and 1.2.28): with ``--k4c-etcd`` every Secret's stored value is read and must carry the
``k8s:enc:`` prefix of an encrypting provider. Only that prefix is kept; no value is stored.
"""

from __future__ import annotations

import pytest


@pytest.mark.control(
    "K4C-CL-EAR-001", title="Every Secret is stored encrypted in etcd", severity="critical",
    benchmarks={"cis-k8s-1.10": ["1.2.27", "1.2.28"]},
    remediation="Give kube-apiserver an EncryptionConfiguration with aescbc, secretbox or kms first for "
                "secrets, then rewrite existing Secrets (kubectl get secrets -A -o json | kubectl replace -f -).")
@pytest.mark.provider_owned("etcd", eks="K4C-AWS-EKS-002 (secrets encryption)")
def test_secrets_encrypted_in_etcd(etcd, evidence):
    stored = etcd.secrets_or_na()
    plain = [s.row() for s in stored if not s.encrypted]
    providers = sorted({s.provider for s in stored if s.encrypted})
    evidence.note(f"Read {len(stored)} Secrets from etcd {etcd.endpoint} (prefix {etcd.prefix}/secrets/); "
                  f"encrypting providers seen: {', '.join(providers) or 'none'}. Only each value's prefix was kept.")
    evidence.table("Secrets stored without encryption", plain)
    assert not plain, f"{len(plain)} of {len(stored)} Secrets are stored unencrypted in etcd"
