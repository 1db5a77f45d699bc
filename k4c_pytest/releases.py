"""Kubernetes release data and the version currency checks built on it.

The table (``catalog/kubernetes_releases.yaml``, or a team's own copy given with
``--k4c-kubernetes-releases``) lists each minor release with its release date, end-of-life date
and newest known patch. The functions here are pure: they take the server's version string,
the table and today's date, so every path (supported, end of life, newer than the table, stale
table) is tested with given dates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

BUNDLED_TABLE = "kubernetes_releases.yaml"
# Distributions append their own build to the upstream version: v1.30.4-eks-a737599,
# v1.29.3+k3s1, v1.28.9-gke.1000000. The upstream major.minor.patch is what is judged.
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
_MINOR = re.compile(r"^(\d+)\.(\d+)$")


class ReleaseTableError(ValueError):
    """The release table is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    raw: str

    @property
    def minor_key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def minor_name(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Release:
    minor: tuple[int, int]
    released: dt.date
    end_of_life: dt.date
    latest_patch: int

    @property
    def name(self) -> str:
        return f"{self.minor[0]}.{self.minor[1]}"


@dataclass(frozen=True)
class ReleaseTable:
    updated: dt.date
    max_age_days: int
    releases: tuple[Release, ...]
    source: str

    def find(self, minor: tuple[int, int]) -> Release | None:
        return next((r for r in self.releases if r.minor == minor), None)

    @property
    def newest(self) -> Release:
        return max(self.releases, key=lambda r: r.minor)

    @property
    def oldest(self) -> Release:
        return min(self.releases, key=lambda r: r.minor)


def parse_version(text: str | None) -> Version | None:
    """The upstream ``major.minor.patch`` of a server's ``gitVersion``, or None if it has none."""
    match = _VERSION.match((text or "").strip())
    if not match:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return Version(major, minor, patch, text.strip())


def _date(entry: dict, field: str, where: str) -> dt.date:
    value = entry.get(field)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ReleaseTableError(f"{where}: {field} must be a date YYYY-MM-DD, got {value!r}")


def parse_table(doc: object, source: str) -> ReleaseTable:
    """Check and convert a loaded release table; raises ReleaseTableError naming what is wrong."""
    if not isinstance(doc, dict) or not isinstance(doc.get("releases"), list) or not doc["releases"]:
        raise ReleaseTableError(f"{source}: expected a mapping with a non-empty 'releases' list")
    updated = _date(doc, "updated", source)
    max_age = doc.get("max_age_days", 60)
    if type(max_age) is not int or max_age < 1:  # noqa: E721 - a bool is no number of days
        raise ReleaseTableError(f"{source}: max_age_days must be a positive whole number, got {max_age!r}")
    releases: list[Release] = []
    for i, entry in enumerate(doc["releases"]):
        where = f"{source}: releases[{i}]"
        if not isinstance(entry, dict):
            raise ReleaseTableError(f"{where}: expected a mapping")
        # A YAML 1.30 unquoted is the float 1.3: insist on a string so 1.30 and 1.3 never mix.
        match = _MINOR.match(entry["minor"]) if isinstance(entry.get("minor"), str) else None
        if not match:
            raise ReleaseTableError(f"{where}: minor must be a quoted string like \"1.37\", got {entry.get('minor')!r}")
        patch = entry.get("latest_patch")
        if type(patch) is not int or patch < 0:  # noqa: E721
            raise ReleaseTableError(f"{where}: latest_patch must be a whole number, got {patch!r}")
        release = Release((int(match[1]), int(match[2])), _date(entry, "released", where),
                          _date(entry, "end_of_life", where), patch)
        if release.end_of_life <= release.released:
            raise ReleaseTableError(f"{where}: end_of_life {release.end_of_life} is not after released {release.released}")
        if any(r.minor == release.minor for r in releases):
            raise ReleaseTableError(f"{where}: minor {release.name} is listed twice")
        releases.append(release)
    return ReleaseTable(updated, max_age, tuple(releases), source)


def load_table(path: str | Path | None = None) -> ReleaseTable:
    """The release table at ``path``, or the bundled one. Raises ReleaseTableError (also for a
    file that cannot be read or parsed), naming the file."""
    if path is None:
        source = f"k4c_pytest/catalog/{BUNDLED_TABLE}"
        text = resources.files("k4c_pytest.catalog").joinpath(BUNDLED_TABLE).read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReleaseTableError(f"{source}: cannot read: {exc}") from None
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ReleaseTableError(f"{source}: {line}{getattr(exc, 'problem', None) or exc}") from None
    return parse_table(doc, source)


# -- the checks ----------------------------------------------------------------------------------

SUPPORTED, END_OF_LIFE, UNKNOWN = "supported", "end of life", "unknown"


@dataclass(frozen=True)
class Support:
    """Whether a minor is supported on ``today``: ``status`` is SUPPORTED, END_OF_LIFE or UNKNOWN
    (newer than the table, and past the table's newest end of life: the table is too old to say)."""

    status: str
    release: Release | None
    reason: str


def support(version: Version, table: ReleaseTable, today: dt.date) -> Support:
    release = table.find(version.minor_key)
    if release is not None:
        if today <= release.end_of_life:
            return Support(SUPPORTED, release, f"{release.name} is supported until {release.end_of_life}")
        return Support(END_OF_LIFE, release, f"{release.name} reached its end of life on {release.end_of_life}")
    oldest, newest = table.oldest, table.newest
    if version.minor_key < oldest.minor:
        # Minors end their life in order: one older than the table's oldest ended before it.
        return Support(END_OF_LIFE, None, f"{version.minor_name} is older than {oldest.name}, "
                                          f"which reached its end of life on {oldest.end_of_life}")
    if version.minor_key > newest.minor and today <= newest.end_of_life:
        # A newer minor is supported at least as long as the newest one the table knows.
        return Support(SUPPORTED, None, f"{version.minor_name} is newer than {newest.name}, "
                                        f"which is supported until {newest.end_of_life}")
    return Support(UNKNOWN, None, f"{version.minor_name} is not in the release table {table.source} "
                                  f"(updated {table.updated}): update the table")


@dataclass(frozen=True)
class PatchLag:
    """How many patch releases of its minor a server is behind: ``lag`` is None when the table
    cannot tell (minor not in the table); ``stale`` says the table is too old to trust."""

    lag: int | None
    release: Release | None
    stale: bool
    reason: str


def patch_lag(version: Version, table: ReleaseTable, today: dt.date) -> PatchLag:
    age = (today - table.updated).days
    stale = age > table.max_age_days
    release = table.find(version.minor_key)
    if release is None:
        return PatchLag(None, None, stale, f"{version.minor_name} is not in the release table {table.source}")
    # A patch newer than the table's is current (the table is behind, not the server).
    lag = max(0, release.latest_patch - version.patch)
    reason = (f"{version.major}.{version.minor}.{version.patch} is {lag} patch releases behind "
              f"{release.name}.{release.latest_patch} (newest known on {table.updated})")
    if stale:
        reason += f"; the table is {age} days old (more than {table.max_age_days}): newer patches are unknown"
    return PatchLag(lag, release, stale, reason)
