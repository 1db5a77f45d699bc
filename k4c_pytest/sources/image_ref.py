"""Image references as Docker and Kubernetes read them.

``nginx`` is ``docker.io/library/nginx:latest``; ``registry:5000/app@sha256:...`` names a
registry (its first component has a dot or a colon, or is ``localhost``), a repository and a
digest. The normal form is how k4c de-duplicates images named differently by workloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
#: Where the Docker Hub's distribution API really lives.
DOCKER_HUB_API = "registry-1.docker.io"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class BadReference(ValueError):
    """Not an image reference."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What a manifest is asked for by: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse(text: str) -> ImageRef:
    """The normal form of an image reference; raises BadReference saying what is wrong."""
    ref = text.strip()
    if not ref:
        raise BadReference("empty image reference")
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST.match(digest):
            raise BadReference(f"{text!r}: {digest!r} is not a digest like sha256:<64 hex>")
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1:]
        if not _TAG.match(tag):
            raise BadReference(f"{text!r}: {tag!r} is not a valid tag")
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, ref
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO.match(repository):
        raise BadReference(f"{text!r}: {repository!r} is not a valid repository name")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry, repository, tag, digest)


def is_loopback(host: str) -> bool:
    """Whether a registry host:port is this machine (plain HTTP is then allowed, as Docker does)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    return name == "localhost" or name == "::1" or name.startswith("127.")
