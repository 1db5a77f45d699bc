"""Evidence bundles (``--k4c-bundle DIR``): everything a run produced, hashed and optionally signed.

A bundle is a folder (layout and guarantees in docs/bundle.md)::

    results.json        the JSON results (docs/results-schema.md)
    results.sarif       SARIF 2.1.0 of every finding
    junit.xml           pytest's JUnit XML with the k4c properties (when pytest's junitxml is active)
    oscal.json          OSCAL assessment results, linking the other files with their SHA-256
    report.html         the pytest-html report (when pytest-html is installed and not disabled)
    snapshot.json.gz    what the run read of the cluster: the snapshot it evaluated, or, for a
                        live run or manifests, the kinds it listed (format 2, k4c_pytest.sources.cluster_snapshot)
    snapshots/<t>.json.gz  with several --k4c-cluster targets: one such snapshot per target instead
                        (the manifest's "snapshots" maps each target's name to its file)
    waivers.yaml        the --k4c-waivers file, as it was
    manifest.json       format, k4c version, times, target, totals, and the sha256 and size of every other file
    manifest.json.sig   Ed25519 signature of manifest.json's bytes (--k4c-sign-key)

Public API (also for ``k4c merge`` and the in-cluster runs): :func:`write_bundle`,
:func:`read_bundle`, :func:`verify_bundle`, :func:`snapshot_in`, :func:`load_results`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import pytest

from k4c_pytest import __version__

FORMAT = "k4c-bundle"
VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
RESULTS = "results.json"
SARIF = "results.sarif"
JUNIT = "junit.xml"
OSCAL = "oscal.json"
HTML = "report.html"
WAIVERS = "waivers.yaml"
SNAPSHOT = "snapshot.json.gz"
#: With several cluster targets: the folder of their snapshots, one per target.
SNAPSHOTS = "snapshots"
#: Where xdist workers leave the kinds they read, merged into the snapshot by the controller.
PARTS = ".k4c-parts"
_MEDIA = {".json": "application/json", ".sarif": "application/sarif+json", ".xml": "application/xml",
          ".html": "text/html", ".gz": "application/gzip", ".yaml": "application/yaml", ".yml": "application/yaml"}
_CHUNK = 1 << 20


class BundleError(Exception):
    """A folder is not a readable k4c bundle (no manifest, unreadable manifest, bad key file)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every file below ``root`` (relative POSIX paths, sorted) but the manifest and its signature.

    Symbolic links are listed as files, never followed: a link in a bundle is reported, not trusted."""
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel = Path(folder).relative_to(root)
        for name in files + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = (rel / name).as_posix()
            if path not in (MANIFEST, SIGNATURE):
                out.append(path)
    return sorted(out)


def _media_type(name: str) -> str:
    return _MEDIA.get(PurePosixPath(name).suffix, "application/octet-stream")


# -- keys ------------------------------------------------------------------------------------

def load_private_key(path: str | Path):
    """An Ed25519 private key from a PEM (or OpenSSH) file; ``K4C_SIGN_KEY_PASSPHRASE`` decrypts it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror}") from None
    passphrase = os.environ.get("K4C_SIGN_KEY_PASSPHRASE")
    password = passphrase.encode() if passphrase else None
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key = serialization.load_ssh_private_key(data, password)
        else:
            key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not a readable private key ({exc}); an encrypted key needs "
                          f"K4C_SIGN_KEY_PASSPHRASE") from None
    except Exception as exc:  # noqa: BLE001 - cryptography raises UnsupportedAlgorithm and others
        raise BundleError(f"{path}: not a readable private key ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: a {type(key).__name__.replace('_', '')} key; k4c signs with Ed25519 "
                          f"(make one: openssl genpkey -algorithm ed25519 -out k4c-sign.pem)")
    return key


