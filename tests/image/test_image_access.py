"""Reaching images: basic auth, bearer tokens, docker config.json, unreachable registries,
OCI layouts and docker save tarballs, multi-platform indexes, the cluster's workload images."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from image_helpers import IMG, image_outcome, image_record, outcomes
from k4c_pytest.testing import oci

CONFIG_CONTROLS = ["K4C-IMG-001", "K4C-IMG-002", "K4C-IMG-004"]


def _push_good(registry) -> str:
    user, password = next(iter(registry.users.items()))
    oci.Pusher(registry.url, user, password).push("team/app", "1.0", oci.good_image())
    return f"{registry.host}/team/app:1.0"


@pytest.mark.parametrize("registry_fixture", ["k4c_registry_basic", "k4c_registry_token"])
def test_credentials_from_docker_config(registry_fixture, request, run_k4c_module, tmp_path):
    registry = request.getfixturevalue(registry_fixture)
    ref = _push_good(registry)
    config = registry.docker_config(tmp_path / "config.json")
    res = run_k4c_module(f"--k4c-image={ref}", f"--k4c-registry-auth={config}", k="not supply")
    assert {c: image_outcome(res, c, ref) for c in CONFIG_CONTROLS} == dict.fromkeys(CONFIG_CONTROLS, "PASS"), \
        res.stdout[-3000:]
    if registry.token_server is not None:
        # The bearer flow: the token service was asked, with the config's user, for a pull scope.
        assert {"user": "k4c", "service": "k4c-test-registry", "scope": "repository:team/app:pull"} in \
            registry.token_server.requests


@pytest.mark.parametrize("registry_fixture, expected", [
    ("k4c_registry_basic", "asks for basic auth and the docker config has no credentials for it"),
    ("k4c_registry_token", "401 Unauthorized for repository:team/app:pull"),
])
def test_no_credentials_is_error(registry_fixture, expected, request, run_k4c_module, tmp_path):
    registry = request.getfixturevalue(registry_fixture)
    ref = _push_good(registry)
    empty = tmp_path / "config.json"
    empty.write_text(json.dumps({"auths": {}}))
    res = run_k4c_module(f"--k4c-image={ref}", f"--k4c-registry-auth={empty}", k="not supply")
    for c in CONFIG_CONTROLS:
        assert image_outcome(res, c, ref) == "ERROR"
    assert expected in image_record(res, "K4C-IMG-001", ref)["reason"]


def test_wrong_password_is_error(k4c_registry_basic, run_k4c_module, tmp_path):
    ref = _push_good(k4c_registry_basic)
    config = k4c_registry_basic.docker_config(tmp_path / "config.json", "k4c", "not-the-password")
    res = run_k4c_module(f"--k4c-image={ref}", f"--k4c-registry-auth={config}", k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", ref)
    assert record["outcome"] == "ERROR"
    assert "401 Unauthorized" in record["reason"]


def test_unreachable_registry_is_error(run_k4c_module):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = f"127.0.0.1:{port}/app:1.0"
    res = run_k4c_module(f"--k4c-image={ref}", "--k4c-registry-timeout=2", k="not supply")
    assert {c: image_outcome(res, c, ref) for c in CONFIG_CONTROLS} == dict.fromkeys(CONFIG_CONTROLS, "ERROR")
    assert f"cannot reach http://127.0.0.1:{port}" in image_record(res, "K4C-IMG-001", ref)["reason"]


def test_no_images_makes_image_controls_na(run_k4c_module):
    res = run_k4c_module()
    assert {r["id"]: r["outcome"] for r in res.controls} == dict.fromkeys(IMG, "N/A")
    assert "no images: give --k4c-image" in res.controls[0]["reason"]


def test_multi_platform_index(k4c_registry, run_k4c_module):
    push = oci.Pusher(k4c_registry.url)
    amd = oci.good_image()
    arm = oci.good_image(user="", architecture="arm64")
    push.push_index("multi", "1.0", [(amd, "linux/amd64"), (arm, "linux/arm64")])
    ref = f"{k4c_registry.host}/multi:1.0"
    res = run_k4c_module(f"--k4c-image={ref}", k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", ref)
    assert record["outcome"] == "FAIL"
    offenders = [r for e in record["evidence"] if e["type"] == "table" and e["title"].startswith("Images that")
                 for r in e["rows"]]
    assert [r[1] for r in offenders] == ["linux/arm64"]
    res = run_k4c_module(f"--k4c-image={ref}", "--k4c-platform=linux/amd64", k="runs_as_non_root")
    assert image_outcome(res, "K4C-IMG-001", ref) == "PASS"
    res = run_k4c_module(f"--k4c-image={ref}", "--k4c-platform=linux/s390x", k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", ref)
    assert record["outcome"] == "ERROR"
    assert "no image for --k4c-platform linux/s390x (it has: linux/amd64, linux/arm64)" in record["reason"]


def test_oci_layout_and_signature(tmp_path, run_k4c_module):
    key, pem = oci.cosign_keypair()
    good, bad = oci.good_image(), oci.bad_image()
    layout = oci.write_layout(tmp_path / "layout", {
        "good": good, "bad": bad,
        oci.signature_tag(good.digest): oci.cosign_signature(good.digest, "demo/good", key)})
    (tmp_path / "key.pub").write_bytes(pem)
    res = run_k4c_module(f"--k4c-image-layout={layout}", f"--k4c-cosign-key={tmp_path / 'key.pub'}")
    # The signature is no image of its own.
    assert sorted({r["nodeid"].split("[")[1] for r in res.controls}) == ["bad]", "good]"]
    assert outcomes(res, "good") == {**dict.fromkeys(IMG, "PASS"), "K4C-IMG-009": "N/A"}, res.stdout[-3000:]
    assert outcomes(res, "bad") == {
        "K4C-IMG-001": "FAIL", "K4C-IMG-002": "FAIL", "K4C-IMG-003": "N/A", "K4C-IMG-004": "PASS",
        "K4C-IMG-005": "PASS", "K4C-IMG-006": "FAIL", "K4C-IMG-007": "FAIL", "K4C-IMG-008": "FAIL",
        "K4C-IMG-009": "N/A"}


def test_corrupted_layer_in_layout_errors_content_controls_only(tmp_path, run_k4c_module):
    img = oci.bad_image()
    layout = oci.write_layout(tmp_path / "layout", {"bad": img})
    blob = layout / "blobs" / "sha256" / img.layers[0].digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0xFF  # inside the gzip stream's trailer: the tar still reads, the digest does not match
    blob.write_bytes(bytes(data))
    res = run_k4c_module(f"--k4c-image-layout={layout}", k="not supply")
    assert image_outcome(res, "K4C-IMG-002", "bad") == "FAIL"  # the config is intact
    for c in ("K4C-IMG-005", "K4C-IMG-006", "K4C-IMG-007"):
        record = image_record(res, c, "bad")
        assert record["outcome"] == "ERROR", record
    assert "does not match its digest" in image_record(res, "K4C-IMG-006", "bad")["reason"] or \
        "cut or malformed" in image_record(res, "K4C-IMG-006", "bad")["reason"]


def test_layer_over_size_cap_errors_content_controls(pushed, run_k4c_module):
    ref = pushed.ref("bad")
    res = run_k4c_module(f"--k4c-image={ref}", "--k4c-max-layer-size=100", k="not supply")
    record = image_record(res, "K4C-IMG-006", ref)
    assert record["outcome"] == "ERROR"
    assert "more than the size cap of 100 (--k4c-max-layer-size)" in record["reason"]
    assert image_outcome(res, "K4C-IMG-001", ref) == "FAIL"


def test_docker_save_tarball(tmp_path, run_k4c_module):
    tarball = oci.write_docker_save(tmp_path / "images.tar", {"demo/bad:1": oci.bad_image()})
    res = run_k4c_module(f"--k4c-image-layout={tarball}", k="not supply")
    assert {c: image_outcome(res, c, "demo/bad:1") for c in ("K4C-IMG-001", "K4C-IMG-002", "K4C-IMG-006")} == \
        dict.fromkeys(("K4C-IMG-001", "K4C-IMG-002", "K4C-IMG-006"), "FAIL"), res.stdout[-3000:]
    assert image_outcome(res, "K4C-IMG-005", "demo/bad:1") == "PASS"


def _deployment(name: str, image: str, run_as_user: int | None) -> dict:
    pod_sc = {"runAsUser": run_as_user} if run_as_user is not None else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"securityContext": pod_sc, "containers": [{"name": "main", "image": image}]}}}}


def test_cluster_workload_images_deduplicated_with_overrides(pushed, tmp_path, run_k4c_module):
    host = pushed.host
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    docs = [_deployment("web", f"{host}/app:bad", 1000), _deployment("worker", f"{host}/app:bad", 2000),
            _deployment("api", f"{host}/app:good", None)]
    (manifests / "apps.yaml").write_text(yaml.safe_dump_all(docs))
    res = run_k4c_module(f"--k4c-manifests={manifests}", f"--k4c-image={host}/app:good", k="runs_as_non_root")
    labels = sorted(r["nodeid"].split("[", 1)[1][:-1] for r in res.controls if r["id"] == "K4C-IMG-001")
    assert labels == [f"{host}/app:bad", f"{host}/app:good"]
    # The bad image is root, but every workload running it sets a non-zero runAsUser.
    record = image_record(res, "K4C-IMG-001", f"{host}/app:bad")
    assert record["outcome"] == "PASS", record
    usage = next(e for e in record["evidence"] if e["type"] == "table" and e["title"].startswith("Containers"))
    assert sorted(usage["rows"]) == [["Deployment/shop/web", "containers/main", 1000],
                                     ["Deployment/shop/worker", "containers/main", 2000]]
    # One workload without runAsUser is enough for the root image to fail.
    docs.append(_deployment("cron", f"{host}/app:bad", None))
    (manifests / "apps.yaml").write_text(yaml.safe_dump_all(docs))
    res = run_k4c_module(f"--k4c-manifests={manifests}", k="runs_as_non_root")
    assert image_outcome(res, "K4C-IMG-001", f"{host}/app:bad") == "FAIL"


def test_unreadable_cluster_errors_image_controls(tmp_path, run_k4c_module):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "broken.yaml").write_text("kind: Deployment\nmetadata: [unclosed\n")
    res = run_k4c_module(f"--k4c-manifests={manifests}", k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", "cluster-images")
    assert record["outcome"] == "ERROR"
    assert "broken.yaml" in record["reason"]


def test_no_cluster_images_flag(pushed, tmp_path, run_k4c_module):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "apps.yaml").write_text(yaml.safe_dump(_deployment("web", f"{pushed.host}/app:bad", None)))
    res = run_k4c_module(f"--k4c-manifests={manifests}", "--k4c-no-cluster-images", k="runs_as_non_root")
    assert [r["outcome"] for r in res.controls] == ["N/A"]


def test_layer_lost_by_the_registry_errors_content_controls(k4c_registry, run_k4c_module):
    import secrets

    img = oci.image([[*oci.good_files(), oci.File("srv/unique", secrets.token_bytes(64))]], user="10001")
    oci.Pusher(k4c_registry.url).push("fragile", "1.0", img)
    # The registry's storage loses the layer (a real fault of a real registry: a failed GC, a
    # bucket lifecycle rule): it answers 404 BLOB_UNKNOWN for it.
    hexd = img.layers[0].digest.split(":")[1]
    data = k4c_registry.folder / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"
    data.unlink()
    ref = f"{k4c_registry.host}/fragile:1.0"
    res = run_k4c_module(f"--k4c-image={ref}", k="not supply")
    assert image_outcome(res, "K4C-IMG-001", ref) == "PASS"
    record = image_record(res, "K4C-IMG-006", ref)
    assert record["outcome"] == "ERROR"
    assert f"/v2/fragile/blobs/{img.layers[0].digest}: 404 Not Found" in record["reason"]
