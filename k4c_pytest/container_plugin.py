"""The container layer's part of the k4c plugin: ``--k4c-allowed-registries`` and the
``allowed_registries`` fixture the workload controls use (``suites/container``).

Loaded through its own ``pytest11`` entry point (``k4c-container``); its options join the
``k4c`` group. The Pod Security and workload hygiene controls need nothing else than the
``cluster`` fixture; images themselves are the image plugin's (``image_plugin.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from k4c_pytest.outcomes import NotApplicable

ALLOWED_REGISTRIES_KEY = pytest.StashKey["AllowedRegistries"]()

DOCKER_HUB = "docker.io"
# A registry host (with a dot, a port or localhost), then optional repository path components.
_HOST = r"(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+|\[[0-9a-f:]+\])(?::\d{1,5})?"
_PATH = r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_PREFIX = re.compile(rf"^{_HOST}{_PATH}$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-allowed-registries", metavar="PREFIXES", action="append", default=[],
                    help="registries (registry.example.com) or repository prefixes (ghcr.io/acme) workloads may "
                         "pull images from; comma-separated and repeatable; Docker Hub is docker.io "
                         "(default: none, the allowed-registries control is N/A)")


@dataclass(frozen=True)
class ImageName:
    """What the workload controls need of an image reference, as the container runtime reads it."""

    #: the reference as the workload wrote it
    text: str
    #: registry/repository, normalised: ``busybox`` is ``docker.io/library/busybox``
    name: str
    #: None when the reference names no tag (the runtime then pulls ``latest``)
    tag: str | None
    #: ``sha256:...`` when the reference is pinned by digest
    digest: str | None

    @property
    def registry(self) -> str:
        return self.name.split("/", 1)[0]


def image_name(text: str) -> ImageName:
    """Split an image reference into its normalised name, tag and digest (never raises: an
    unparsable reference keeps its text as name and is judged as written)."""
    ref = (text or "").strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1:]
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first.lower(), rest
    else:
        host, repository = DOCKER_HUB, ref
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageName(text, f"{host}/{repository}", tag or None, digest or None)


class AllowedRegistries:
    """The registries and repository prefixes images may come from."""

    def __init__(self, prefixes: tuple[str, ...]):
        self.prefixes = prefixes

    @classmethod
    def from_config(cls, config: pytest.Config) -> "AllowedRegistries":
        prefixes: list[str] = []
        for value in config.getoption("k4c_allowed_registries") or ():
            for item in value.split(","):
                item = item.strip()
                normal = item.rstrip("/").lower() if item else ""
                if not normal or not _PREFIX.match(normal):
                    raise pytest.UsageError(
                        f"--k4c-allowed-registries: {item!r} is not a registry or repository prefix such as "
                        "registry.example.com, registry.example.com:5000 or ghcr.io/acme (no scheme, tag or digest)")
                if normal not in prefixes:
                    prefixes.append(normal)
        return cls(tuple(prefixes))

    def allows(self, image: ImageName) -> bool:
        """Whether the image's normalised name is one of the prefixes or below one."""
        name = image.name.lower()
        return any(name == p or name.startswith(p + "/") for p in self.prefixes)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    config.stash[ALLOWED_REGISTRIES_KEY] = AllowedRegistries.from_config(config)  # UsageError on a bad value


def pytest_report_header(config: pytest.Config) -> list[str]:
    allowed = config.stash.get(ALLOWED_REGISTRIES_KEY, None)
    if allowed is None or not allowed.prefixes:
        return []
    return [f"k4c allowed registries: {', '.join(allowed.prefixes)}"]


@pytest.fixture(scope="session")
def allowed_registries(pytestconfig: pytest.Config) -> AllowedRegistries:
    """The registries and repository prefixes of ``--k4c-allowed-registries``
    (``.prefixes``, ``.allows(image_name(ref))``). A control using it is N/A when none were given."""
    __tracebackhide__ = True
    allowed = pytestconfig.stash[ALLOWED_REGISTRIES_KEY]
    if not allowed.prefixes:
        raise NotApplicable("no allowed registries given (--k4c-allowed-registries)")
    return allowed
