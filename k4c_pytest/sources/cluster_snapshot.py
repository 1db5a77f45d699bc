"""Snapshot backend of the cluster source: a file written by ``k4c collect``.

Format version 2 (what ``k4c collect`` writes): JSON Lines, optionally gzip-compressed::

    {"format": "k4c-snapshot", "version": 2, "k4c_version": "...", "started_at": "...",
     "finished_at": "...", "target": {...}, "server_version": "v1.37.2",
     "kinds": {"v1/pods": {"status": "listed", "collected_at": "...", "count": 2},
               "v1/secrets": {"status": "forbidden", "reason": "..."}, ...}}
    {"kind": "v1/pods", "count": 2}
    {"metadata": {...}, "spec": {...}}          <- one object a line, ``count`` lines
    {...}
    {"end": "k4c-snapshot", "objects": 2}       <- the last line: without it the file is truncated

One object a line lets a reader hold a large kind as a byte range of the file and parse it
object by object when a control iterates it, instead of holding the parsed objects of the
whole cluster at once (150,000 pods are ~3 GiB as Python dicts, ~0.6 GiB as JSON).

Format version 1 (still read): one JSON document, the same header with the items inline::

    {"format": "k4c-snapshot", "version": 1, ..., "kinds": {"v1/pods": {"status": "listed", "items": [...]}}}

The pseudo-kind ``nodes/configz`` holds each Node's kubelet configuration as its kubelet
answered ``/configz`` through the API server (one record a line:
``{"metadata": {"name": NODE}, "kubeletconfig": {...}}``), with a status like any kind.

A kind that was forbidden or failed at collection time stays an ERROR; a kind that was not
served stays N/A; a kind the snapshot does not hold at all is an ERROR too (it was never read).
A truncated or malformed file makes every kind an ERROR, never a silent PASS.
"""

from __future__ import annotations

import gc
import gzip
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN, NOT_COLLECTED, NOT_SERVED
from k4c_pytest.sources.kinds import Kind

