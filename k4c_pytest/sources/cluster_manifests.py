"""Manifests backend of the cluster source: a folder of YAML (or JSON) files, shift-left.

Every ``*.yaml``, ``*.yml`` and ``*.json`` file below the folder is read with libyaml
(multi-document; ``kind: List`` and ``*List`` documents are flattened). Documents that are not
Kubernetes objects (no ``apiVersion``/``kind``, such as a Helm values file) are skipped and
counted. A file that does not parse makes every kind an ERROR, naming the file and line: a
control cannot know which objects that file would have held.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED
from k4c_pytest.sources.kinds import Kind

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestsBackend:
    """Reads Kubernetes objects from manifest files."""

    mode = "manifests"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._by_kind: dict[tuple[str, str], list[dict]] | None = None
        self._error: DataUnavailable | None = None
        self.files = 0
        self.skipped_documents = 0
        self.requests = 0

    def describe(self) -> dict[str, Any]:
        return {"mode": "manifests", "manifests": str(self.folder)}

    def server_version(self) -> str | None:
        return None

    def _add(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
            self.skipped_documents += 1
            return
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                self._add(item, where)
            return
        redact(doc, doc["kind"])
        doc.setdefault("metadata", {})
        assert self._by_kind is not None
        self._by_kind[(doc["apiVersion"], doc["kind"])].append(doc)

    def _load(self) -> dict[tuple[str, str], list[dict]]:
        if self._error is not None:
            raise self._error
        if self._by_kind is not None:
            return self._by_kind
        self._by_kind = defaultdict(list)
        files = sorted(p for p in self.folder.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        for path in files:
            rel = path.relative_to(self.folder)
            try:
                with path.open("rb") as fh:
                    for doc in yaml.load_all(fh, Loader=_Loader):
                        self._add(doc, str(rel))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = f"line {mark.line + 1}: " if mark is not None else ""
                problem = getattr(exc, "problem", None) or str(exc)
                self._error = DataUnavailable(f"manifests {self.folder}", f"{rel}: {line}{problem}")
                self._error.status = FAILED  # type: ignore[attr-defined]
                self._by_kind = None
                raise self._error from None
            except (OSError, UnicodeDecodeError) as exc:
                self._error = DataUnavailable(f"manifests {self.folder}", f"{rel}: cannot read: {exc}")
                self._error.status = FAILED  # type: ignore[attr-defined]
                self._by_kind = None
                raise self._error from None
            self.files += 1
        return self._by_kind

    def fetch(self, kind: Kind) -> list[dict]:
        # A kind absent from the folder is simply not part of what will be deployed.
        return list(self._load().get((kind.api_version, kind.kind), ()))
