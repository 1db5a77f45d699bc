"""Small OCI images built in Python, pushed over the distribution API or written as a layout.

No Docker daemon: a layer is a tar made with :mod:`tarfile` (gzip-compressed, as registries
serve them), a config is JSON, a manifest names both by digest. :func:`cosign_signature`
signs an image the way ``cosign sign --key`` does (a simple-signing payload in a manifest
tagged ``sha256-<hex>.sig``), with a key made in the test.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
REF_NAME = "org.opencontainers.image.ref.name"
#: AWS's documented example access key id: detect-secrets recognises its shape, no one can use it.
CANARY_AWS_KEY = "AKIAIOSFODNN7EXAMPLE"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001:app:/home/app:/sbin/nologin\n"
DPKG_STATUS = (b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\n"
               b"Description: GNU C Library\n shared libraries\n\n"
               b"Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1\n\n"
               b"Package: removed-one\nStatus: deinstall ok config-files\nVersion: 1.0\n")
APK_INSTALLED = b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\n\n"
DIST_INFO = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\n\nLong description\n"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class File:
    """One tar entry: a regular file (``data``), a folder (``type="dir"``) or a symlink."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    type: str = "file"
    uid: int = 0
    gid: int = 0
    link: str = ""


def layer(files: list[File]) -> tuple[bytes, str]:
    """A gzip-compressed layer tar and its diff id (digest of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in files:
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.mode, info.uid, info.gid, info.mtime = f.mode, f.uid, f.gid, 1700000000
            if f.type == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif f.type == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, f.link
                tar.addfile(info)
            else:
                info.size = len(f.data)
                tar.addfile(info, io.BytesIO(f.data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), digest_of(tar_bytes)


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass
class Image:
    """A built image: its manifest, config and layer blobs."""

    manifest: Blob
    config: Blob
    layers: list[Blob] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]


def image(layers: list[list[File]], *, user: str = "", env: list[str] | None = None,
          labels: dict[str, str] | None = None, ports: list[str] | None = None, created: datetime | None = None,
          history: list[str] | None = None, architecture: str = "amd64") -> Image:
    """Build an image from file lists (one list per layer) and config settings."""
    blobs, diff_ids = [], []
    for files in layers:
        data, diff_id = layer(files)
        blobs.append(Blob(OCI_LAYER, data))
        diff_ids.append(diff_id)
    created = created or datetime.now(timezone.utc)
    config = {
        "created": created.isoformat().replace("+00:00", "Z"),
        "architecture": architecture, "os": "linux",
        "config": {"User": user, "Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"], "Labels": labels or {},
                   "ExposedPorts": {p: {} for p in ports or []}, "Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created.isoformat().replace("+00:00", "Z"), "created_by": h}
                    for h in history or ["COPY rootfs / # buildkit"]],
    }
    config_blob = Blob(OCI_CONFIG, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_blob.descriptor(),
                "layers": [b.descriptor() for b in blobs]}
    return Image(Blob(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode()), config_blob, blobs)


def index(images: list[tuple[Image, str]]) -> Blob:
    """A multi-platform index over ``(image, "linux/amd64")`` pairs."""
    manifests = []
    for img, platform in images:
        os_, arch, *variant = platform.split("/")
        p = {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}
        manifests.append(img.manifest.descriptor(platform=p))
    return Blob(OCI_INDEX, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode())


# -- the usual contents -----------------------------------------------------------------------

def good_files() -> list[File]:
    """A tidy root file system: passwd with a non-root user, dpkg status, a dist-info, a /tmp."""
    return [File("etc", type="dir", mode=0o755), File("etc/passwd", PASSWD),
            File("tmp", type="dir", mode=0o1777),
            File("var/lib/dpkg/status", DPKG_STATUS),
            File("usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA", DIST_INFO),
            File("app", b"#!/bin/sh\n", mode=0o755)]


def bad_files() -> list[File]:
    """What the content controls find: a setuid root binary, a world-writable file and folder."""
    return [*good_files(), File("usr/bin/su-helper", b"\x7fELF", mode=0o4755),
            File("usr/bin/wall-helper", b"\x7fELF", mode=0o2755),
            File("srv/shared.conf", b"x=1\n", mode=0o666), File("srv/drop", type="dir", mode=0o777),
            File("usr/bin/sh-link", type="symlink", link="/bin/sh", mode=0o777)]


def good_image(**kw: Any) -> Image:
    return image([good_files()], user=kw.pop("user", "10001"), ports=kw.pop("ports", ["8080/tcp"]), **kw)


def bad_image(**kw: Any) -> Image:
    """Root, port 80, a canary AWS key in ENV and history, a setuid file, a world-writable file."""
    return image([bad_files()], user=kw.pop("user", ""), ports=kw.pop("ports", ["80/tcp"]),
                 env=["PATH=/usr/bin:/bin", f"AWS_ACCESS_KEY_ID={CANARY_AWS_KEY}"],
                 history=[f"ENV AWS_ACCESS_KEY_ID={CANARY_AWS_KEY}", "COPY rootfs / # buildkit"], **kw)


# -- cosign ------------------------------------------------------------------------------------

def cosign_keypair() -> tuple[Any, bytes]:
    """A P-256 key as ``cosign generate-key-pair`` makes, and its public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem


