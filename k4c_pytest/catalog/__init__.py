"""Benchmarks k4c knows by id, and their requirement-level catalogs.

``BENCHMARKS`` maps a benchmark id to its title; it is what option help and validation use and
costs nothing to import. The catalogs themselves (one YAML file per benchmark, ``<id>.yaml``
next to this module, format in docs/catalogs.md) are parsed on first use by :func:`catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

BENCHMARKS = {
    "cis-k8s-1.10": "CIS Kubernetes Benchmark v1.10.0",
    "nsa-cisa-1.2": "NSA/CISA Kubernetes Hardening Guidance v1.2",
    "pss": "Kubernetes Pod Security Standards",
    "cis-aws-3.0": "CIS Amazon Web Services Foundations Benchmark v3.0.0",
    "cis-eks-1.5": "CIS Amazon Elastic Kubernetes Service Benchmark v1.5.0",
    "cis-docker-1.7": "CIS Docker Benchmark v1.7.0",
    "owasp-asvs-4.0.3": "OWASP Application Security Verification Standard 4.0.3",
    "nist-ssdf-1.1": "NIST SP 800-218 Secure Software Development Framework v1.1",
}

_REQUIREMENT_KEYS = {"id", "title", "section", "level", "automated"}


class CatalogError(ValueError):
    """A catalog file that does not follow the format (a bug in k4c's data, caught by its tests)."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a benchmark: its id, a short title, its section, level and whether a
    machine can decide it (``automated``) or a person has to (manual)."""

    id: str
    title: str
    section: str
    section_title: str
    level: str | None
    automated: bool


@dataclass(frozen=True)
class Catalog:
    """Every requirement of one benchmark, in the benchmark's order."""

    id: str
    title: str
    partial: bool
    sections: dict[str, str]
    requirements: dict[str, Requirement] = field(default_factory=dict)

    def get(self, requirement_id: str) -> Requirement | None:
        return self.requirements.get(requirement_id)

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self.requirements

    def __len__(self) -> int:
        return len(self.requirements)


def parse(text: str, where: str) -> Catalog:
    """Parse and check one catalog document; ``where`` names it in errors."""
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{where}: expected a mapping with id, title, sections and requirements")
    for key in ("id", "title"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise CatalogError(f"{where}: {key} must be a non-empty string")
    sections = doc.get("sections")
    if not isinstance(sections, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in sections.items()):
        raise CatalogError(f"{where}: sections must map a section id (a quoted string) to its title")
    entries = doc.get("requirements")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{where}: requirements must be a non-empty list")
    requirements: dict[str, Requirement] = {}
    for n, entry in enumerate(entries, 1):
        at = f"{where}: requirement {n}"
        if not isinstance(entry, dict):
            raise CatalogError(f"{at}: expected a mapping")
        unknown = set(entry) - _REQUIREMENT_KEYS
        if unknown:
            raise CatalogError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        rid = entry.get("id")
        # An unquoted 1.10 is the float 1.1 in YAML: refuse anything but a string.
        if not isinstance(rid, str) or not rid:
            raise CatalogError(f"{at}: id {rid!r} must be a quoted, non-empty string")
        if rid in requirements:
            raise CatalogError(f"{at}: duplicate requirement id {rid}")
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            raise CatalogError(f"{at} ({rid}): a title is required")
        section = entry.get("section")
        if section not in sections:
            raise CatalogError(f"{at} ({rid}): section {section!r} is not one of the catalog's sections")
        level = entry.get("level")
        if level is not None and not isinstance(level, str):
            raise CatalogError(f"{at} ({rid}): level must be a string")
        if not isinstance(entry.get("automated"), bool):
            raise CatalogError(f"{at} ({rid}): automated must be true or false")
        requirements[rid] = Requirement(rid, title.strip(), section, sections[section], level, entry["automated"])
    return Catalog(doc["id"], doc["title"], bool(doc.get("partial", False)), dict(sections), requirements)


@lru_cache(maxsize=None)
def catalog(benchmark_id: str) -> Catalog | None:
    """The catalog of a benchmark k4c carries, or None (a team's own benchmark id has none)."""
    if benchmark_id not in BENCHMARKS:
        return None
    name = f"{benchmark_id}.yaml"
    try:
        text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    parsed = parse(text, f"k4c_pytest/catalog/{name}")
    if parsed.id != benchmark_id:
        raise CatalogError(f"k4c_pytest/catalog/{name}: id {parsed.id!r} does not match the file name")
    return parsed


def catalogs() -> dict[str, Catalog]:
    """Every catalog k4c carries, by benchmark id."""
    return {b: c for b in BENCHMARKS if (c := catalog(b)) is not None}


def describe(benchmark_id: str) -> dict[str, Any]:
    """Title and catalog facts of a benchmark for reports; works for benchmarks without a catalog."""
    cat = catalog(benchmark_id)
    return {"title": BENCHMARKS.get(benchmark_id, benchmark_id), "catalog": cat is not None,
            "partial": bool(cat and cat.partial)}
