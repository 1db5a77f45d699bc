"""cosign signatures, verified with ``cryptography`` against a PEM public key.

cosign stores the signature of the image ``repo@sha256:<hex>`` as a manifest tagged
``sha256-<hex>.sig`` in the same repository. Each of its layers is a simple-signing payload
(``application/vnd.dev.cosign.simplesigning.v1+json``) whose annotation
``dev.cosignproject.cosign/signature`` is the base64 signature of the payload's bytes; the
payload names the signed manifest in ``critical.image.docker-manifest-digest``.

An image is signed when one payload both verifies with the key and names the image's digest
(its platform manifest's, or the index's when the index was what cosign signed). The result
says which of "unsigned", "does not verify with the key" and "signed for another digest" it is
otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.image_registry import ManifestNotFound

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
MAX_PAYLOAD = 1024 * 1024

VERIFIED, UNSIGNED, BAD_SIGNATURE, DIGEST_MISMATCH = "verified", "unsigned", "bad signature", "digest mismatch"


class Store(Protocol):
    def manifest(self, repo: str, reference: str) -> Any: ...

    def blob(self, repo: str, digest: str, max_bytes: int) -> bytes: ...


def load_public_key(pem: bytes):
    """A public key from PEM; raises ValueError when it is none k4c can verify with."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise ValueError(f"unsupported key type {type(key).__name__}")
    return key


def verify_bytes(key, signature: bytes, payload: bytes) -> bool:
    """Whether ``signature`` is the key's signature of ``payload`` (SHA-256, as cosign signs)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, payload, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                           hashes.SHA256())
        else:
            key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sig"


@dataclass(frozen=True)
class SignatureCheck:
    status: str
    reason: str
    #: the tag the signature was looked up (or found) under
    tag: str

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    def row(self) -> dict[str, str]:
        return {"status": self.status, "signature tag": self.tag, "reason": self.reason}


def _payload_digest(payload: bytes) -> tuple[str | None, str | None]:
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        return critical["image"]["docker-manifest-digest"], critical.get("type")
    except (ValueError, KeyError, TypeError):
        return None, None


def check(store: Store, repo: str, digests: list[str], key) -> SignatureCheck:
    """Look for a cosign signature of any of ``digests`` (most specific first) and verify it."""
    findings: list[SignatureCheck] = []
    for digest in digests:
        tag = signature_tag(digest)
        try:
            sig_manifest = store.manifest(repo, tag)
        except ManifestNotFound:
            continue
        doc = sig_manifest.json()
        layers = [d for d in doc.get("layers") or [] if SIGNATURE_ANNOTATION in (d.get("annotations") or {})]
        if not layers:
            findings.append(SignatureCheck(BAD_SIGNATURE, f"{tag} holds no layer with a {SIGNATURE_ANNOTATION} "
                                                          "annotation", tag))
        for desc in layers:
            try:
                signature = base64.b64decode(desc["annotations"][SIGNATURE_ANNOTATION], validate=True)
            except (binascii.Error, ValueError):
                findings.append(SignatureCheck(BAD_SIGNATURE, f"{tag}: the signature annotation is not base64", tag))
                continue
            payload = store.blob(repo, desc["digest"], MAX_PAYLOAD)
            if not verify_bytes(key, signature, payload):
                findings.append(SignatureCheck(BAD_SIGNATURE, f"{tag}: the signature does not verify with the "
                                                              "--k4c-cosign-key (signed with another key, or altered)",
                                               tag))
                continue
            signed, kind = _payload_digest(payload)
            if kind != COSIGN_TYPE:
                findings.append(SignatureCheck(BAD_SIGNATURE, f"{tag}: the payload is not a simple-signing "
                                                              f"'{COSIGN_TYPE}' document", tag))
            elif signed != digest:
                findings.append(SignatureCheck(DIGEST_MISMATCH, f"{tag}: the signed payload names {signed}, "
                                                                f"not the image's digest {digest}", tag))
            else:
                return SignatureCheck(VERIFIED, f"{tag}: verified with the --k4c-cosign-key", tag)
    if not findings:
        tags = " or ".join(signature_tag(d) for d in digests)
        return SignatureCheck(UNSIGNED, f"no cosign signature: the repository has no tag {tags}",
                              signature_tag(digests[0]))
    # The most telling failure: a digest mismatch says more than a bad signature.
    findings.sort(key=lambda f: f.status != DIGEST_MISMATCH)
    return findings[0]


__all__ = ["check", "load_public_key", "SignatureCheck", "DataUnavailable"]
