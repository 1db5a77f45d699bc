"""Dependencies declared in a source tree's requirement and lock files.

Parsed: ``requirements*.txt`` (pip's format: comments, ``\\`` continuations, options, markers,
``--hash``), ``poetry.lock``, ``Pipfile.lock``, ``package-lock.json`` (lockfile versions 1 to 3)
and ``go.sum``. Each dependency is a dict: ``file``, ``line``, ``ecosystem`` (OSV's names:
``PyPI``, ``npm``, ``Go``), ``name``, ``version`` (exact, or ``None`` when not pinned), ``spec``
(as written) and ``pinned``. A file that cannot be parsed is a DataUnavailable naming it and
the line: its dependencies would otherwise go unchecked.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_tree import SourceTree

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Dep = dict[str, Any]


def _dep(tree: SourceTree, path: Path, line: int, eco: str, name: str, version: str | None, spec: str) -> Dep:
    return {"file": tree.display(path), "line": line, "ecosystem": eco, "name": name, "version": version,
            "spec": spec, "pinned": version is not None}


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first ``needle`` in ``text`` (JSON and TOML parsers give no lines)."""
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


# -- pip requirements ---------------------------------------------------------------------------

_PIP_OPTION = re.compile(r"^-{1,2}[a-zA-Z]")
_HASH = re.compile(r"\s--hash[=\s]\S+")


def _logical_lines(text: str):
    """(first line number, logical line) with ``\\`` continuations joined and comments removed."""
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw)  # pip: a comment starts with '#' at the start or after a space
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            yield start, buf.strip()
        buf = ""
    if buf.strip():
        yield start, buf.strip()


def parse_requirements(tree: SourceTree, path: Path) -> list[Dep]:
    deps = []
    for n, line in _logical_lines(tree.read_text(path)):
        line = _HASH.sub("", line).strip()
        if line.startswith(("-e ", "--editable")):
            target = line.split(None, 1)[1] if " " in line else line
            deps.append(_dep(tree, path, n, "PyPI", target, None, line))
            continue
        if _PIP_OPTION.match(line):
            continue  # -r/-c includes are files of their own; --index-url etc. declare no dependency
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise DataUnavailable(f"{tree.display(path)}:{n}", f"not a valid requirement: {exc}") from None
        pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        version = pins[0].version if len(pins) == 1 and len(req.specifier) == 1 and not req.url else None
        deps.append(_dep(tree, path, n, "PyPI", canonicalize_name(req.name), version, line))
    return deps


# -- lock files ---------------------------------------------------------------------------------

def _json(tree: SourceTree, path: Path) -> tuple[str, Any]:
    text = tree.read_text(path)
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataUnavailable(f"{tree.display(path)}:{exc.lineno}", f"invalid JSON: {exc.msg}") from None


def parse_poetry_lock(tree: SourceTree, path: Path) -> list[Dep]:
    text = tree.read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataUnavailable(tree.display(path), f"invalid TOML: {exc}") from None
    deps = []
    for pkg in data.get("package") or ():
        if not isinstance(pkg, dict) or "name" not in pkg or "version" not in pkg:
            raise DataUnavailable(tree.display(path), "a [[package]] without name or version")
        line = _line_of(text, f'name = "{pkg["name"]}"')
        deps.append(_dep(tree, path, line, "PyPI", canonicalize_name(pkg["name"]), str(pkg["version"]),
                         f"{pkg['name']}=={pkg['version']}"))
    return deps


def parse_pipfile_lock(tree: SourceTree, path: Path) -> list[Dep]:
    text, data = _json(tree, path)
    if not isinstance(data, dict):
        raise DataUnavailable(tree.display(path), "not a Pipfile.lock: no sections")
    deps = []
    for section in ("default", "develop"):
        for name, info in (data.get(section) or {}).items():
            spec = (info or {}).get("version", "") if isinstance(info, dict) else ""
            version = spec[2:] if spec.startswith("==") else None
            deps.append(_dep(tree, path, _line_of(text, f'"{name}": {{'), "PyPI", canonicalize_name(name),
                             version, f"{name}{spec}" if spec else name))
    return deps


def parse_package_lock(tree: SourceTree, path: Path) -> list[Dep]:
    text, data = _json(tree, path)
    if not isinstance(data, dict) or "lockfileVersion" not in data:
        raise DataUnavailable(tree.display(path), "not an npm package-lock.json: no lockfileVersion")
    deps: list[Dep] = []
    packages = data.get("packages")
    if isinstance(packages, dict):  # lockfile v2 and v3
        for key, info in packages.items():
            if not key or not isinstance(info, dict) or info.get("link"):
                continue  # "" is the project itself; links point at folders of the workspace
            name = info.get("name") or key.rsplit("node_modules/", 1)[-1]
            version = info.get("version")
            deps.append(_dep(tree, path, _line_of(text, f'"{key}": {{'), "npm", name, version,
                             f"{name}@{version}" if version else name))
        return deps

    def walk(tree_deps: dict[str, Any]) -> None:  # lockfile v1: nested "dependencies"
        for name, info in (tree_deps or {}).items():
            if not isinstance(info, dict):
                continue
            version = info.get("version")
            if version and not version.startswith(("file:", "link:")):
                deps.append(_dep(tree, path, _line_of(text, f'"{name}": {{'), "npm", name, version,
                                 f"{name}@{version}"))
            walk(info.get("dependencies") or {})

    walk(data.get("dependencies") or {})
    return deps


def parse_go_sum(tree: SourceTree, path: Path) -> list[Dep]:
    deps, seen = [], set()
    for n, line in enumerate(tree.read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("h1:"):
            raise DataUnavailable(f"{tree.display(path)}:{n}", "not a go.sum line (module version h1:hash)")
        module, version = parts[0], parts[1].removesuffix("/go.mod")
        if (module, version) in seen:
            continue
        seen.add((module, version))
        deps.append(_dep(tree, path, n, "Go", module, version, f"{module}@{version}"))
    return deps


#: File name pattern -> parser. Names are matched case-insensitively.
PARSERS: dict[str, Callable[[SourceTree, Path], list[Dep]]] = {
    "requirements*.txt": parse_requirements,
    "poetry.lock": parse_poetry_lock,
    "pipfile.lock": parse_pipfile_lock,
    "package-lock.json": parse_package_lock,
    "go.sum": parse_go_sum,
}


def collect(tree: SourceTree) -> dict[str, Any]:
    """Every dependency of every requirement and lock file of ``tree``: ``{"files": [...], "dependencies": [...]}``."""
    files, deps = [], []
    for pattern, parse in PARSERS.items():
        for path in tree.glob(pattern):
            files.append(tree.display(path))
            deps.extend(parse(tree, path))
    return {"files": sorted(files), "dependencies": deps}
