"""Snapshot backend of the cluster source: a file written by ``k4c collect``.

Format (version 1), JSON, optionally gzip-compressed::

    {"format": "k4c-snapshot", "version": 1, "k4c_version": "...",
     "started_at": "...", "finished_at": "...", "target": {...}, "server_version": "v1.37.2",
     "kinds": {"v1/pods": {"status": "listed", "collected_at": "...", "items": [...]},
               "v1/secrets": {"status": "forbidden", "reason": "..."}, ...}}

A kind that was forbidden or failed at collection time stays an ERROR; a kind that was not
served stays N/A; a kind the snapshot does not hold at all is an ERROR too (it was never read).
A truncated or malformed file makes every kind an ERROR, never a silent PASS.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson

from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN, NOT_COLLECTED, NOT_SERVED
from k4c_pytest.sources.kinds import Kind

FORMAT = "k4c-snapshot"
VERSION = 1


def _unavailable(source: str, status: str, reason: str) -> DataUnavailable:
    exc = DataUnavailable(source, reason)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def read_snapshot(path: Path) -> dict[str, Any]:
    """Parse a snapshot file; raises DataUnavailable if it is truncated or not a k4c snapshot."""
    where = f"snapshot {path}"
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = orjson.loads(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _unavailable(where, FAILED, f"cannot read: {type(exc).__name__}: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise _unavailable(where, FAILED, f"truncated or malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _unavailable(where, FAILED, "not a k4c snapshot (no \"format\": \"k4c-snapshot\")")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:  # noqa: E721 - true == 1 in Python, not here
        raise _unavailable(where, FAILED, f"snapshot format version {version!r} is not supported (expected {VERSION})")
    if not isinstance(doc.get("kinds"), dict):
        raise _unavailable(where, FAILED, "malformed snapshot: \"kinds\" is missing")
    return doc


class SnapshotBackend:
    """Reads a cluster as captured in a snapshot file."""

    mode = "snapshot"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._doc: dict[str, Any] | None = None
        self._error: DataUnavailable | None = None

    def _load(self) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        if self._doc is None:
            try:
                self._doc = read_snapshot(self.path)
            except DataUnavailable as exc:
                self._error = exc
                raise
        return self._doc

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": "snapshot", "snapshot": str(self.path)}
        try:
            doc = self._load()
        except DataUnavailable as exc:
            d["error"] = exc.reason
            return d
        target = doc.get("target") or {}
        d.update({f"collected_{k}": v for k, v in target.items() if k in ("context", "server")})
        d["collected_at"] = doc.get("finished_at") or doc.get("started_at")
        return d

    def server_version(self) -> str | None:
        try:
            return self._load().get("server_version")
        except DataUnavailable:
            return None

    def collected_at(self, kind: Kind) -> str | None:
        try:
            return (self._load()["kinds"].get(kind.key) or {}).get("collected_at")
        except DataUnavailable:
            return None

    def fetch(self, kind: Kind) -> list[dict]:
        try:
            doc = self._load()
        except DataUnavailable as exc:
            # Named per kind, so the control's ERROR says which kind it could not know.
            raise _unavailable(kind.key, FAILED, f"{exc.source}: {exc.reason}") from None
        entry = doc["kinds"].get(kind.key)
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
        items = entry.get("items")
        if not isinstance(items, list):
            raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: items of {kind.key} are not a list")
        for obj in items:
            if not isinstance(obj, dict):
                raise _unavailable(kind.key, FAILED, f"malformed snapshot {self.path}: an item of {kind.key} is not an object")
            obj.setdefault("apiVersion", kind.api_version)
            if kind.kind:
                obj.setdefault("kind", kind.kind)
            if not isinstance(obj.get("metadata"), dict):
                obj["metadata"] = {}
            # A hand-made or older snapshot may hold values k4c would have redacted.
            redact(obj, obj.get("kind"))
        return items
