"""The image layer's part of the k4c plugin: ``--k4c-image*`` options, the ``image`` and
``image_policy`` fixtures, and the parametrization that makes every image a test id.

Loaded through its own ``pytest11`` entry point (``k4c-image``). A control that takes the
``image`` fixture runs once per image of the run (``test_image_user[registry:5000/app:1.0]``);
with no image at all it runs once and is N/A. The list of images is made once: by the xdist
controller, which hands it to every worker (so all workers collect the same tests even when a
live cluster changes meanwhile), or by the only process without xdist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from k4c_pytest.outcomes import DataUnavailable, NotApplicable

IMAGE_KEY = pytest.StashKey["ImageRun"]()

SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_SEVERITY = "high"
DEFAULT_MAX_REPORT_AGE = "7d"
DEFAULT_MAX_IMAGE_AGE = "90d"
DEFAULT_MAX_LAYER_SIZE = "2GiB"
DEFAULT_TIMEOUT = 30.0
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^(\d+)\s*(|k|m|g|t|ki|mi|gi|ti)b?$", re.I)
_SIZE_UNITS = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12,
               "ki": 2 ** 10, "mi": 2 ** 20, "gi": 2 ** 30, "ti": 2 ** 40}
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
_WORKER_INPUT = "k4c_image_targets"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-image", metavar="REF", action="append", default=[],
                    help="an image to check, e.g. registry.example.com/app:1.2 or app@sha256:...; repeatable "
                         "(default: none; the images of the cluster target's workloads are checked too)")
    group.addoption("--k4c-image-layout", metavar="PATH", default=None,
                    help="check the images of an OCI image layout folder or a 'docker save' tarball (default: none)")
    group.addoption("--k4c-no-cluster-images", action="store_true", default=False,
                    help="do not check the images the cluster target's workloads run, only --k4c-image and "
                         "--k4c-image-layout ones (default: check them, which needs access to their registries)")
    group.addoption("--k4c-platform", metavar="OS/ARCH[/VARIANT]", default=None,
                    help="of a multi-platform image, check only this platform, e.g. linux/amd64 "
                         "(default: every platform of the index)")
    group.addoption("--k4c-registry-auth", metavar="PATH", default=None,
                    help="docker config.json with registry credentials (auths, credHelpers, credsStore) "
                         "(default: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json)")
    group.addoption("--k4c-insecure-registry", metavar="HOST[:PORT]", action="append", default=[],
                    help="talk plain HTTP to this registry; repeatable (default: HTTPS, except to loopback "
                         "registries, as Docker does)")
    group.addoption("--k4c-registry-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                    help=f"connect and read timeout of each registry request (default: {DEFAULT_TIMEOUT:g})")
    group.addoption("--k4c-max-layer-size", metavar="SIZE", default=DEFAULT_MAX_LAYER_SIZE,
                    help="largest layer k4c downloads to inspect an image's files, e.g. 500MiB; a larger "
                         f"layer makes the content controls ERROR (default: {DEFAULT_MAX_LAYER_SIZE})")
    group.addoption("--k4c-cosign-key", metavar="PEM", default=None,
                    help="cosign public key (PEM) images must be signed with (default: none, the signature "
                         "control is N/A)")
    group.addoption("--k4c-vuln-report", metavar="PATH", action="append", default=[],
                    help="a Trivy (trivy image -f json) or Grype (grype -o json) report; repeatable, one per image "
                         "(default: none, the vulnerability control is N/A)")
    group.addoption("--k4c-vuln-severity", metavar="LEVEL", default=DEFAULT_SEVERITY,
                    help=f"fail on vulnerabilities of this severity or worse: {'|'.join(SEVERITIES)} "
                         f"(default: {DEFAULT_SEVERITY})")
    group.addoption("--k4c-max-report-age", metavar="DURATION", default=DEFAULT_MAX_REPORT_AGE,
                    help="a vulnerability report older than this is an ERROR, e.g. 24h, 7d "
                         f"(default: {DEFAULT_MAX_REPORT_AGE})")
    group.addoption("--k4c-max-image-age", metavar="DURATION", default=DEFAULT_MAX_IMAGE_AGE,
                    help="an image built longer ago than this fails the image age control, e.g. 30d "
                         f"(default: {DEFAULT_MAX_IMAGE_AGE})")


def parse_duration(flag: str, value: str) -> timedelta:
    m = _DURATION.match(str(value).strip())
    if not m or int(m.group(1)) == 0:
        raise pytest.UsageError(f"{flag}: {value!r} is not a duration like 30m, 24h, 7d or 2w")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_size(flag: str, value: str) -> int:
    m = _SIZE.match(str(value).strip())
    if not m or int(m.group(1)) == 0:
        raise pytest.UsageError(f"{flag}: {value!r} is not a size like 500MiB or 2GiB")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


@dataclass(frozen=True)
class ImagePolicy:
    """The thresholds of the image controls, from the options (the ``image_policy`` fixture)."""

    max_image_age: timedelta
    vuln_severity: str
    cosign_key: str | None
    vuln_reports: tuple[str, ...]
    #: the option as given ("90d"), for evidence
    max_image_age_text: str = DEFAULT_MAX_IMAGE_AGE

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


class ImageRun:
    """The validated image options of a run, the list of its images and, once needed, the source."""

    def __init__(self, config: pytest.Config):
        opt = config.getoption
        self.config = config
        self.refs: list[str] = list(dict.fromkeys(opt("k4c_image")))
        from k4c_pytest.sources import image_ref

        for text in self.refs:
            try:
                image_ref.parse(text)
            except image_ref.BadReference as exc:
                raise pytest.UsageError(f"--k4c-image: {exc}") from None
        layout = opt("k4c_image_layout")
        self.layout = Path(layout) if layout else None
        if self.layout is not None and not (self.layout.is_dir() or self.layout.is_file()):
            raise pytest.UsageError(f"--k4c-image-layout: {layout}: no such folder or tarball")
        if self.layout is not None and self.layout.is_dir() and not (self.layout / "index.json").is_file():
            raise pytest.UsageError(f"--k4c-image-layout: {layout}: not an OCI image layout (no index.json)")
        self.platform = opt("k4c_platform")
        if self.platform is not None and not _PLATFORM.match(self.platform):
            raise pytest.UsageError(f"--k4c-platform: {self.platform!r} is not a platform like linux/amd64 "
                                    "or linux/arm/v7")
        from k4c_pytest.sources.image_registry import Credentials, default_auth_file

        auth = opt("k4c_registry_auth")
        auth_path = Path(auth) if auth else default_auth_file()
        if auth and not Path(auth).is_file():
            raise pytest.UsageError(f"--k4c-registry-auth: {auth}: no such file")
        try:
            self.credentials = Credentials.load(auth_path)
        except ValueError as exc:
            flag = "--k4c-registry-auth" if auth else "docker config"
            raise pytest.UsageError(f"{flag}: {exc}") from None
        self.insecure = tuple(opt("k4c_insecure_registry"))
        self.timeout = opt("k4c_registry_timeout")
        if not self.timeout > 0:
            raise pytest.UsageError(f"--k4c-registry-timeout: must be more than 0 seconds, got {self.timeout}")
        self.max_layer_bytes = parse_size("--k4c-max-layer-size", opt("k4c_max_layer_size"))
        self.cosign_key_path = opt("k4c_cosign_key")
        self.cosign_key = None
        if self.cosign_key_path:
            from k4c_pytest.sources.image_signature import load_public_key

            try:
                self.cosign_key = load_public_key(Path(self.cosign_key_path).read_bytes())
            except OSError as exc:
                raise pytest.UsageError(f"--k4c-cosign-key: {self.cosign_key_path}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise pytest.UsageError(f"--k4c-cosign-key: {self.cosign_key_path}: not a PEM public key "
                                        f"({exc})") from None
        from k4c_pytest.sources import image_vulns

        self.vuln_reports = []
        for path in opt("k4c_vuln_report"):
            try:
                self.vuln_reports.append(image_vulns.load(Path(path)))
            except ValueError as exc:
                raise pytest.UsageError(f"--k4c-vuln-report: {path}: {exc}") from None
        severity = str(opt("k4c_vuln_severity")).lower()
        if severity not in SEVERITIES:
            raise pytest.UsageError(f"--k4c-vuln-severity: {opt('k4c_vuln_severity')!r} is not one of "
                                    f"{'|'.join(SEVERITIES)}")
        self.policy = ImagePolicy(parse_duration("--k4c-max-image-age", opt("k4c_max_image_age")), severity,
                                  self.cosign_key_path, tuple(opt("k4c_vuln_report")), opt("k4c_max_image_age"))
        self.max_report_age = parse_duration("--k4c-max-report-age", opt("k4c_max_report_age"))
        self._source = None
        self._targets = None

    def source(self):
        if self._source is None:
            from k4c_pytest.sources.image import ImageSource

            self._source = ImageSource(credentials=self.credentials, layout=self.layout, platform=self.platform,
                                       insecure=self.insecure, timeout=self.timeout,
                                       max_layer_bytes=self.max_layer_bytes, cosign_key=self.cosign_key,
                                       vuln_reports=self.vuln_reports, max_report_age=self.max_report_age)
        return self._source

    def _cluster(self):
        """Every cluster target whose workloads' images are checked, as ``{name: ClusterSource}``
        (None: no cluster target, or --k4c-no-cluster-images)."""
        from k4c_pytest.run import RUN_KEY

        if self.config.getoption("k4c_no_cluster_images"):
            return None
        run = self.config.stash.get(RUN_KEY, None)
        if run is None:
            return None
        try:
            return {name: run.cluster_source(name) for name in run.target_names} or None
        except NotApplicable:
            return None

    def targets(self) -> list:
        """Every image of the run (computed once; on an xdist worker, received from the controller)."""
        if self._targets is None:
            from k4c_pytest.sources import image as image_source

            sent = getattr(self.config, "workerinput", {}).get(_WORKER_INPUT)
            if sent is not None:
                self._targets = [_target_from_dict(d) for d in sent]
            else:
                cluster = self._cluster()
                self._targets = image_source.collect_targets(
                    self.refs, self.source().layout_targets if self.layout is not None else None,
                    (lambda: cluster) if cluster is not None else None)
        return self._targets

    def image(self, label: str):
        __tracebackhide__ = True
        from k4c_pytest.sources.image import Image

        for target in self.targets():
            if target.label == label:
                return Image(self.source(), target)
        raise DataUnavailable(f"image {label}", "not among the images of this run")

    def header_line(self) -> str:
        parts = []
        if self.refs:
            parts.append(f"{len(self.refs)} --k4c-image")
        if self.layout is not None:
            parts.append(f"layout {self.layout}")
        if self._cluster() is not None:
            parts.append("the cluster's workload images")
        what = ", ".join(parts) if parts else "no images (image controls are N/A)"
        extra = []
        if self.platform:
            extra.append(f"platform {self.platform}")
        if self.cosign_key_path:
            extra.append(f"cosign key {self.cosign_key_path}")
        if self.vuln_reports:
            extra.append(f"{len(self.vuln_reports)} vulnerability report(s), fail at {self.policy.vuln_severity}")
        return "k4c images: " + what + ("; " + "; ".join(extra) if extra else "")

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


def _target_to_dict(t) -> dict[str, Any]:
    return {"label": t.label, "ref": str(t.ref) if t.ref is not None else None, "store": t.store,
            "reference": t.reference,
            "usages": [[u.workload, u.container, u.run_as_user, u.field] for u in t.usages],
            "error": [t.error.source, t.error.reason] if t.error is not None else None}


def _target_from_dict(d: dict[str, Any]):
    from k4c_pytest.sources import image_ref
    from k4c_pytest.sources.image import ImageTarget, Usage

    return ImageTarget(label=d["label"], ref=image_ref.parse(d["ref"]) if d["ref"] else None, store=d["store"],
                       reference=d["reference"], usages=[Usage(*u) for u in d["usages"]],
                       error=DataUnavailable(*d["error"]) if d["error"] else None)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    config.stash[IMAGE_KEY] = ImageRun(config)  # raises pytest.UsageError on a bad option


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(IMAGE_KEY, None)
    if run is not None:
        run.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(IMAGE_KEY, None)
    return [run.header_line()] if run is not None else []


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    # xdist controller: list the images once and give every worker the same list.
    run = node.config.stash.get(IMAGE_KEY, None)
    if run is not None:
        node.workerinput[_WORKER_INPUT] = [_target_to_dict(t) for t in run.targets()]


def _uses_our_image_fixture(metafunc: pytest.Metafunc) -> bool:
    """Whether ``image`` is k4c's fixture here: not a test's own parameter, nor a fixture of the
    same name that a conftest defines."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "image" in names:
            return False
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("image") or ()
    return bool(defs) and getattr(defs[-1].func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "image" not in metafunc.fixturenames or not _uses_our_image_fixture(metafunc):
        return
    run = metafunc.config.stash.get(IMAGE_KEY, None)
    if run is None:
        return
    labels = [t.label for t in run.targets()]
    if labels:
        metafunc.parametrize("image", labels, ids=labels, indirect=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # As the cloud plugin does: the images read join the coverage on the teardown report.
    report = yield
    run = item.config.stash.get(IMAGE_KEY, None)
    if run is not None and run._source is not None and report.when == "teardown" \
            and hasattr(report, "k4c_coverage"):
        cov = run._source.coverage_report()
        if cov:
            report.k4c_coverage = {**(report.k4c_coverage or {}), **cov}
    return report


@pytest.fixture
def image(request: pytest.FixtureRequest):
    """The image under test (:class:`k4c_pytest.sources.image.Image`); a control taking it runs
    once per image of the run: ``--k4c-image`` references, the cluster's workload images and the
    images of ``--k4c-image-layout``.

    ``image.variants()`` lists its platform images (:class:`~k4c_pytest.sources.image.ImageVariant`:
    ``config`` with ENV values redacted, ``secrets``, ``user``, ``exposed_ports``, ``created``,
    ``contents()`` for files and packages); ``image.usages`` the workload containers running it;
    ``image.signature(v)`` and ``image.vulnerability_report(v)``. N/A when the run has no images;
    ERROR when the image cannot be read.
    """
    __tracebackhide__ = True
    label = getattr(request, "param", None)
    if label is None:
        raise NotApplicable("no images: give --k4c-image, --k4c-image-layout, or a cluster target whose "
                            "workloads run images")
    return request.config.stash[IMAGE_KEY].image(label)


@pytest.fixture(scope="session")
def image_policy(pytestconfig: pytest.Config) -> ImagePolicy:
    """Thresholds of the image controls: ``max_image_age``, ``vuln_severity``, ``cosign_key``,
    ``vuln_reports`` (from ``--k4c-max-image-age``, ``--k4c-vuln-severity``, ...)."""
    return pytestconfig.stash[IMAGE_KEY].policy


__all__ = ["ImagePolicy", "ImageRun", "image", "image_policy"]
