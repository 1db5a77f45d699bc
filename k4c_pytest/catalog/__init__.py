"""Benchmarks k4c knows by id. The requirement-level catalogs grow with each layer."""

BENCHMARKS = {
    "cis-k8s-1.10": "CIS Kubernetes Benchmark v1.10.0",
    "nsa-cisa-1.2": "NSA/CISA Kubernetes Hardening Guidance v1.2",
    "pss": "Kubernetes Pod Security Standards",
    "cis-aws-3.0": "CIS Amazon Web Services Foundations Benchmark v3.0.0",
    "cis-eks-1.5": "CIS Amazon Elastic Kubernetes Service Benchmark v1.5.0",
    "cis-docker-1.7": "CIS Docker Benchmark v1.7.0",
    "owasp-asvs-4.0.3": "OWASP Application Security Verification Standard 4.0.3",
    "nist-ssdf-1.1": "NIST SP 800-218 Secure Software Development Framework v1.1",
}
