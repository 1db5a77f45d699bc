"""The image source: the images under test, read-only, from a registry or from disk.

Images come from ``--k4c-image`` references, from the workloads of the cluster source (every
image any container uses, de-duplicated by its normal form), and from an OCI layout or
``docker save`` tarball (``--k4c-image-layout``). Each becomes one :class:`Image`, which the
image controls are parametrized over, so every image is a test id of its own.

An image's manifest (or index, then each platform's manifest, or only ``--k4c-platform``'s)
and config are read when a control first asks; configs once per digest for the whole session,
whatever the number of references to them; layers only for controls that need file contents,
streamed under a size cap. Whatever cannot be read raises :class:`~k4c_pytest.DataUnavailable`,
cached per image, so that image's controls ERROR and the others go on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import image_ref
from k4c_pytest.sources.image_contents import Contents
from k4c_pytest.sources.image_registry import INDEX_TYPES, MANIFEST_TYPES, Credentials, RegistryClient
from k4c_pytest.sources.image_secrets import SecretFinding, scan_and_redact

MAX_CONFIG = 64 * 1024 * 1024
LAYOUT = "layout"
_ATTESTATION = "attestation-manifest"


@dataclass(frozen=True)
class Usage:
    """A container of a workload that runs an image, with the uid it is told to run as."""

    workload: str
    container: str
    #: the effective runAsUser (container, else pod securityContext); None when neither sets it
    run_as_user: int | None
    #: where that came from ("containers[0].securityContext.runAsUser", "securityContext.runAsUser", "")
    field: str

    def row(self) -> dict[str, Any]:
        return {"workload": self.workload, "container": self.container,
                "runAsUser": "unset" if self.run_as_user is None else self.run_as_user}


@dataclass
class ImageTarget:
    """One image to check, as listed before anything is read (the parametrization's unit)."""

    label: str
    ref: image_ref.ImageRef | None = None
    #: the store: a registry host, or LAYOUT
    store: str = ""
    #: the reference asked of the store (a tag or digest; a layout's digest)
    reference: str = ""
    usages: list[Usage] = field(default_factory=list)
    #: why the image cannot even be named (a cluster that could not be read, a bad reference)
    error: DataUnavailable | None = None


@dataclass(frozen=True)
class UserSpec:
    """The image's ``USER`` resolved: the uid it runs as when nobody overrides it."""

    raw: str
    uid: int | None
    #: how the uid was found, or why it could not be
    note: str

    @property
    def is_root(self) -> bool:
        return self.uid == 0


class ImageVariant:
    """One platform's image: its manifest and (redacted) config; contents on demand."""

    def __init__(self, image: "Image", platform: str, digest: str, manifest: dict, config: dict,
                 config_digest: str, secrets: list[SecretFinding], index_digest: str | None, synthetic: bool):
        self.image = image
        self.platform = platform
        self.digest = digest
        self.manifest = manifest
        #: the config document, with every ENV value and every secret found replaced by <redacted>
        self.config = config
        self.config_digest = config_digest
        #: secrets found in ENV, labels and history: location and type, never the value
        self.secrets = secrets
        self.index_digest = index_digest
        #: True for a ``docker save`` image: its manifest digest is k4c's own, not a registry's
        self.synthetic = synthetic

    def __repr__(self) -> str:
        return f"<{self.image.label} {self.platform}>"

    @property
    def runtime(self) -> dict[str, Any]:
        """The config's ``config`` part (User, ExposedPorts, Env names, Labels...)."""
        c = self.config.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def user(self) -> str:
        return str(self.runtime.get("User") or "")

    @property
    def exposed_ports(self) -> list[tuple[int, str]]:
        """``(port, protocol)`` of every ExposedPorts entry (``"80/tcp"``, ``"53"``)."""
        out = []
        for spec in self.runtime.get("ExposedPorts") or {}:
            port, _, proto = str(spec).partition("/")
            if port.isdigit():
                out.append((int(port), proto or "tcp"))
        return sorted(out)

    @property
    def created(self) -> datetime | None:
        from k4c_pytest.sources.image_vulns import _time

        return _time(self.config.get("created"))

    @property
    def digests(self) -> list[str]:
        """Digests this image is known by, most specific first: manifest, index, config."""
        out = [] if self.synthetic else [self.digest]
        if self.index_digest:
            out.append(self.index_digest)
        return out + [self.config_digest]

    def contents(self) -> Contents:
        """The file system, read from the layers (streamed, each checked against its digest)."""
        __tracebackhide__ = True
        return self.image.source.contents(self)

    def resolve_user(self) -> UserSpec:
        """The uid of ``USER``: a number as is, ``root`` as 0, other names from ``/etc/passwd``
        (which reads the layers); an empty USER is root."""
        __tracebackhide__ = True
        raw = self.user
        name = raw.split(":", 1)[0].strip()
        if not name:
            return UserSpec(raw, 0, "USER not set: the runtime starts the process as root")
        if name.isdigit():
            return UserSpec(raw, int(name), "numeric USER")
        if name == "root":
            return UserSpec(raw, 0, "USER root")
        users = self.contents().passwd()
        if users is None:
            return UserSpec(raw, None, f"USER {name} but the image has no /etc/passwd to resolve it")
        if name not in users:
            return UserSpec(raw, None, f"USER {name} is not in the image's /etc/passwd")
        return UserSpec(raw, users[name], f"USER {name} is uid {users[name]} in /etc/passwd")

    def row(self, **extra: Any) -> dict[str, Any]:
        """An evidence row naming this image and platform."""
        return {"image": self.image.label, "platform": self.platform, **extra}


class Image:
    """An image under test: the ``image`` fixture. ``variants()`` lists its platform images
    (one, unless a multi-platform index was named without ``--k4c-platform``)."""

    def __init__(self, source: "ImageSource", target: ImageTarget):
        self.source = source
        self.target = target

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def usages(self) -> list[Usage]:
        """Containers of the cluster's workloads that run this image (empty without a cluster)."""
        return self.target.usages

    def __repr__(self) -> str:
        return f"<image {self.label}>"

    def variants(self) -> list[ImageVariant]:
        __tracebackhide__ = True
        return self.source.variants(self.target)

    def signature(self, variant: ImageVariant):
        """The cosign signature check of one variant (:class:`~k4c_pytest.sources.image_signature.SignatureCheck`)."""
        __tracebackhide__ = True
        return self.source.signature(self, variant)

    def vulnerability_report(self, variant: ImageVariant):
        """The scanner report of one variant (:class:`~k4c_pytest.sources.image_vulns.VulnReport`)."""
        __tracebackhide__ = True
        return self.source.vulnerability_report(self, variant)


def _platform(p: dict | None) -> str:
    p = p or {}
    return "/".join(x for x in (p.get("os", ""), p.get("architecture", ""), p.get("variant", "")) if x) or "unknown"


class ImageSource:
    """Every image of the run; stores (registry clients, the layout) made on first use."""

    def __init__(self, *, credentials: Credentials | None = None, layout: Path | None = None,
                 platform: str | None = None, insecure: tuple[str, ...] = (), timeout: float = 30.0,
                 max_layer_bytes: int = 2 * 1024 ** 3, cosign_key=None, vuln_reports: list | None = None,
                 max_report_age: timedelta = timedelta(days=7), now: Callable[[], datetime] | None = None):
        self.credentials = credentials or Credentials()
        self.layout = layout
        self.platform = platform
        self.insecure = set(insecure)
        self.timeout = timeout
        self.max_layer_bytes = max_layer_bytes
        self.cosign_key = cosign_key
        self.vuln_reports = list(vuln_reports or [])
        self.max_report_age = max_report_age
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._stores: dict[str, Any] = {}
        self._variants: dict[str, list[ImageVariant] | DataUnavailable] = {}
        self._configs: dict[str, tuple[dict, list[SecretFinding]]] = {}
        self._contents: dict[str, Contents | DataUnavailable] = {}
        self.coverage: dict[str, dict[str, Any]] = {}

    # -- stores --------------------------------------------------------------------------

    def store(self, name: str):
        if name not in self._stores:
            if name == LAYOUT:
                from k4c_pytest.sources.image_layout import LayoutStore

                assert self.layout is not None
                self._stores[name] = LayoutStore(self.layout)
            else:
                self._stores[name] = RegistryClient(name, self.credentials, insecure=name in self.insecure,
                                                    timeout=self.timeout)
        return self._stores[name]

    def layout_targets(self) -> list[ImageTarget]:
        """One target per image of the layout (raises DataUnavailable when it cannot be read)."""
        if self.layout is None:
            return []
        store = self.store(LAYOUT)
        return [ImageTarget(label=name, store=LAYOUT, reference=desc["digest"]) for name, desc in store.images()]

    def close(self) -> None:
        for store in self._stores.values():
            close = getattr(store, "close", None)
            if close is not None:
                close()

    # -- manifests and configs -----------------------------------------------------------

    def _repo(self, target: ImageTarget) -> str:
        return target.ref.repository if target.ref is not None else ""

    def variants(self, target: ImageTarget) -> list[ImageVariant]:
        __tracebackhide__ = True
        if target.error is not None:
            raise target.error.with_traceback(None)
        cached = self._variants.get(target.label)
        if isinstance(cached, DataUnavailable):
            raise cached.with_traceback(None)
        if cached is not None:
            return cached
        started = time.perf_counter()
        store = self.store(target.store)
        before = getattr(store, "requests", 0)
        try:
            out = self._resolve(Image(self, target), target, store)
        except DataUnavailable as exc:
            self._variants[target.label] = exc
            self.coverage[f"image:{target.label}"] = {
                "status": "failed", "count": 0, "reason": exc.reason,
                "requests": getattr(store, "requests", 0) - before, "seconds": round(time.perf_counter() - started, 3)}
            raise
        self._variants[target.label] = out
        self.coverage[f"image:{target.label}"] = {
            "status": "listed", "count": len(out), "requests": getattr(store, "requests", 0) - before,
            "seconds": round(time.perf_counter() - started, 3)}
        return out

    def _resolve(self, image: Image, target: ImageTarget, store) -> list[ImageVariant]:
        repo = self._repo(target)
        top = store.manifest(repo, target.reference)
        if top.media_type not in MANIFEST_TYPES:
            raise DataUnavailable(f"{target.label} manifest", f"unsupported media type {top.media_type!r} "
                                                              "(schema 1 manifests are not supported)")
        synthetic = target.store == LAYOUT and store.is_synthetic(top.digest)
        if top.media_type not in INDEX_TYPES:
            return [self._variant(image, store, repo, top.digest, top.json(), None, None, synthetic)]
        entries = self._platform_entries(store, repo, top)
        if self.platform:
            chosen = [e for e in entries if _platform(e[1].get("platform")) == self.platform]
            if not chosen:
                have = ", ".join(sorted({_platform(e[1].get("platform")) for e in entries})) or "none"
                raise DataUnavailable(f"{target.label} index {top.digest}",
                                      f"no image for --k4c-platform {self.platform} (it has: {have})")
            entries = chosen
        if not entries:
            raise DataUnavailable(f"{target.label} index {top.digest}", "the index lists no platform image")
        out = []
        for index_digest, desc in entries:
            m = store.manifest(repo, desc["digest"])
            if m.media_type in INDEX_TYPES:
                raise DataUnavailable(f"{target.label} index {index_digest}", "an index nested more than once")
            out.append(self._variant(image, store, repo, m.digest, m.json(), _platform(desc.get("platform")),
                                     index_digest, False))
        return out

    def _platform_entries(self, store, repo: str, index) -> list[tuple[str, dict]]:
        out = []
        for desc in index.json().get("manifests") or []:
            ann = desc.get("annotations") or {}
            if ann.get("vnd.docker.reference.type") == _ATTESTATION or _platform(desc.get("platform")) == "unknown/unknown":
                continue  # buildx's provenance/SBOM attestations are not runnable images
            if desc.get("mediaType") in INDEX_TYPES:
                nested = store.manifest(repo, desc["digest"])
                out += [(index.digest, d) for _, d in self._platform_entries(store, repo, nested)]
            else:
                out.append((index.digest, desc))
        return out

    def _variant(self, image: Image, store, repo: str, digest: str, manifest: dict, platform: str | None,
                 index_digest: str | None, synthetic: bool) -> ImageVariant:
        config_desc = manifest.get("config") or {}
        config_digest = config_desc.get("digest")
        if not isinstance(config_digest, str):
            raise DataUnavailable(f"{image.label} manifest {digest}", "no config descriptor")
        if config_digest not in self._configs:
            raw = store.blob(repo, config_digest, MAX_CONFIG)
            try:
                doc = json.loads(raw)
            except ValueError:
                raise DataUnavailable(f"{image.label} config {config_digest}", "not JSON") from None
            if not isinstance(doc, dict):
                raise DataUnavailable(f"{image.label} config {config_digest}", "not a JSON object")
            self._configs[config_digest] = scan_and_redact(doc)
            del raw, doc  # the raw config (ENV values) is not kept
        config, secrets = self._configs[config_digest]
        if platform is None:
            platform = _platform({k: config.get(k) for k in ("os", "architecture", "variant")})
        return ImageVariant(image, platform, digest, manifest, config, config_digest, secrets, index_digest,
                            synthetic)

    # -- contents, signatures, vulnerabilities -------------------------------------------

    def contents(self, variant: ImageVariant) -> Contents:
        __tracebackhide__ = True
        key = variant.digest
        cached = self._contents.get(key)
        if isinstance(cached, DataUnavailable):
            raise cached.with_traceback(None)
        if cached is not None:
            return cached
        from k4c_pytest.sources import image_contents

        target = variant.image.target
        store = self.store(target.store)
        repo = self._repo(target)
        try:
            contents = image_contents.read(variant.manifest.get("layers") or [],
                                           lambda d: store.open_blob(repo, d), self.max_layer_bytes)
        except DataUnavailable as exc:
            self._contents[key] = exc
            raise
        self._contents[key] = contents
        return contents

    def signature(self, image: Image, variant: ImageVariant):
        __tracebackhide__ = True
        from k4c_pytest.sources import image_signature

        if variant.synthetic:
            return image_signature.SignatureCheck(
                image_signature.UNSIGNED, "a docker save image has no registry digest a signature could name", "")
        digests = [variant.digest] + ([variant.index_digest] if variant.index_digest else [])
        return image_signature.check(self.store(image.target.store), self._repo(image.target), digests,
                                     self.cosign_key)

    def vulnerability_report(self, image: Image, variant: ImageVariant):
        __tracebackhide__ = True
        from k4c_pytest.sources import image_vulns

        reference = str(image.target.ref) if image.target.ref is not None else None
        return image_vulns.report_for(self.vuln_reports, variant.digests, reference, self.max_report_age,
                                      self.now())

    def coverage_report(self) -> dict[str, dict[str, Any]]:
        return dict(self.coverage)


# -- listing the images of a run -------------------------------------------------------------

def ref_target(text: str, usages: list[Usage] | None = None) -> ImageTarget:
    """A target for an image reference; a reference k4c cannot parse is an ERROR of that image."""
    try:
        ref = image_ref.parse(text)
    except image_ref.BadReference as exc:
        return ImageTarget(label=text, usages=list(usages or []),
                           error=DataUnavailable(f"image {text}", str(exc)))
    return ImageTarget(label=str(ref), ref=ref, store=ref.registry if ref.registry != image_ref.DOCKER_HUB
                       else image_ref.DOCKER_HUB_API, reference=ref.reference, usages=list(usages or []))


def cluster_usages(cluster, target: str | None = None) -> dict[str, list[Usage]]:
    """Image reference -> the containers that run it, over every workload of the cluster source
    (each workload named ``target: Kind/ns/name`` when a target name is given)."""
    from k4c_pytest import security_context

    out: dict[str, list[Usage]] = {}
    for w in cluster.workloads():
        ref = f"{target}: {w.ref}" if target else w.ref
        for ctx in security_context.containers(w.pod_spec):
            text = ctx.container.get("image")
            if not isinstance(text, str) or not text:
                continue
            setting = ctx.get("runAsUser")
            uid = setting.value if isinstance(setting.value, int) else None
            out.setdefault(text, []).append(Usage(ref, ctx.label, uid, setting.path))
    return out


def collect_targets(refs: list[str], layout_targets: Callable[[], list[ImageTarget]] | None,
                    cluster: Callable[[], Any] | None) -> list[ImageTarget]:
    """Every image of the run, de-duplicated by normal form, in a stable order: the
    ``--k4c-image`` references, then the cluster's images, then the layout's.

    ``cluster`` gives a ClusterSource, or ``{target name: ClusterSource}`` with several cluster
    targets: the images of every target's workloads (an unreadable target is an ERROR of its
    own, ``cluster-images (name)``, the others' images are still checked)."""
    targets: dict[str, ImageTarget] = {}

    def add(t: ImageTarget) -> None:
        if t.label in targets:
            targets[t.label].usages.extend(t.usages)
        else:
            targets[t.label] = t

    for text in refs:
        add(ref_target(text))
    if cluster is not None:
        given = cluster()
        sources = given if isinstance(given, dict) else {None: given}
        named = len(sources) > 1
        usages: dict[str, list[Usage]] = {}
        for name, source in sources.items():
            try:
                mine = cluster_usages(source, name if named else None)
            except DataUnavailable as exc:
                add(ImageTarget(label=f"cluster-images ({name})" if named else "cluster-images", error=exc))
                continue
            for text, used in mine.items():
                usages.setdefault(text, []).extend(used)
        for text in sorted(usages):
            add(ref_target(text, usages[text]))
    if layout_targets is not None:
        try:
            for t in layout_targets():
                add(t)
        except DataUnavailable as exc:
            add(ImageTarget(label="image-layout", error=exc))
    return list(targets.values())
