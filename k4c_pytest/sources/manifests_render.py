"""Helm charts and Kustomizations in a manifests folder, rendered with ``helm`` / ``kustomize``.

A folder holding a ``Chart.yaml`` is a Helm chart; one holding a ``kustomization.yaml``
(``kustomization.yml``, ``Kustomization``) a Kustomization. Neither is a set of manifests: a
chart's templates are not YAML until rendered, and a Kustomization's resources are what its
patches and generators start from. So the files below a chart, and the files a Kustomization
builds from (its resources, bases, components, patches, generator sources), are not read as
plain manifests; instead, when the tool is on ``PATH``, the chart or Kustomization is rendered
and its output read. (A YAML file in a Kustomization's folder that it does not list, such as a
one-off Job applied with ``kubectl create -f``, is still a plain manifest.)

- ``helm template NAME DIR`` for each outermost chart (its subcharts in ``charts/`` are the
  chart's to render), NAME being the chart's ``name``, with the chart's own default values;
- ``kustomize build DIR`` for each Kustomization no other Kustomization of the folder uses as a
  resource, base or component (an overlay is rendered, the base it patches is not rendered a
  second time on its own).

When the tool is not on ``PATH``, or rendering fails, the objects the chart or Kustomization
would give are unknown: every kind of the manifests target is then a DataUnavailable naming
the folder and the reason (the controls ERROR), never a PASS over the plain YAML alone.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_FILES = ("Chart.yaml",)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: seconds one ``helm template`` or ``kustomize build`` may take
TIMEOUT = 300


class RenderError(Exception):
    """A chart or Kustomization that could not be rendered; the message names it and says why."""


@dataclass(frozen=True)
class RenderRoot:
    """One folder to render: ``tool`` is ``helm`` or ``kustomize``; ``rel`` its path in the manifests folder."""

    tool: str
    path: Path
    rel: str
    name: str = ""

    def args(self) -> list[str]:
        if self.tool == "helm":
            return ["template", self.name, str(self.path)]
        return ["build", str(self.path)]

    def command(self) -> str:
        """The command as a reader would type it (relative path)."""
        if self.tool == "helm":
            return f"helm template {self.name} {self.rel}"
        return f"kustomize build {self.rel}"

    @property
    def what(self) -> str:
        return "a Helm chart (Chart.yaml)" if self.tool == "helm" else "a Kustomization (kustomization.yaml)"


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _yaml_file(path: Path, rel: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{rel}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise RenderError(f"{rel}: {line}{getattr(exc, 'problem', None) or exc}") from None


# Fields of a kustomization naming local files or folders it builds from.
_LISTS = ("resources", "bases", "components", "crds", "patchesStrategicMerge", "generators", "transformers",
          "validators", "configurations")
_PATHS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator", "helmChartInflationGenerator")


def _kustomization_file(folder: Path) -> Path | None:
    return next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)


class _Kustomizations:
    """What each Kustomization of a folder builds from: the files it reads (resources, patches,
    generator sources...) and the Kustomizations it uses (bases, components), recursively."""

    def __init__(self, root: Path):
        self.root = root
        self._reach: dict[Path, tuple[set[Path], set[Path]]] = {}

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def reach(self, folder: Path, seen: frozenset[Path] = frozenset()) -> tuple[set[Path], set[Path]]:
        """(files read, Kustomization folders used) of the Kustomization in ``folder`` (resolved)."""
        if folder in self._reach:
            return self._reach[folder]
        files: set[Path] = set()
        used: set[Path] = set()
        kfile = _kustomization_file(folder)
        if kfile is None or folder in seen:
            return files, used
        files.add(kfile)
        doc = _yaml_file(kfile, self._rel(kfile))
        doc = doc if isinstance(doc, dict) else {}
        entries: list[str] = []
        for key in _LISTS:
            entries += [e for e in doc.get(key) or () if isinstance(e, str) and "\n" not in e]
        for key in _PATHS:
            entries += [e["path"] for e in doc.get(key) or () if isinstance(e, dict) and isinstance(e.get("path"), str)]
        if isinstance(doc.get("openapi"), dict) and isinstance(doc["openapi"].get("path"), str):
            entries.append(doc["openapi"]["path"])
        for key in _GENERATORS:
            for gen in doc.get(key) or ():
                if isinstance(gen, dict):
                    sources = list(gen.get("files") or ()) + list(gen.get("envs") or ()) + \
                        ([gen["env"]] if isinstance(gen.get("env"), str) else [])
                    entries += [str(f).split("=", 1)[-1] for f in sources]
        for entry in entries:
            if "://" in entry or entry.startswith(("git@", "github.com/", "gitlab.com/")):
                continue  # a remote resource: kustomize fetches it, no file of this folder
            path = (folder / entry).resolve()
            if path.is_dir():
                sub_files, sub_used = self.reach(path, seen | {folder})
                if _kustomization_file(path) is not None:
                    used |= {path} | sub_used
                files |= sub_files
            elif path.is_file():
                files.add(path)
        self._reach[folder] = (files, used)
        return files, used


def find(folder: Path, files: list[Path]) -> tuple[list[RenderRoot], list[Path], set[Path]]:
    """The charts and Kustomizations among ``files`` (every file below ``folder``).

    Returns the roots to render; the chart folders, whose files are templates, not manifests;
    and the files (resolved) the rendered Kustomizations build from, which reach the controls
    through the rendered output only (a file of a Kustomization's folder that it does not list
    stays a plain manifest). RenderError when a ``Chart.yaml`` or kustomization file cannot be
    read."""
    chart_dirs = sorted({p.parent for p in files if p.name in CHART_FILES})
    charts = [d for d in chart_dirs if not _inside(d.parent, chart_dirs)]  # subcharts are their parent's
    kust_dirs = sorted({p.parent for p in files if p.name in KUSTOMIZATION_FILES and not _inside(p.parent, charts)})
    graph = _Kustomizations(folder)
    reach = {d: graph.reach(d.resolve()) for d in kust_dirs}
    used = set().union(*(u for _, u in reach.values())) if reach else set()
    roots = []
    for d in charts:
        rel = str(d.relative_to(folder)) if d != folder else "."
        meta = _yaml_file(d / "Chart.yaml", f"{rel}/Chart.yaml")
        name = str(meta.get("name") or d.name) if isinstance(meta, dict) else d.resolve().name
        roots.append(RenderRoot("helm", d, rel, name))
    built_from: set[Path] = set()
    for d in kust_dirs:
        if d.resolve() not in used:  # not a base or component of another: rendered on its own
            roots.append(RenderRoot("kustomize", d, str(d.relative_to(folder)) if d != folder else "."))
            built_from |= reach[d][0]
    return roots, charts, built_from


def render(root: RenderRoot) -> str:
    """The YAML ``helm template`` / ``kustomize build`` writes for ``root``; RenderError when the
    tool is not on PATH, fails or takes longer than :data:`TIMEOUT`."""
    exe = shutil.which(root.tool)
    if exe is None:
        raise RenderError(f"{root.rel}: {root.what} was not rendered: {root.tool} is not on PATH; install it, or "
                          f"render it first ({root.command()} > rendered.yaml) and check the output")
    try:
        done = subprocess.run([exe, *root.args()], capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{root.rel}: {root.command()} did not finish within {TIMEOUT} s") from None
    except OSError as exc:
        raise RenderError(f"{root.rel}: {root.command()} could not run: {exc}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        why = lines[-1][:300] if lines else "no message"
        raise RenderError(f"{root.rel}: {root.command()} failed (exit {done.returncode}): {why}")
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{root.rel}: the output of {root.command()} is not UTF-8 (byte {exc.start})") from None
