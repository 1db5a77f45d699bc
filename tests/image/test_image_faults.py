"""Registry faults a real docker-registry will not produce on demand, injected at the HTTP layer
by a plain-HTTP FaultProxy in front of it (403, 5xx, digests of other algorithms), and faults of
its storage made for real (a signature payload whose bytes no longer match their digest).
Everything the proxy does not replace is the real registry's answer."""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest

from image_helpers import IMG, image_outcome, image_record, outcomes
from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.image_registry import Credentials, RegistryClient
from k4c_pytest.testing import oci
from k4c_pytest.testing.faults import FaultProxy, Rule

DENIED = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}


@pytest.fixture(scope="module")
def proxy(k4c_registry):
    """A proxy in front of the session's anonymous registry; rules are cleared after each test."""
    with FaultProxy.plain_http(k4c_registry.url) as p:
        yield p


@pytest.fixture
def fresh_proxy(proxy):
    proxy.reset()
    yield proxy
    proxy.reset()


def _unique_image(**kw) -> oci.Image:
    """A good image no other test pushed (its own layer, so its own blobs)."""
    return oci.image([[*oci.good_files(), oci.File("srv/unique", secrets.token_bytes(32))]], user="10001", **kw)


def _requests_to(proxy: FaultProxy, fragment: str) -> int:
    return sum(1 for method, path in proxy.requests if method == "GET" and fragment in path)


# -- 403 and 5xx: the image's controls ERROR ---------------------------------------------------

@pytest.mark.parametrize("what", ["manifest", "config"])
def test_forbidden_errors_every_control_of_that_image_only(what, k4c_registry, fresh_proxy, pushed,
                                                            run_k4c_module):
    img = _unique_image()
    oci.Pusher(k4c_registry.url).push("guarded", "1.0", img)
    path = "/v2/guarded/manifests/" if what == "manifest" else f"/v2/guarded/blobs/{img.config.digest}"
    fresh_proxy.rules.append(Rule(path, status=403, body=DENIED))
    guarded, other = f"{fresh_proxy.host}/guarded:1.0", f"{fresh_proxy.host}/app:good"
    res = run_k4c_module(f"--k4c-image={guarded}", f"--k4c-image={other}", f"--k4c-cosign-key={pushed.key_pem}",
                         *(f"--k4c-vuln-report={p}" for p in pushed.reports))
    assert outcomes(res, guarded) == dict.fromkeys(IMG, "ERROR"), res.stdout[-3000:]
    reason = image_record(res, "K4C-IMG-001", guarded)["reason"]
    assert f"/v2/guarded/{'manifests/1.0' if what == 'manifest' else 'blobs/' + img.config.digest}: " \
           "403 Forbidden for repository:guarded:pull: DENIED: requested access to the resource is denied" in reason
    # the refusal was the registry's answer, asked once for all nine controls
    assert fresh_proxy.rules[0].hits == 1
    # the other image, through the same proxy, is read as usual
    assert outcomes(res, other) == dict.fromkeys(IMG, "PASS"), res.stdout[-3000:]


# -- manifest digests of every algorithm are checked ------------------------------------------

def _good_manifest(k4c_registry) -> tuple[oci.Image, bytes]:
    img = _unique_image()
    oci.Pusher(k4c_registry.url).push("digests", "1.0", img)
    return img, img.manifest.data


def _serve(proxy: FaultProxy, reference: str, data: bytes) -> None:
    """The proxy answers the manifest ``reference`` with ``data``, as a registry that stores
    manifests under that digest would."""
    proxy.rules.append(Rule(f"/v2/digests/manifests/{reference}", status=200, body=data,
                            headers={"Content-Type": oci.OCI_MANIFEST}))


def test_manifest_by_sha512_digest_is_verified(k4c_registry, fresh_proxy, run_k4c_module):
    img, data = _good_manifest(k4c_registry)
    good = "sha512:" + hashlib.sha512(data).hexdigest()
    wrong = "sha512:" + hashlib.sha512(data + b" ").hexdigest()
    _serve(fresh_proxy, good, data)
    _serve(fresh_proxy, wrong, data)
    client = RegistryClient(fresh_proxy.host, Credentials())
    manifest = client.manifest("digests", good)
    assert manifest.data == data and manifest.digest == img.digest
    with pytest.raises(DataUnavailable, match=f"content does not match its digest {wrong}"):
        client.manifest("digests", wrong)
    # end to end: the image named by its sha512 digest is read (its config from the real
    # registry); the one whose content does not match ERRORs
    ok, bad = f"{fresh_proxy.host}/digests@{good}", f"{fresh_proxy.host}/digests@{wrong}"
    res = run_k4c_module(f"--k4c-image={ok}", f"--k4c-image={bad}", k="runs_as_non_root or secrets")
    assert image_outcome(res, "K4C-IMG-001", ok) == "PASS", res.stdout[-3000:]
    record = image_record(res, "K4C-IMG-001", bad)
    assert record["outcome"] == "ERROR" and "does not match its digest" in record["reason"]


def test_manifest_by_sha256_digest_of_other_content_is_refused(k4c_registry, fresh_proxy):
    _, data = _good_manifest(k4c_registry)
    other = oci.digest_of(data + b"\n")
    _serve(fresh_proxy, other, data)
    with pytest.raises(DataUnavailable, match=f"content does not match its digest {other}"):
        RegistryClient(fresh_proxy.host, Credentials()).manifest("digests", other)