def load_public_key(path: str | Path):
    """An Ed25519 public key from a PEM (SubjectPublicKeyInfo) or OpenSSH public key file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"--pubkey: {path}: cannot read: {exc.strerror}") from None
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key = serialization.load_ssh_public_key(data)
        else:
            key = serialization.load_pem_public_key(data)
    except Exception as exc:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm...
        raise BundleError(f"--pubkey: {path}: not a readable public key ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"--pubkey: {path}: not an Ed25519 public key")
    return key


def key_id(public_key) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key: names the key in the manifest and in messages."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# -- the manifest ----------------------------------------------------------------------------

def manifest_for(root: Path, info: dict[str, Any]) -> dict[str, Any]:
    files = {}
    for name in bundle_files(root):
        path = root / name
        files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size, "media_type": _media_type(name)}
    return {"format": FORMAT, "version": VERSION, "k4c_version": __version__, "created_at": _now(), **info,
            "files": files}


def write_manifest(root: Path, info: dict[str, Any], signing_key=None) -> dict[str, Any]:
    """Hash every file of ``root`` into manifest.json (and sign it with ``signing_key``)."""
    if signing_key is not None:
        info = {**info, "signature": {"algorithm": "Ed25519", "key": key_id(signing_key.public_key()),
                                      "file": SIGNATURE}}
    manifest = manifest_for(root, info)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    _write_atomic(root / MANIFEST, data)
    (root / SIGNATURE).unlink(missing_ok=True)
    if signing_key is not None:
        # The raw 64-byte signature of the file's exact bytes, as `openssl pkeyutl -verify -rawin` reads it.
        _write_atomic(root / SIGNATURE, signing_key.sign(data))
    return manifest


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _safe_name(name: Any) -> bool:
    """A manifest entry names a file inside the bundle: relative, no ``..``, no backslash."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and p.as_posix() == name


def _read_manifest(root: Path) -> tuple[dict[str, Any], bytes]:
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: not a folder")
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root}: no {MANIFEST}: not a k4c bundle")
    raw = path.read_bytes()
    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a k4c bundle manifest (no \"format\": \"{FORMAT}\")")
    if manifest.get("version") != VERSION:
        raise BundleError(f"{path}: bundle version {manifest.get('version')!r} is not supported (expected {VERSION})")
    if not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{path}: malformed: \"files\" is missing")
    return manifest, raw


# -- verifying and reading -------------------------------------------------------------------

@dataclass
class Verification:
    """What :func:`verify_bundle` found. ``problems`` empty and ``signature`` not bad: the bundle is intact."""

    root: Path
    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    #: "good", "bad", "missing" (a key was given but no signature is there), "not checked"
    #: (a signature is there but no key was given) or "unsigned" (neither)
    signature: str = "unsigned"
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(root: str | Path, public_key=None) -> Verification:
    """Check every file of a bundle against its manifest, and the manifest against its signature.

    Reports each changed, missing and added file, and a bad or missing signature when
    ``public_key`` (an Ed25519 public key, :func:`load_public_key`) is given. Raises
    BundleError when ``root`` is not a bundle at all."""
    from cryptography.exceptions import InvalidSignature

    root = Path(root)
    manifest, raw = _read_manifest(root)
    result = Verification(root, manifest)
    listed = manifest["files"]
    for name in sorted(listed):
        entry = listed[name]
        if not _safe_name(name):
            result.problems.append(f"bad entry: {name!r} names a file outside the bundle")
            continue
        path = root / name
        if path.is_symlink():
            result.problems.append(f"changed: {name} is a symbolic link")
            continue
        if not path.is_file():
            result.problems.append(f"missing: {name}")
            continue
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        actual = sha256_file(path)
        if actual != expected:
            result.problems.append(f"changed: {name} (sha256 {actual}, the manifest says {expected})")
        result.files += 1
    for name in bundle_files(root):
        if name not in listed:
            result.problems.append(f"added: {name} (not in the manifest)")
    sig_path = root / SIGNATURE
    if public_key is None:
        result.signature = "not checked" if sig_path.exists() else "unsigned"
    elif not sig_path.is_file():
        result.signature = "missing"
        result.problems.append(f"signature: missing: no {SIGNATURE}, so nothing proves who wrote the manifest")
    else:
        try:
            public_key.verify(sig_path.read_bytes(), raw)
            result.signature = "good"
        except InvalidSignature:
            result.signature = "bad"
            signer = (manifest.get("signature") or {}).get("key")
            given = key_id(public_key)
            why = (f"it was made by key {signer}, not the given key {given}" if signer and signer != given
                   else f"{MANIFEST} or {SIGNATURE} was changed after signing")
            result.problems.append(f"signature: bad: {SIGNATURE} does not verify {MANIFEST} with key {given} ({why})")
    return result


@dataclass
class Bundle:
    """A bundle read back: its folder, manifest and JSON results (not verified: see :func:`verify_bundle`)."""

    root: Path
    manifest: dict[str, Any]
    results: dict[str, Any]

    def path(self, name: str) -> Path | None:
        """The path of a file the manifest lists, or None."""
        return self.root / name if name in self.manifest["files"] and _safe_name(name) else None

    @property
    def snapshot(self) -> Path | None:
        name = self.manifest.get("snapshot")
        return self.path(name) if name else None


