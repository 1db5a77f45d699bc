"""A source tree given with ``--k4c-source``: which files it holds, and how findings name them.

Every scanner of the code layer walks the tree through :meth:`SourceTree.files`, so they all
skip the same folders (version control, virtualenvs, installed dependencies) and name files the
same way: the path given on the command line joined with the file's path inside the tree, so a
finding of ``--k4c-source=.`` reads ``app/db.py``, the form CI annotations and SARIF expect.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath
from typing import Iterator

from k4c_pytest.outcomes import DataUnavailable

#: Folders no scanner enters: other tools' state and third-party code installed into the tree,
#: which is the dependency controls' business (through lock files), not the secrets' or SAST's.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    "__pycache__", "node_modules", ".terraform", "site-packages", ".eggs",
})


class SourceTree:
    """One ``--k4c-source`` folder (or single file)."""

    def __init__(self, given: str):
        self.given = given
        self.path = Path(given).resolve()
        self._files: list[Path] | None = None

    def display(self, path: Path | str) -> str:
        """How findings name ``path``: the tree as given, joined with the path inside it (POSIX)."""
        path = Path(path)
        if not path.is_absolute():
            path = self.path / path
        if self.path.is_file():
            rel = PurePosixPath(Path(self.given).as_posix())
            return str(rel)
        rel = path.resolve().relative_to(self.path) if path.resolve().is_relative_to(self.path) else path
        joined = os.path.normpath(os.path.join(self.given, rel))
        return Path(joined).as_posix()

    def relative(self, path: Path | str) -> str:
        """``path`` inside the tree (POSIX), as baselines and CI configurations name files."""
        path = Path(path)
        if self.path.is_file():
            return self.path.name
        return path.resolve().relative_to(self.path).as_posix()

    def files(self) -> list[Path]:
        """Every regular file of the tree, sorted, skipping :data:`SKIP_DIRS` and symbolic links.

        A folder that cannot be listed is a :class:`DataUnavailable`: the scanners would
        otherwise pass over files they never saw."""
        if self._files is None:
            if self.path.is_file():
                self._files = [self.path]
                return self._files
            found: list[Path] = []

            def fail(err: OSError) -> None:
                raise DataUnavailable(self.display(err.filename or self.path), f"cannot list folder: {err.strerror}")

            for root, dirs, names in os.walk(self.path, onerror=fail):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not os.path.islink(os.path.join(root, d)))
                for name in names:
                    p = Path(root, name)
                    if not p.is_symlink() and p.is_file():
                        found.append(p)
            self._files = sorted(found)
        return self._files

    def glob(self, *patterns: str) -> Iterator[Path]:
        """The tree's files whose name matches one of the shell ``patterns`` (case-insensitive)."""
        for p in self.files():
            name = p.name.lower()
            if any(fnmatch.fnmatchcase(name, pat.lower()) for pat in patterns):
                yield p

    def read_text(self, path: Path) -> str:
        """A file's text (UTF-8); unreadable or undecodable is a DataUnavailable naming the file."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataUnavailable(self.display(path), f"cannot read: {exc.strerror or exc}") from None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataUnavailable(self.display(path), f"not UTF-8 text (byte {exc.start})") from None

    def __repr__(self) -> str:
        return f"SourceTree({self.given!r})"
