"""Evidence bundles to S3: ``--k4c-bundle s3://BUCKET/PREFIX``.

This is the one write k4c makes, and it goes to the user's own evidence bucket, never to a
target: k4c reads clusters and AWS accounts, and only here puts objects, into a bucket the
user names, under a prefix that must be new. The bundle is written to a local staging folder
first (``k4c_pytest.bundle`` writes it as for any folder), checked against its manifest, then
uploaded file by file with ``s3:PutObject``:

- each object carries its SHA-256 (``ChecksumSHA256``), so S3 refuses bytes that differ from
  the file the manifest hashed;
- each is written with ``If-None-Match: *``: an existing object is never replaced;
- ``manifest.json`` goes last (its signature after it), so a manifest in the bucket means
  every file it lists is there;
- before the run starts, the prefix is listed once (``s3:ListBucket``): a prefix that already
  holds objects, a missing bucket or missing credentials stop the run at once, before hours of
  controls end in an upload that cannot happen.

Credentials, region and endpoint come from boto3's usual chain (IRSA / Pod Identity in a pod,
``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store). The IAM
permissions are in deploy/k4c-aws-evidence-writer-policy.json; docs/in-cluster.md.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCHEME = "s3://"
#: Where the controller's staging folder is passed to xdist workers (they write parts into it).
WORKER_KEY = "k4c_bundle_stage"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MEDIA = {".json": "application/json", ".sarif": "application/sarif+json", ".xml": "application/xml",
          ".html": "text/html; charset=utf-8", ".yaml": "application/yaml", ".gz": "application/gzip",
          ".sig": "application/octet-stream"}


class UploadError(Exception):
    """The bundle could not be written to S3 (the message names the object and the reason)."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing slash)."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}/"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def is_s3_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_url(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` -> S3Location; ValueError saying what is wrong."""
    if not is_s3_url(url):
        raise ValueError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[len(SCHEME):].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{url}: {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    if not prefix:
        raise ValueError(f"{url}: give a prefix for this run's bundle, e.g. {SCHEME}{bucket}/clusters/NAME/RUN")
    if any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"{url}: the prefix {prefix!r} has an empty, '.' or '..' segment")
    return S3Location(bucket, prefix)


def client():
    """An S3 client from boto3's default chain of credentials, region and endpoint."""
    import boto3

    return boto3.session.Session().client("s3")


def _describe(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def check_destination(location: S3Location, s3=None) -> None:
    """Fail now if the bundle could not be written later: no credentials, no bucket, no right
    to list it, or a prefix that already holds objects (a bundle holds one run only)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or client()
    try:
        listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.prefix + "/", MaxKeys=1)
    except (ClientError, BotoCoreError) as exc:
        raise UploadError(f"{location.url}: cannot list the prefix ({_describe(exc)})") from None
    if listed.get("KeyCount", 0) or listed.get("Contents"):
        raise UploadError(f"{location.url} already holds objects; give a new prefix, a bundle holds one run only")


def _sha256_b64(path: Path) -> str:
    from k4c_pytest.bundle import sha256_file

    return base64.b64encode(bytes.fromhex(sha256_file(path))).decode()


def upload_bundle(folder: str | Path, location: S3Location, s3=None) -> list[str]:
    """Upload a bundle folder under ``location``; returns the keys written, manifest last.

    The folder is verified against its manifest first: a bundle changed since it was written is
    not uploaded. Raises UploadError."""
    from botocore.exceptions import BotoCoreError, ClientError

    from k4c_pytest import bundle

    folder = Path(folder)
    try:
        check = bundle.verify_bundle(folder)
    except bundle.BundleError as exc:
        raise UploadError(str(exc)) from None
    if check.problems:
        raise UploadError(f"{folder}: not uploaded, it does not match its manifest: {'; '.join(check.problems[:5])}")
    names = sorted(check.manifest["files"]) + [bundle.MANIFEST]
    if (folder / bundle.SIGNATURE).is_file():
        names.append(bundle.SIGNATURE)
    s3 = s3 or client()
    written = []
    for name in names:
        path, key = folder / name, location.key(name)
        try:
            with path.open("rb") as body:
                s3.put_object(Bucket=location.bucket, Key=key, Body=body, IfNoneMatch="*",
                              ChecksumAlgorithm="SHA256", ChecksumSHA256=_sha256_b64(path),
                              ContentType=_MEDIA.get(path.suffix, "application/octet-stream"))
        except (ClientError, BotoCoreError, OSError) as exc:
            done = f" ({len(written)} of {len(names)} files were written, the manifest was not)" if written else ""
            raise UploadError(f"{SCHEME}{location.bucket}/{key}: {_describe(exc)}{done}") from None
        written.append(key)
    return written


# -- the pytest side -------------------------------------------------------------------------

def stage_option(config: pytest.Config) -> None:
    """With ``--k4c-bundle s3://...``: check the destination, then point the option at a local
    staging folder, which the bundle code writes as usual and :class:`S3Upload` uploads.

    Called before the bundle code reads the option (``pytest_cmdline_main``); xdist workers
    get the controller's staging folder, since they write their parts into it."""
    value = config.getoption("k4c_bundle", None)
    if not is_s3_url(value):
        return
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        config.option.k4c_bundle = worker[WORKER_KEY]
        return
    try:
        location = parse_url(value)
        check_destination(location)
    except (ValueError, UploadError) as exc:
        raise pytest.UsageError(f"--k4c-bundle: {exc}") from None
    stage = Path(tempfile.mkdtemp(prefix="k4c-bundle-"))
    config.option.k4c_bundle = str(stage)
    config.pluginmanager.register(S3Upload(location, stage), "k4c-bundle-s3")


class S3Upload:
    """Uploads the staged bundle once it is written (its hook wraps the bundle writer's)."""

    def __init__(self, location: S3Location, stage: Path):
        self.location = location
        self.stage = stage

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[WORKER_KEY] = str(self.stage)

    # tryfirst makes this wrapper the outermost: its code after the yield runs once the bundle
    # writer's (an inner wrapper) has written the folder.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int):
        result = yield
        from k4c_pytest.bundle import MANIFEST

        reporter = session.config.pluginmanager.get_plugin("terminalreporter")

        def say(line: str, **markup: bool) -> None:
            if reporter is not None:
                reporter.write_line(line, **markup)

        if not (self.stage / MANIFEST).is_file():
            say(f"k4c: no bundle was written, nothing uploaded to {self.location.url}", yellow=True)
            shutil.rmtree(self.stage, ignore_errors=True)
            return result
        try:
            keys = upload_bundle(self.stage, self.location)
        except UploadError as exc:
            say(f"k4c: error: the bundle was not uploaded: {exc}; it is kept in {self.stage}", red=True)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return result
        shutil.rmtree(self.stage, ignore_errors=True)
        say(f"k4c bundle: uploaded {len(keys)} files to {self.location.url}; check it with: "
            f"aws s3 cp --recursive {self.location.url} BUNDLE && k4c verify BUNDLE")
        return result
