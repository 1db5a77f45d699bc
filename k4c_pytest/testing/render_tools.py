"""Where the tests find ``kustomize`` (and ``helm``) to render manifests with.

``scripts/build-kustomize.sh`` (``make test-deps``) builds kustomize from its Go module into
``$K4C_CACHE/kustomize/<version>/``; :func:`kustomize_dir` is that folder, to put first on
``PATH``. A test that needs it FAILS (never skips) when it is missing. The cache is looked up
at import: pytester points ``HOME`` elsewhere while a run is in progress.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the version scripts/build-kustomize.sh builds by default (keep the two in step)
KUSTOMIZE_VERSION = os.environ.get("K4C_KUSTOMIZE_VERSION") or "v5.8.2"
_CACHE = Path(os.environ.get("K4C_CACHE") or Path.home() / ".cache" / "k4c")


def kustomize_dir() -> Path:
    """The folder holding the kustomize scripts/build-kustomize.sh built; pytest.fail without it."""
    import pytest

    __tracebackhide__ = True
    folder = _CACHE / "kustomize" / KUSTOMIZE_VERSION
    if not os.access(folder / "kustomize", os.X_OK):
        pytest.fail(f"kustomize {KUSTOMIZE_VERSION} is not built in {folder}: run make test-deps "
                    f"(scripts/build-kustomize.sh needs Go)", pytrace=False)
    return folder


def path_with(*folders: Path, keep: bool = True) -> str:
    """A ``PATH`` with ``folders`` first (and, with ``keep``, the current one after them)."""
    parts = [str(f) for f in folders]
    if keep and os.environ.get("PATH"):
        parts.append(os.environ["PATH"])
    return os.pathsep.join(parts)