FORMAT = "k4c-snapshot"
VERSION = 2
READABLE_VERSIONS = (1, 2)
END = "k4c-snapshot"
#: Kinds whose lines take more bytes than this are not kept parsed: every iteration parses
#: them again from the file, object by object. Smaller kinds are parsed once and cached.
STREAM_BYTES = int(os.environ.get("K4C_SNAPSHOT_STREAM_BYTES", 48 * 1024 * 1024))
_CHUNK = 4 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def _unavailable(source: str, status: str, reason: str) -> DataUnavailable:
    exc = DataUnavailable(source, reason)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def _check_header(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _unavailable(where, FAILED, "not a k4c snapshot (no \"format\": \"k4c-snapshot\")")
    version = doc.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:  # noqa: E721 - true == 1 in Python
        raise _unavailable(where, FAILED, f"snapshot format version {version!r} is not supported "
                                          f"(expected one of {', '.join(map(str, READABLE_VERSIONS))})")
    if not isinstance(doc.get("kinds"), dict):
        raise _unavailable(where, FAILED, "malformed snapshot: \"kinds\" is missing")
    return doc


# -- writing ---------------------------------------------------------------------------------

def snapshot_lines(header: dict[str, Any], items: dict[str, Iterable[dict]]) -> Iterator[bytes]:
    """The lines of a version-2 snapshot: ``header`` (its ``kinds`` entries get ``count``), then
    each listed kind's objects from ``items`` (kind key -> objects), then the end line."""
    header = {**header, "format": FORMAT, "version": VERSION}
    kinds = {key: dict(entry) for key, entry in header["kinds"].items()}
    lists = {key: list(items.get(key, ())) for key, entry in kinds.items() if entry.get("status") == "listed"}
    for key, objs in lists.items():
        kinds[key]["count"] = len(objs)
        kinds[key].pop("items", None)
    header["kinds"] = kinds
    yield orjson.dumps(header) + b"\n"
    total = 0
    for key, objs in lists.items():
        yield orjson.dumps({"kind": key, "count": len(objs)}) + b"\n"
        for obj in objs:
            yield orjson.dumps(obj) + b"\n"
        total += len(objs)
    yield orjson.dumps({"end": END, "objects": total}) + b"\n"


def write_snapshot_file(path: str | Path, lines: Iterable[bytes]) -> int:
    """Write snapshot lines atomically (a ``.tmp`` file renamed over ``path``), gzip-compressed
    when the name ends in ``.gz``. Returns the number of bytes written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            # mtime=0: the same snapshot always gives the same bytes.
            fh = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) \
                if path.name.endswith(".gz") else raw
            for line in lines:
                fh.write(line)
            if fh is not raw:
                fh.close()
            raw.flush()
            os.fsync(raw.fileno())
            size = raw.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


# -- reading ---------------------------------------------------------------------------------

class _Index:
    """A version-2 snapshot opened for reading: its header and the byte range of each kind."""

    def __init__(self, fh, header: dict[str, Any], ranges: dict[str, tuple[int, int, int]]):
        self.fh = fh
        self.header = header
        self.ranges = ranges  # kind key -> (start, end, count)

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        """The lines between two offsets, read with pread so that several iterations can run at once."""
        fd = self.fh.fileno()
        rest = b""
        pos = start
        while pos < end:
            chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
            if not chunk:
                break
            pos += len(chunk)
            data = rest + chunk
            parts = data.split(b"\n")
            rest = parts.pop()
            yield from parts
        if rest:
            yield rest


def _open_plain(path: Path):
    """The snapshot as a seekable plain file: gzip-compressed ones are unpacked into an
    anonymous temporary file first (removed when closed)."""
    fh = open(path, "rb")
    if fh.read(2) != _GZIP_MAGIC:
        fh.seek(0)
        return fh
    fh.seek(0)
    tmp = tempfile.TemporaryFile(prefix="k4c-snapshot-")
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            shutil.copyfileobj(gz, tmp, _CHUNK)
    except BaseException:
        tmp.close()
        raise
    finally:
        fh.close()
    tmp.seek(0)
    return tmp


def _index(fh, where: str) -> _Index | dict[str, Any]:
    """Read the header and find each kind's lines; a version-1 file is parsed whole and returned as its document."""
    first = fh.readline()
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        header = None
    if not (isinstance(header, dict) and header.get("version") == 2):
        # Version 1 (one document, possibly spread over several lines), or not a snapshot at all.
        fh.seek(0)
        try:
            return _check_header(orjson.loads(fh.read()), where)
        except orjson.JSONDecodeError as exc:
            raise _unavailable(where, FAILED, f"truncated or malformed JSON: {exc}") from None
    _check_header(header, where)
    ranges: dict[str, tuple[int, int, int]] = {}
    while True:
        line = fh.readline()
        if not line:
            raise _unavailable(where, FAILED, "truncated: the file ends before its end line")
        try:
            marker = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _unavailable(where, FAILED, f"malformed line at byte {fh.tell() - len(line)}: {exc}") from None
        if not isinstance(marker, dict):
            raise _unavailable(where, FAILED, f"malformed line at byte {fh.tell() - len(line)}")
        if marker.get("end") == END:
            if marker.get("objects") != sum(r[2] for r in ranges.values()):
                raise _unavailable(where, FAILED, "malformed: the end line counts other objects than the file holds")
            if fh.read(1):
                raise _unavailable(where, FAILED, "malformed: data after the end line")
            break
        key, count = marker.get("kind"), marker.get("count")
        if not isinstance(key, str) or type(count) is not int or count < 0:  # noqa: E721
            raise _unavailable(where, FAILED, f"malformed kind line at byte {fh.tell() - len(line)}")
        start = fh.tell()
        for n in range(count):
            obj_line = fh.readline()
            if not obj_line.endswith(b"\n"):
                raise _unavailable(where, FAILED, f"truncated: {key} ends after {n} of {count} objects")
        ranges[key] = (start, fh.tell(), count)
    return _Index(fh, header, ranges)


def read_snapshot(path: Path) -> dict[str, Any]:
    """The whole snapshot as one document (the version-1 shape, items inline), for tools and tests.

    Raises DataUnavailable if it is truncated or not a k4c snapshot."""
    backend = SnapshotBackend(path)
    loaded = backend._load()
    if isinstance(loaded, dict):
        return loaded
    doc = dict(loaded.header)
    doc["kinds"] = {key: dict(entry) for key, entry in loaded.header["kinds"].items()}
    for key, (start, end, _count) in loaded.ranges.items():
        doc["kinds"].setdefault(key, {"status": "listed"})["items"] = \
            [orjson.loads(line) for line in loaded.lines(start, end)]
    backend.close()
    return doc


class StreamedItems:
    """The objects of a large kind, parsed from the snapshot file each time they are iterated.

    Behaves as a read-only sequence for ``for``, ``len`` and truth tests; indexing parses the
    whole kind (use ``list(...)`` once instead of indexing in a loop)."""

    def __init__(self, backend: "SnapshotBackend", kind: Kind, start: int, end: int, count: int):
        self._backend, self._kind, self._start, self._end, self._count = backend, kind, start, end, count

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[dict]:
        index = self._backend._load()
        n = 0
        for line in index.lines(self._start, self._end):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _unavailable(self._kind.key, FAILED,
                                   f"malformed snapshot {self._backend.path}: object {n + 1}: {exc}") from None
            yield self._backend._complete(self._kind, obj)
            n += 1
        if n != self._count:
            raise _unavailable(self._kind.key, FAILED,
                               f"malformed snapshot {self._backend.path}: {n} of {self._count} objects read")

    def __getitem__(self, i):
        return list(self)[i]

    def __repr__(self) -> str:
        return f"<{self._count} {self._kind.key} streamed from {self._backend.path}>"


class SnapshotBackend:
    """Reads a cluster as captured in a snapshot file."""

    mode = "snapshot"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._loaded: _Index | dict[str, Any] | None = None
        self._error: DataUnavailable | None = None

    def _load(self) -> _Index | dict[str, Any]:
        if self._error is not None:
            raise self._error
        if self._loaded is None:
            where = f"snapshot {self.path}"
            try:
                try:
                    fh = _open_plain(self.path)
                except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    raise _unavailable(where, FAILED, f"cannot read: {type(exc).__name__}: {exc}") from None
                try:
                    loaded = _index(fh, where)
                except BaseException:
                    fh.close()
                    raise
                if isinstance(loaded, dict):
                    fh.close()
                self._loaded = loaded
            except DataUnavailable as exc:
                self._error = exc
                raise
        return self._loaded

    def close(self) -> None:
        if isinstance(self._loaded, _Index):
            self._loaded.fh.close()

    def _header(self) -> dict[str, Any]:
        loaded = self._load()
        return loaded.header if isinstance(loaded, _Index) else loaded

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": "snapshot", "snapshot": str(self.path)}
        try:
            doc = self._header()
        except DataUnavailable as exc:
            d["error"] = exc.reason
            return d
        target = doc.get("target") or {}
        d.update({f"collected_{k}": v for k, v in target.items() if k in ("context", "server")})
        d["collected_at"] = doc.get("finished_at") or doc.get("started_at")
        return d

    def server_version(self) -> str | None:
        try:
            return self._header().get("server_version")
        except DataUnavailable:
            return None

    def collected_at(self, kind: Kind) -> str | None:
        try:
            return (self._header()["kinds"].get(kind.key) or {}).get("collected_at")
        except DataUnavailable:
            return None

    def _complete(self, kind: Kind, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: an item of {kind.key} is not an object")
        obj.setdefault("apiVersion", kind.api_version)
        if kind.kind:
            obj.setdefault("kind", kind.kind)
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        # A hand-made or older snapshot may hold values k4c would have redacted.
        redact(obj, obj.get("kind"))
        return obj

    def kubelet_configz(self, source=None) -> list[dict]:
        """The Nodes' kubelet configurations recorded as the pseudo-kind ``nodes/configz`` (see
        :meth:`ClusterSource.kubelet_configz`). A snapshot without them (written before
        ``k4c collect`` recorded them, or a bundle of a run whose controls did not read them)
        raises DataUnavailable (not collected), as for any kind it lacks."""
        from k4c_pytest.sources import kubelet_configz as configz

        try:
            items = self.fetch(configz.CONFIGZ_KIND)
        except DataUnavailable as exc:
            if getattr(exc, "status", None) == NOT_COLLECTED:
                raise _unavailable(configz.CONFIGZ_KEY, NOT_COLLECTED,
                                   f"not in snapshot {self.path}: the kubelets' configuration was never collected "
                                   f"(a snapshot written before k4c collect recorded it, or a bundle of a run "
                                   f"that did not read it); collect again") from None
            raise
        records = []
        for n, obj in enumerate(items, 1):
            name = (obj.get("metadata") or {}).get("name")
            try:
                if not isinstance(name, str) or not name:
                    raise configz.MalformedConfigz("no metadata.name")
                config = configz.kubeletconfig(obj)
            except configz.MalformedConfigz as exc:
                raise _unavailable(configz.CONFIGZ_KEY, FAILED,
                                   f"malformed snapshot {self.path}: record {n} of {configz.CONFIGZ_KEY}: {exc}") from None
            records.append({"metadata": {"name": name}, "kubeletconfig": config})
        return records

    def fetch(self, kind: Kind) -> list[dict] | StreamedItems:
        try:
            loaded = self._load()
        except DataUnavailable as exc:
            # Named per kind, so the control's ERROR says which kind it could not know.
            raise _unavailable(kind.key, FAILED, f"{exc.source}: {exc.reason}") from None
        header = loaded.header if isinstance(loaded, _Index) else loaded
        entry = header["kinds"].get(kind.key)
        if entry is None:
            raise _unavailable(kind.key, NOT_COLLECTED, f"not in snapshot {self.path}: it was never collected")
        if not isinstance(entry, dict):
            raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: the entry of {kind.key} is not an object")
        status = entry.get("status")
        if status == NOT_SERVED:
            raise KindNotServed(kind.key, entry.get("reason") or "the server did not serve it at collection time")
        if status != "listed":
            reason = entry.get("reason") or "no reason recorded"
            raise _unavailable(kind.key, status if status in (FORBIDDEN, FAILED) else FAILED,
                               f"not read at collection time ({status}): {reason}")
        if isinstance(loaded, _Index):
            rng = loaded.ranges.get(kind.key)
            if rng is None or rng[2] != entry.get("count"):
                raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: the objects of "
                                                     f"{kind.key} are not in the file as its header says")
            start, end, count = rng
            if end - start > STREAM_BYTES:
                return StreamedItems(self, kind, start, end, count)
            items = StreamedItems(self, kind, start, end, count)
            # Many objects kept at once: the collector would scan them again and again for
            # nothing (they hold no cycles), so it waits until they are all parsed.
            enabled = gc.isenabled()
            gc.disable()
            try:
                return list(items)
            finally:
                if enabled:
                    gc.enable()
                    gc.freeze()
        items = entry.get("items")
        if not isinstance(items, list):
            raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: items of {kind.key} are not a list")
        return [self._complete(kind, obj) for obj in items]