def simple_signing_payload(digest: str, reference: str) -> bytes:
    return json.dumps({"critical": {"identity": {"docker-reference": reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}, separators=(",", ":")).encode()


def cosign_signature(digest: str, reference: str, key, payload: bytes | None = None) -> Image:
    """The signature manifest cosign pushes as ``sha256-<hex>.sig`` for ``digest``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    payload = payload if payload is not None else simple_signing_payload(digest, reference)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer_blob = Blob(SIMPLE_SIGNING, payload)
    config = Blob(OCI_CONFIG, json.dumps({"architecture": "", "os": "", "config": {},
                                          "rootfs": {"type": "layers", "diff_ids": [layer_blob.digest]}}).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [layer_blob.descriptor(annotations={SIGNATURE_ANNOTATION: signature})]}
    return Image(Blob(OCI_MANIFEST, json.dumps(manifest).encode()), config, [layer_blob])


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sig"


# -- pushing -----------------------------------------------------------------------------------

class Pusher:
    """Pushes blobs and manifests to a registry over its HTTP API (monolithic uploads), answering
    basic and bearer challenges with ``user``/``password``."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None):
        self.url = url.rstrip("/")
        self.user = user
        self.password = password
        self._auth: dict[str, str] = {}

    def _basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def _authorize(self, repo: str, challenge: str) -> str:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            return self._basic()
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = urlencode({"service": fields.get("service", ""), "scope": f"repository:{repo}:pull,push"})
        req = urllib.request.Request(f"{fields['realm']}?{query}", headers={"Authorization": self._basic()})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return "Bearer " + json.loads(resp.read())["token"]

    def request(self, method: str, path: str, repo: str, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.url + path
        for _ in range(2):
            h = dict(headers or {})
            if repo in self._auth:
                h["Authorization"] = self._auth[repo]
            req = urllib.request.Request(url, data=data, method=method, headers=h)
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and repo not in self._auth and self.user is not None:
                    self._auth[repo] = self._authorize(repo, exc.headers.get("WWW-Authenticate", ""))
                    continue
                raise AssertionError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None
        raise AssertionError(f"{method} {url}: still 401")

    def push_blob(self, repo: str, blob: Blob) -> None:
        _, headers, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo, data=b"")
        location = headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={blob.digest}", repo, data=blob.data,
                     headers={"Content-Type": "application/octet-stream"})

    def push_manifest(self, repo: str, reference: str, manifest: Blob) -> str:
        self.request("PUT", f"/v2/{repo}/manifests/{reference}", repo, data=manifest.data,
                     headers={"Content-Type": manifest.media_type})
        return manifest.digest

    def push(self, repo: str, tag: str, img: Image) -> str:
        """Push an image's blobs and its manifest under ``tag``; returns the manifest digest."""
        for blob in img.blobs():
            self.push_blob(repo, blob)
        return self.push_manifest(repo, tag, img.manifest)

    def push_index(self, repo: str, tag: str, images: list[tuple[Image, str]]) -> str:
        for img, _ in images:
            self.push(repo, img.digest.replace(":", "-"), img)
        return self.push_manifest(repo, tag, index(images))


# -- layouts -----------------------------------------------------------------------------------

def write_layout(folder: Path, images: dict[str, Image]) -> Path:
    """An OCI image layout holding ``images`` by ref name (signatures under their .sig tags)."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    manifests = []
    for name, img in images.items():
        for blob in [img.manifest, *img.blobs()]:
            (blobs / blob.digest.split(":", 1)[1]).write_bytes(blob.data)
        manifests.append(img.manifest.descriptor(annotations={REF_NAME: name}))
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                   "manifests": manifests}, indent=1, sort_keys=True))
    return folder


def write_docker_save(path: Path, images: dict[str, Image]) -> Path:
    """A tarball in the older ``docker save`` format (manifest.json, config JSON, layer tars)."""
    entries = []
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for tag, img in images.items():
            config_name = img.config.digest.split(":", 1)[1] + ".json"
            add(config_name, img.config.data)
            layer_names = []
            for blob in img.layers:
                raw = gzip.decompress(blob.data)
                name = f"{digest_of(raw).split(':', 1)[1]}/layer.tar"
                add(name, raw)
                layer_names.append(name)
            entries.append({"Config": config_name, "RepoTags": [tag], "Layers": layer_names})
        add("manifest.json", json.dumps(entries).encode())
    return path