def read_bundle(root: str | Path) -> Bundle:
    """Read a bundle's manifest and results (raises BundleError)."""
    root = Path(root)
    manifest, _ = _read_manifest(root)
    path = root / RESULTS
    try:
        results = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"{root}: no {RESULTS}") from None
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from None
    return Bundle(root, manifest, results)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """A bundle's manifest, not verified (raises BundleError when it is no bundle)."""
    return _read_manifest(Path(root))[0]


def snapshot_in(root: str | Path) -> Path:
    """The snapshot of a bundle, checked against the manifest (a changed snapshot is never evaluated)."""
    root = Path(root)
    manifest, _ = _read_manifest(root)
    name = manifest.get("snapshot")
    if not name:
        raise BundleError(f"{root}: the bundle holds no snapshot (the run had no cluster target)")
    return _checked_file(root, manifest, name, "snapshot")


def snapshots_in(root: str | Path) -> dict[str, Path]:
    """Every cluster target's snapshot in a bundle, by target name, each checked against the
    manifest; a bundle of a one-target run gives ``{"": path}``."""
    root = Path(root)
    manifest, _ = _read_manifest(root)
    named = manifest.get("snapshots")
    if not named:
        return {"": snapshot_in(root)}
    if not isinstance(named, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in named.items()):
        raise BundleError(f"{root}/{MANIFEST}: \"snapshots\" must map target names to files")
    return {target: _checked_file(root, manifest, name, "snapshot") for target, name in named.items()}


def _checked_file(root: Path, manifest: dict[str, Any], name: str, what: str) -> Path:
    entry = manifest["files"].get(name)
    if not _safe_name(name) or not isinstance(entry, dict):
        raise BundleError(f"{root}/{MANIFEST}: the {what} {name!r} is not among its files")
    path = root / name
    if not path.is_file() or path.is_symlink():
        raise BundleError(f"{path}: missing")
    if sha256_file(path) != entry.get("sha256"):
        raise BundleError(f"{path}: changed since the bundle was written (its sha256 is not the manifest's); "
                          f"run 'k4c verify {root}'")
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """JSON results from a results file or a bundle folder (raises BundleError)."""
    path = Path(path)
    if path.is_dir():
        return read_bundle(path).results
    try:
        results = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(results, dict) or not str(results.get("schema", "")).startswith("k4c-results/"):
        raise BundleError(f"{path}: not k4c JSON results (no \"schema\": \"k4c-results/...\")")
    return results


# -- writing from a run ----------------------------------------------------------------------

def check_dir(value: str) -> Path:
    """The ``--k4c-bundle`` folder: created if missing, refused if it holds anything already
    (a bundle must hold only what its run wrote). Raises BundleError with the reason."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise BundleError(f"{value} is a file; give a folder (it is created if missing)")
    if path.is_dir() and any(path.iterdir()):
        raise BundleError(f"{value} is not empty; give a new or empty folder, a bundle holds one run only")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"cannot create {value}: {exc.strerror}") from None
    return path


def _snapshot_of_source(source, started_at: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and items of a format-2 snapshot holding every kind ``source`` (a ClusterSource) read."""
    from k4c_pytest.sources.cluster import LISTED

    kinds: dict[str, dict[str, Any]] = {}
    items: dict[str, Any] = {}
    for key, cov in sorted(source.coverage.items()):
        entry: dict[str, Any] = {"status": cov.status}
        if cov.reason:
            entry["reason"] = cov.reason
        if cov.collected_at:
            entry["collected_at"] = cov.collected_at
        if cov.status == LISTED:
            items[key] = source.list(key)  # the session's cached, redacted objects: no new request
        kinds[key] = entry
    backend = source.backend
    header = {"k4c_version": __version__, "started_at": started_at, "finished_at": _now(),
              "target": backend.describe(), "server_version": backend.server_version(), "kinds": kinds}
    return header, items


def write_source_snapshot(path: Path, source, started_at: str) -> None:
    from k4c_pytest.sources.cluster_snapshot import snapshot_lines, write_snapshot_file

    header, items = _snapshot_of_source(source, started_at)
    write_snapshot_file(path, snapshot_lines(header, items))


def write_worker_part(root: Path, worker_id: str, run) -> None:
    """An xdist worker's share of the snapshots: the kinds its controls read, per cluster target
    (``.k4c-parts/<target index>/<worker>.json.gz``)."""
    for index, name in enumerate(run.target_names):
        source = run.read_source(name)
        if source is None:
            continue
        parts = Path(root) / PARTS / f"{index:04d}"
        parts.mkdir(parents=True, exist_ok=True)
        write_source_snapshot(parts / f"{worker_id}.json.gz", source, run.started_at)


