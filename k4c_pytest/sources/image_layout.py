"""Images on disk: an OCI image layout folder, or a ``docker save`` tarball.

Both answer like a registry (``manifest(repo, reference)``, ``blob``, ``open_blob``) so the
rest of the image source does not care where an image came from. An OCI layout (a folder, or
a tarball holding one, as ``docker save`` writes since Docker 25) lists its images in
``index.json``, named by the ``org.opencontainers.image.ref.name`` annotation; cosign
signatures sit beside them under the tag ``sha256-<hex>.sig``. The older ``docker save``
format (``manifest.json`` naming a config and layer tars) has no registry manifest: k4c builds
one from the config, whose ``rootfs.diff_ids`` are the digests of the layer tars, so every
layer is still checked against a digest. Its "manifest digest" is therefore k4c's own; such an
image is matched to vulnerability reports by its config digest (the image id).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.image_registry import (DOCKER_MANIFEST, INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX, BlobStream,
                                               Manifest, ManifestNotFound, check_digest, sha256)

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"


class _Files:
    """The files of a folder or of a tarball, by relative path."""

    def __init__(self, path: Path):
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_file():
            try:
                self._tar = tarfile.open(path, "r:*")
                self._members = {posixpath.normpath(m.name.lstrip("./") or "."): m
                                 for m in self._tar.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DataUnavailable(str(path), f"not a readable tarball: {exc}") from None

    def exists(self, rel: str) -> bool:
        if self._tar is not None:
            return posixpath.normpath(rel) in self._members
        return (self.path / rel).is_file()

    def open(self, rel: str) -> BinaryIO:
        rel = posixpath.normpath(rel)
        if rel.startswith("..") or rel.startswith("/"):
            raise DataUnavailable(f"{self.path}:{rel}", "path leaves the layout")
        try:
            if self._tar is not None:
                member = self._members.get(rel)
                if member is None:
                    raise FileNotFoundError(rel)
                f = self._tar.extractfile(member)
                assert f is not None
                return f
            return open(self.path / rel, "rb")
        except FileNotFoundError:
            raise ManifestNotFound(f"{self.path}:{rel}", "no such file") from None
        except (OSError, tarfile.TarError) as exc:
            raise DataUnavailable(f"{self.path}:{rel}", str(exc)) from None

    def read(self, rel: str, max_bytes: int) -> bytes:
        with self.open(rel) as f:
            try:
                data = f.read(max_bytes + 1)
            except (OSError, tarfile.TarError, EOFError) as exc:
                raise DataUnavailable(f"{self.path}:{rel}", str(exc)) from None
        if len(data) > max_bytes:
            raise DataUnavailable(f"{self.path}:{rel}", f"larger than {max_bytes} bytes")
        return data

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DataUnavailable(what, f"not JSON: {exc}") from None


class LayoutStore:
    """An OCI layout or ``docker save`` tarball, read-only. ``images()`` lists what it holds."""

    def __init__(self, path: Path):
        self.path = path
        self.files = _Files(path)
        self.kind = "oci-layout" if self.files.exists("index.json") else "docker-save"
        self._legacy: dict[str, tuple[bytes, dict[str, str]]] = {}  # manifest digest -> (bytes, blob paths)
        self._blob_paths: dict[str, str] = {}
        self._index: dict[str, Any] | None = None
        self.requests = 0

    def describe(self) -> str:
        return f"{self.kind} {self.path}"

    # -- what it holds -------------------------------------------------------------------

    def index(self) -> dict[str, Any]:
        if self._index is None:
            if self.kind == "oci-layout":
                self._index = _json(self.files.read("index.json", 16 * 1024 * 1024), f"{self.path}:index.json")
            else:
                self._index = self._legacy_index()
        return self._index

    def _legacy_index(self) -> dict[str, Any]:
        if not self.files.exists("manifest.json"):
            raise DataUnavailable(str(self.path), "neither an OCI layout (index.json) nor a docker save "
                                                  "tarball (manifest.json)")
        entries = _json(self.files.read("manifest.json", 16 * 1024 * 1024), f"{self.path}:manifest.json")
        manifests = []
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            config_path = entry.get("Config", "")
            config = self.files.read(config_path, 64 * 1024 * 1024)
            config_digest = sha256(config)
            diff_ids = ((_json(config, f"{self.path}:{config_path}").get("rootfs") or {}).get("diff_ids") or [])
            layers = entry.get("Layers") or []
            if len(diff_ids) != len(layers):
                raise DataUnavailable(f"{self.path}:manifest.json", f"image {n}: {len(layers)} layers but "
                                                                    f"{len(diff_ids)} diff_ids in its config")
            paths = {config_digest: config_path, **dict(zip(diff_ids, layers))}
            manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": DOCKER_CONFIG_TYPE, "digest": config_digest, "size": len(config)},
                        "layers": [{"mediaType": DOCKER_LAYER_TYPE, "digest": d} for d in diff_ids]}
            data = json.dumps(manifest, sort_keys=True).encode()
            digest = sha256(data)
            self._legacy[digest] = (data, paths)
            self._blob_paths.update(paths)
            tags = entry.get("RepoTags") or []
            manifests.append({"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(data),
                              "annotations": {REF_NAME: tags[0]} if tags else {}, "k4c.synthetic": True})
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}

    def images(self) -> list[tuple[str, dict[str, Any]]]:
        """``(name, descriptor)`` of every image: its ref name, else its digest. Signatures,
        attestations and SBOMs that cosign stores as tags are not images of their own."""
        out = []
        for desc in self.index().get("manifests") or []:
            ann = desc.get("annotations") or {}
            name = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME) or desc.get("digest", "")
            tag = name.rsplit(":", 1)[-1]
            if tag.startswith("sha256-") and tag.endswith((".sig", ".att", ".sbom")):
                continue
            if desc.get("mediaType") in MANIFEST_TYPES:
                out.append((name, desc))
        return out

    def is_synthetic(self, digest: str) -> bool:
        """Whether a manifest digest is k4c's own (an image of the older docker save format)."""
        return digest in self._legacy

    # -- registry-like API ---------------------------------------------------------------

    def _blob_path(self, digest: str) -> str:
        if digest in self._blob_paths:
            return self._blob_paths[digest]
        algo, _, hexd = digest.partition(":")
        return f"blobs/{algo}/{hexd}"

    def manifest(self, repo: str, reference: str) -> Manifest:
        self.requests += 1
        index = self.index()
        digest = reference if ":" in reference and reference.startswith("sha") else None
        if digest is None:
            for desc in index.get("manifests") or []:
                name = (desc.get("annotations") or {}).get(REF_NAME, "")
                # A layout is one namespace: "sig-tag" and "some/repo:sig-tag" both name the tag.
                if name == reference or name.endswith(f":{reference}"):
                    digest = desc["digest"]
                    break
            else:
                raise ManifestNotFound(f"{self.path}", f"no image tagged {reference!r}")
        if digest in self._legacy:
            data = self._legacy[digest][0]
            return Manifest(data, DOCKER_MANIFEST, digest)
        what = f"{self.path}:{self._blob_path(digest)}"
        data = self.files.read(self._blob_path(digest), 4 * 1024 * 1024)
        check_digest(digest, data, what)
        doc = _json(data, what)
        media_type = doc.get("mediaType") or next(
            (d.get("mediaType") for d in index.get("manifests") or [] if d.get("digest") == digest), "")
        if not media_type:
            media_type = OCI_INDEX if "manifests" in doc else "application/vnd.oci.image.manifest.v1+json"
        return Manifest(data, media_type, digest)

    def blob(self, repo: str, digest: str, max_bytes: int) -> bytes:
        self.requests += 1
        path = self._blob_path(digest)
        data = self.files.read(path, max_bytes)
        check_digest(digest, data, f"{self.path}:{path}")
        return data

    def open_blob(self, repo: str, digest: str) -> BlobStream:
        self.requests += 1
        path = self._blob_path(digest)
        return BlobStream(self.files.open(path), digest, f"{self.path}:{path}")

    def close(self) -> None:
        self.files.close()


__all__ = ["LayoutStore", "INDEX_TYPES"]