def test_manifest_by_digest_of_unknown_algorithm_is_refused(k4c_registry, fresh_proxy, run_k4c_module):
    _, data = _good_manifest(k4c_registry)
    reference = "blake3:" + hashlib.sha256(data).hexdigest()
    _serve(fresh_proxy, reference, data)
    with pytest.raises(DataUnavailable, match="unsupported digest algorithm 'blake3'"):
        RegistryClient(fresh_proxy.host, Credentials()).manifest("digests", reference)
    ref = f"{fresh_proxy.host}/digests@{reference}"
    res = run_k4c_module(f"--k4c-image={ref}", k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", ref)
    assert record["outcome"] == "ERROR" and "unsupported digest algorithm 'blake3'" in record["reason"]


# -- configs are read once per digest --------------------------------------------------------

def test_tag_and_digest_of_one_image_read_its_config_once(k4c_registry, fresh_proxy, run_k4c_module):
    img = _unique_image()
    digest = oci.Pusher(k4c_registry.url).push("once", "1.0", img)
    by_tag, by_digest = f"{fresh_proxy.host}/once:1.0", f"{fresh_proxy.host}/once@{digest}"
    res = run_k4c_module(f"--k4c-image={by_tag}", f"--k4c-image={by_digest}", k="not supply")
    checked = [c for c in IMG if c not in ("K4C-IMG-008", "K4C-IMG-009")]
    assert {c: image_outcome(res, c, by_tag) for c in checked} == {c: image_outcome(res, c, by_digest)
                                                                   for c in checked}, res.stdout[-3000:]
    assert image_outcome(res, "K4C-IMG-001", by_tag) == "PASS"
    # each reference's manifest once, the config they share once, counted at the registry's door
    assert _requests_to(fresh_proxy, "/v2/once/manifests/1.0") == 1
    assert _requests_to(fresh_proxy, f"/v2/once/manifests/{digest}") == 1
    assert _requests_to(fresh_proxy, f"/v2/once/blobs/{img.config.digest}") == 1


# -- cosign signatures that cannot be read ERROR; an altered payload FAILs ----------------------

def _signed(k4c_registry, pushed_key, repo: str, tag: str, payload_edit=None) -> tuple[oci.Image, str]:
    """Push a unique image and its cosign signature (with ``payload_edit`` applied to the signed
    payload after signing, if given); returns the image and its signature's payload blob."""
    push = oci.Pusher(k4c_registry.url)
    img = _unique_image()
    digest = push.push(repo, tag, img)
    sig = oci.cosign_signature(digest, f"{k4c_registry.host}/{repo}", pushed_key)
    if payload_edit is not None:
        sig = _with_payload(sig, payload_edit(sig.layers[0].data))
    push.push(repo, oci.signature_tag(digest), sig)
    return img, sig.layers[0].digest


def _with_payload(sig: oci.Image, payload: bytes) -> oci.Image:
    """The signature manifest with its payload layer replaced, the signature annotation kept."""
    manifest = json.loads(sig.manifest.data)
    layer = oci.Blob(sig.layers[0].media_type, payload)
    manifest["layers"][0] = layer.descriptor(annotations=manifest["layers"][0]["annotations"])
    return oci.Image(oci.Blob(oci.OCI_MANIFEST, json.dumps(manifest).encode()), sig.config, [layer])


def _edited(payload: bytes) -> bytes:
    doc = json.loads(payload)
    doc["optional"] = {"approved-by": "someone else"}
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def signature_run(k4c_registry, proxy, run_k4c_module, tmp_path_factory):
    """One run over images whose signatures fail in different ways."""
    key, pem = oci.cosign_keypair()
    key_path = tmp_path_factory.mktemp("sig-key") / "cosign.pub"
    key_path.write_bytes(pem)
    images = {}
    for case in ("forbidden", "unavailable", "corrupt", "edited", "signed"):
        img, payload_digest = _signed(k4c_registry, key, "sigs", case, _edited if case == "edited" else None)
        images[case] = (img, payload_digest)
    proxy.reset()
    proxy.rules += [
        Rule(f"/v2/sigs/manifests/{oci.signature_tag(images['forbidden'][0].digest)}", status=403, body=DENIED),
        Rule(f"/v2/sigs/manifests/{oci.signature_tag(images['unavailable'][0].digest)}", status=500,
             body={"errors": [{"code": "UNKNOWN", "message": "storage backend failed"}]}),
    ]
    # The registry's storage: the payload's bytes change under their digest (a disk or bucket
    # fault); the registry serves them as they are.
    hexd = images["corrupt"][1].split(":")[1]
    data = k4c_registry.folder / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"
    raw = bytearray(data.read_bytes())
    raw[raw.index(b"docker-manifest-digest")] ^= 0x20  # same length, other bytes
    data.write_bytes(bytes(raw))
    refs = {case: f"{proxy.host}/sigs:{case}" for case in images}
    try:
        res = run_k4c_module(*(f"--k4c-image={r}" for r in refs.values()), f"--k4c-cosign-key={key_path}",
                             k="signed")
    finally:
        proxy.reset()
    return res, refs


@pytest.mark.parametrize("case, expected", [
    ("forbidden", "403 Forbidden for repository:sigs:pull: DENIED"),
    ("unavailable", "HTTP 500"),
    ("corrupt", "content does not match its digest"),
])
def test_unreadable_signature_errors(signature_run, case, expected):
    res, refs = signature_run
    record = image_record(res, "K4C-IMG-008", refs[case])
    assert record["outcome"] == "ERROR", record
    assert expected in record["reason"]


def test_payload_edited_after_signing_fails(signature_run):
    res, refs = signature_run
    record = image_record(res, "K4C-IMG-008", refs["edited"])
    assert record["outcome"] == "FAIL", record
    assert "the signature does not verify with the --k4c-cosign-key (signed with another key, or altered)" in \
        record["reason"]
    # the same key and the untouched payload verify: the failure is the edit's
    assert image_outcome(res, "K4C-IMG-008", refs["signed"]) == "PASS"