def _merge_parts(folder: Path, out: Path, started_at: str) -> bool:
    """Merge the workers' snapshots of one target into one; a kind any worker listed is taken
    from that worker."""
    from k4c_pytest.sources.cluster_snapshot import read_snapshot, snapshot_lines, write_snapshot_file

    parts = sorted(folder.glob("*.json.gz")) if folder.is_dir() else []
    if not parts:
        return False
    if len(parts) == 1:
        # One reader (a serial run): its part is the snapshot, nothing to parse again.
        os.replace(parts[0], out)
        return True
    header: dict[str, Any] | None = None
    kinds: dict[str, dict[str, Any]] = {}
    items: dict[str, Any] = {}
    for part in parts:
        doc = read_snapshot(part)
        if header is None:
            header = {k: v for k, v in doc.items() if k not in ("kinds", "format", "version")}
        for key, entry in doc["kinds"].items():
            if key in kinds and kinds[key]["status"] == "listed":
                continue
            if key not in kinds or entry.get("status") == "listed":
                kinds[key] = {k: v for k, v in entry.items() if k not in ("items", "count")}
                if entry.get("status") == "listed":
                    items[key] = entry.get("items") or []
    assert header is not None
    header.update({"started_at": started_at, "finished_at": _now(), "kinds": dict(sorted(kinds.items()))})
    write_snapshot_file(out, snapshot_lines(header, items))
    return True


def _copy(src: str | Path | None, dest: Path) -> bool:
    if not src:
        return False
    src = Path(src)
    if not src.is_file():
        return False
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    return True


def _file_names(targets: list[str]) -> dict[str, str]:
    """A distinct, safe file name below ``snapshots/`` for each target name."""
    import re

    names: dict[str, str] = {}
    for target in targets:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("._") or "target"
        name, n = f"{SNAPSHOTS}/{stem}.json.gz", 1
        while name in names.values():
            n += 1
            name = f"{SNAPSHOTS}/{stem}-{n}.json.gz"
        names[target] = name
    return names


def _bundle_snapshot(root: Path, run) -> tuple[str | None, dict[str, str]]:
    """Put what the run read of each cluster target into the bundle; returns the first target's
    file (None without a target) and, with several targets, every target's file by name."""
    target = run.target()
    mode = target.get("mode")
    if mode is None:
        return None, {}
    if mode == "snapshot":
        # Evaluated from snapshots: they are what was read, copied as they are.
        copied: dict[str, str] = {}
        names = _file_names(run.target_names) if run.multi_target else {run.target_names[0]: SNAPSHOT}
        for name, file in names.items():
            src = Path(run.target(name)["snapshot"])
            with open(src, "rb") as fh:
                gz = fh.read(2) == b"\x1f\x8b"
            copied[name] = file if gz else file.removesuffix(".gz")
            (root / copied[name]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / copied[name])
        return copied[run.target_names[0]], (copied if run.multi_target else {})
    names = _file_names(run.target_names) if run.multi_target else {run.target_names[0]: SNAPSHOT}
    # Under xdist the workers left their parts already; the controller may have read kinds too
    # (the image plugin lists workloads there to find the images to check).
    write_worker_part(root, "controller", run)
    for index, (name, file) in enumerate(names.items()):
        out = root / file
        out.parent.mkdir(parents=True, exist_ok=True)
        if not _merge_parts(root / PARTS / f"{index:04d}", out, run.started_at):
            # No control read this target: the snapshot still says what was targeted.
            from k4c_pytest.sources.cluster_snapshot import snapshot_lines, write_snapshot_file

            t = run.target(name)
            header = {"k4c_version": __version__, "started_at": run.started_at, "finished_at": _now(),
                      "target": {k: v for k, v in t.items() if k != "server_version"},
                      "server_version": t.get("server_version"), "kinds": {}}
            write_snapshot_file(out, snapshot_lines(header, {}))
    shutil.rmtree(root / PARTS, ignore_errors=True)
    return names[run.target_names[0]], (names if run.multi_target else {})


def write_bundle(root: str | Path, run, *, junit: str | Path | None = None, html: str | Path | None = None,
                 html_self_contained: bool = True, waivers: str | Path | None = None,
                 rootpath: Path | None = None, signing_key=None) -> dict[str, Any]:
    """Write the bundle of a finished :class:`k4c_pytest.run.Run` into ``root``; returns the manifest.

    ``junit`` and ``html``: the files pytest's junitxml and pytest-html wrote (copied in when
    they are elsewhere); ``waivers``: the waivers file; ``signing_key``: an Ed25519 private key."""
    from k4c_pytest.report.oscal import Evidence, write_oscal
    from k4c_pytest.report.results import write_json
    from k4c_pytest.report.sarif import write_sarif

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    results = run.results()
    write_json(root / RESULTS, results)
    write_sarif(root / SARIF, run, rootpath)
    _copy(junit, root / JUNIT)
    if _copy(html, root / HTML) and not html_self_contained:
        assets = Path(html).parent / "assets"
        if assets.is_dir() and assets.resolve() != (root / "assets").resolve():
            shutil.copytree(assets, root / "assets", dirs_exist_ok=True)
    snapshot, snapshots = _bundle_snapshot(root, run)
    if waivers:
        shutil.copyfile(waivers, root / WAIVERS)
    evidence = [Evidence(name, name, sha256_file(root / name), _media_type(name))
                for name in bundle_files(root) if name != OSCAL]
    write_oscal(root / OSCAL, results, evidence, results_href=RESULTS,
                report_href=HTML if (root / HTML).is_file() else None)
    info = {"started_at": results["started_at"], "finished_at": results["finished_at"],
            "exit_status": results["exit_status"], "target": results["target"], "totals": results["totals"],
            "snapshot": snapshot}
    if snapshots:
        info["targets"] = results["targets"]
        info["snapshots"] = snapshots
    return write_manifest(root, info, signing_key)


def describe(manifest: dict[str, Any]) -> str:
    """One line naming a bundle's run: when, what, outcomes."""
    target = manifest.get("target") or {}
    what = target.get("context") or target.get("snapshot") or target.get("manifests") or "no cluster target"
    if len(manifest.get("snapshots") or ()) > 1:
        what = f"{len(manifest['snapshots'])} clusters: {', '.join(manifest['snapshots'])}"
    totals = ", ".join(f"{n} {o}" for o, n in (manifest.get("totals") or {}).items() if n)
    return (f"k4c {manifest.get('k4c_version')} run finished {manifest.get('finished_at')}, "
            f"{target.get('mode') or 'no'} target {what}" + (f": {totals}" if totals else ""))


__all__ = ["BundleError", "Bundle", "Verification", "write_bundle", "read_bundle", "verify_bundle",
           "snapshot_in", "snapshots_in", "read_manifest", "load_results", "load_private_key", "load_public_key", "key_id", "check_dir",
           "describe", "write_worker_part", "FORMAT", "VERSION", "MANIFEST", "SIGNATURE", "RESULTS",
           "SARIF", "JUNIT", "OSCAL", "HTML", "WAIVERS", "SNAPSHOT"]


# -- the pytest side -------------------------------------------------------------------------

def prepare_options(config) -> None:
    """With ``--k4c-bundle``, have pytest's junitxml and pytest-html write into the bundle when the
    user did not ask for them elsewhere (called before those plugins are configured)."""
    value = config.getoption("k4c_bundle", None)
    if not value or hasattr(config, "workerinput"):
        return
    root = Path(value)
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath:
        config.option.xmlpath = str(root / JUNIT)
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(root / HTML)
        config.option.self_contained_html = True


class BundleHooks:
    """Writes the bundle once every other plugin has finished (pytest-html and junitxml write
    their files in ``pytest_sessionfinish`` too); on an xdist worker, leaves the kinds it read."""

    def __init__(self, run, config, root: Path, signing_key=None):
        self.run = run
        self.config = config
        self.root = Path(root)
        self.signing_key = signing_key
        self.worker_id = getattr(config, "workerinput", {}).get("workerid")

    def _write(self):
        opt = self.config.option
        return write_bundle(self.root, self.run, junit=getattr(opt, "xmlpath", None),
                            html=getattr(opt, "htmlpath", None),
                            html_self_contained=bool(getattr(opt, "self_contained_html", True)),
                            waivers=self.config.getoption("k4c_waivers"), rootpath=self.config.rootpath,
                            signing_key=self.signing_key)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.worker_id is not None:
            # Before xdist tells the controller this worker is done, so the part is there to merge.
            write_worker_part(self.root, self.worker_id, self.run)
            return (yield)
        result = yield
        if int(session.exitstatus) == 4:  # a usage error found during collection: nothing ran
            return result
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        try:
            manifest = self._write()
        except (OSError, BundleError) as exc:
            if reporter is not None:
                reporter.write_line(f"k4c: error: cannot write the bundle {self.root}: {exc}", red=True)
            session.exitstatus = 3
            return result
        if reporter is not None:
            signed = f", signed by {manifest['signature']['key']}" if manifest.get("signature") else ""
            reporter.write_line(f"k4c bundle: {self.root} ({len(manifest['files'])} files{signed}); "
                                f"check it with: k4c verify {self.root}")
        return result
