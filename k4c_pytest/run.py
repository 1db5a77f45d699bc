"""One k4c run: the validated options, the targets' sources, and the records of every control."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from k4c_pytest import __version__
from k4c_pytest.controls import Control
from k4c_pytest.evidence import Evidence
from k4c_pytest.outcomes import ALL, RANK, NotApplicable
from k4c_pytest.waivers import Waivers

RUN_KEY = pytest.StashKey["Run"]()
RESULTS_SCHEMA = "k4c-results/1"
#: The private fixture a cluster control is parametrized with when several targets are given.
TARGET_PARAM = "_k4c_cluster_target"
#: The private fixture a cloud control is parametrized with when several AWS profiles are given.
AWS_TARGET_PARAM = "_k4c_aws_target"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


class Run:
    """State of one run, kept in ``config.stash[RUN_KEY]``."""

    def __init__(self, *, cluster_backend=None, json_path: Path | None = None, benchmarks: list[str] | None = None,
                 cluster_backends: dict[str, Any] | None = None):
        # Every cluster target by name (its kubeconfig context, or where a snapshot or manifests
        # came from), in the order given; a ClusterSource is made per target on first use and
        # kept, so each target is read at most once per process (an xdist worker has its own Run).
        self._backends: dict[str, Any] = dict(cluster_backends or {})
        if cluster_backend is not None and not self._backends:
            self._backends[_target_name(cluster_backend)] = cluster_backend
        self._sources: dict[str, Any] = {}
        self.json_path = json_path
        self.records: list[dict[str, Any]] = []
        self.coverage: dict[str, dict[str, Any]] = {}
        self.benchmarks: list[str] = list(benchmarks or [])
        self.started_at = _now()
        self._t0 = time.perf_counter()
        self.finished_at: str | None = None
        self.exit_status: int | None = None
        self.waivers = Waivers([])
        #: The --k4c-aws-profile names (set by the cloud plugin): a cloud control's target.
        self.cloud_targets: list[str] = []

    @property
    def _backend(self):
        """The first cluster target's backend (the only one, unless several --k4c-cluster were given)."""
        return next(iter(self._backends.values()), None)

    @property
    def target_names(self) -> list[str]:
        return list(self._backends)

    @property
    def multi_target(self) -> bool:
        """Several clusters in this run: cluster controls run once per target, the target in their id."""
        return len(self._backends) > 1

    @property
    def matrix_targets(self) -> list[str]:
        """The columns of the control x target matrix: every cluster and AWS target, once either
        layer has several (else none: there is no matrix)."""
        if not (self.multi_target or len(self.cloud_targets) > 1):
            return []
        return list(dict.fromkeys([*self.target_names, *self.cloud_targets]))

    # -- options -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Run":
        opt = config.getoption
        clusters, kubeconfig = list(opt("k4c_cluster") or []), opt("k4c_kubeconfig")
        snapshot, manifests = opt("k4c_snapshot"), opt("k4c_manifests")
        given = [f for f, v in (("--k4c-cluster", clusters or kubeconfig), ("--k4c-snapshot", snapshot),
                                ("--k4c-manifests", manifests)) if v]
        if len(given) > 1:
            # Several --k4c-cluster contexts are fine; a live cluster and a snapshot are not.
            raise pytest.UsageError(f"{' and '.join(given)}: give one cluster target per run, not {len(given)}")
        twice = sorted({c for c in clusters if clusters.count(c) > 1})
        if twice:
            raise pytest.UsageError(f"--k4c-cluster: context {twice[0]!r} given twice")
        if opt("k4c_page_size") < 1:
            raise pytest.UsageError(f"--k4c-page-size: must be at least 1, got {opt('k4c_page_size')}")
        if opt("k4c_max_evidence_rows") < 0:
            raise pytest.UsageError("--k4c-max-evidence-rows: must not be negative")
        backend = None
        backends: dict[str, Any] = {}
        if len(clusters) > 1:
            backends = {c: _live_backend(c, kubeconfig, opt("k4c_page_size")) for c in clusters}
        elif clusters or kubeconfig:
            backend = _live_backend(clusters[0] if clusters else None, kubeconfig, opt("k4c_page_size"))
        elif snapshot:
            path = Path(snapshot)
            bundled_mode = None
            if path.is_dir():
                # An evidence bundle (--k4c-bundle): evaluate the snapshot it holds, once its hash
                # matches the manifest (a changed snapshot is never evaluated). A bundle of several
                # cluster targets holds one snapshot per target: each is a target again, by its name.
                from k4c_pytest.bundle import BundleError, read_manifest, snapshots_in

                try:
                    bundled_mode = (read_manifest(path).get("target") or {}).get("mode")
                    bundled = snapshots_in(path)
                except BundleError as exc:
                    raise pytest.UsageError(f"--k4c-snapshot: {exc}") from None
                if len(bundled) > 1:
                    from k4c_pytest.sources.cluster_snapshot import SnapshotBackend

                    backends = {name: SnapshotBackend(file) for name, file in bundled.items()}
                path = next(iter(bundled.values()))
            if not path.is_file():
                raise pytest.UsageError(f"--k4c-snapshot: {snapshot}: no such file (write one with 'k4c collect')")
            if not os.access(path, os.R_OK):
                raise pytest.UsageError(f"--k4c-snapshot: {snapshot}: not readable")
            from k4c_pytest.sources.cluster_snapshot import SnapshotBackend

            backend = SnapshotBackend(path) if not backends else None
            if bundled_mode == "manifests" and backend is not None:
                # What was read from manifests is judged as manifests again (controls that need a
                # server, such as the version checks, stay N/A), so the outcomes are the same.
                backend.mode = "manifests"
        elif manifests:
            path = Path(manifests)
            if not path.is_dir():
                raise pytest.UsageError(f"--k4c-manifests: {manifests}: not a folder")
            from k4c_pytest.sources.cluster_manifests import ManifestsBackend

            backend = ManifestsBackend(path)
        json_path = None
        if opt("k4c_json"):
            json_path = Path(opt("k4c_json"))
            if not json_path.parent.resolve().is_dir():
                raise pytest.UsageError(f"--k4c-json: {json_path.parent}: no such folder")
        return cls(cluster_backend=backend, cluster_backends=backends, json_path=json_path,
                   benchmarks=opt("k4c_benchmark"))

    # -- sources -------------------------------------------------------------------------

    def cluster_source(self, name: str | None = None):
        """The ClusterSource of target ``name`` (default: the first target), made on first use;
        N/A for every cluster control when no cluster was given."""
        __tracebackhide__ = True
        if not self._backends:
            raise NotApplicable("no cluster target: give --k4c-cluster, --k4c-snapshot or --k4c-manifests")
        name = self.target_names[0] if name is None else name
        if name not in self._sources:
            from k4c_pytest.sources.cluster import ClusterSource

            self._sources[name] = ClusterSource(self._backends[name])
        return self._sources[name]

    def read_source(self, name: str | None = None):
        """The ClusterSource of target ``name`` (default: the first) if a control read it, else
        None (no request is made). The evidence bundle's snapshots hold what was read."""
        if not self._backends:
            return None
        return self._sources.get(self.target_names[0] if name is None else name)

    def target(self, name: str | None = None) -> dict[str, Any]:
        """What target ``name`` (default: the first) is: mode, context or path, server version."""
        if name is not None and name not in self._backends:
            return {"mode": "aws", "profile": name}  # a cloud control's target (item_target)
        if not self._backends:
            return {"mode": None, "server_version": None}
        backend = self._backends[self.target_names[0] if name is None else name]
        d = dict(backend.describe())
        d["server_version"] = backend.server_version()
        return d

    def targets(self) -> list[dict[str, Any]]:
        """Every cluster target, each as :meth:`target` with its ``name``."""
        return [{"name": n, **self.target(n)} for n in self.target_names]

    def target_line(self) -> str:
        if not self._backends:
            return "no cluster target"
        if self.multi_target:
            return f"{len(self._backends)} clusters: " + "; ".join(self._line(self.target(n)) for n in self.target_names)
        return self._line(self.target())

    @staticmethod
    def _line(t: dict[str, Any]) -> str:
        version = t.get("server_version") or "unknown"
        if t["mode"] == "live":
            return f"live cluster, context {t['context']} ({t['server']}), server {version}"
        if t["mode"] == "snapshot":
            origin = f", collected from {t['collected_context']}" if t.get("collected_context") else ""
            when = f" at {t['collected_at']}" if t.get("collected_at") else ""
            err = f" [unreadable: {t['error']}]" if t.get("error") else ""
            return f"snapshot {t['snapshot']}{origin}{when}, server {version}{err}"
        return f"manifests in {t['manifests']}"

    def local_coverage(self) -> dict[str, dict[str, Any]]:
        """What this process read, per kind; with several targets the key is ``<target>:<kind>``."""
        if not self.multi_target:
            source = self.read_source()
            return source.coverage_report() if source is not None else {}
        return {f"{name}:{key}": cov for name, source in self._sources.items()
                for key, cov in source.coverage_report().items()}

    def item_target(self, item: pytest.Item) -> str | None:
        """The target a control ran against: its ``[target]`` parameter with several clusters (or
        AWS profiles), else the one target when the control uses the cluster (or the one profile
        when it uses ``aws``); None for other controls."""
        callspec = getattr(item, "callspec", None)
        for param in (TARGET_PARAM, AWS_TARGET_PARAM):
            if callspec is not None and param in callspec.params:
                return callspec.params[param]
        fixtures = getattr(item, "fixturenames", ())
        if self._backends and "cluster" in fixtures:
            return self.target_names[0]
        # The kubelets read through the API (no --k4c-hosts parameter) are the cluster's.
        on_host = callspec is not None and callspec.params.get("_k4c_host") is not None
        if self._backends and "kubelet" in fixtures and not on_host:
            return self.target_names[0]
        if len(self.cloud_targets) == 1 and "aws" in fixtures:
            return self.cloud_targets[0]
        return None

    def matrix(self) -> list[dict[str, Any]]:
        """Control x target: one row per control (per parameter set, the target aside), the
        outcome on each target and the worst of them (as ``k4c merge`` ranks them)."""
        from k4c_pytest.merge import worst

        rows: dict[tuple[str, str], dict[str, Any]] = {}
        columns = set(self.matrix_targets)
        for r in self.records:
            target = r.get("target")
            if target not in columns:
                continue  # not a cluster or cloud control: no target column applies
            base = _untargeted(r["nodeid"], target)
            row = rows.setdefault((r["id"], base), {"id": r["id"], "nodeid": base, "title": r["title"],
                                                    "layer": r["layer"], "outcomes": {}})
            row["outcomes"][target] = r["outcome"]
        for row in rows.values():
            row["worst"] = worst(row["outcomes"].values())
        return sorted(rows.values(), key=lambda row: (-RANK[row["worst"]], row["layer"], row["id"], row["nodeid"]))

    def close(self) -> None:
        for backend in self._backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    # -- records -------------------------------------------------------------------------

    def record(self, item: pytest.Item, control: Control, state: dict, evidence: Evidence | None) -> dict[str, Any]:
        started, stopped = state.get("started", 0.0), state.get("stopped", 0.0)
        return {
            **control.as_dict(),
            "layer": state.get("layer", "other"),
            "nodeid": item.nodeid,
            "target": self.item_target(item),
            "outcome": state.get("outcome", "ERROR"),
            "reason": state.get("reason", ""),
            "started_at": _iso(started) if started else None,
            "duration_seconds": round(max(stopped - started, 0.0), 4),
            "evidence": evidence.as_list() if evidence is not None else [],
        }

    def add_record(self, record: dict[str, Any], coverage: dict[str, dict[str, Any]] | None) -> None:
        self.records.append(record)
        for key, cov in (coverage or {}).items():
            # Under xdist each worker reads for itself; a kind any worker listed was readable.
            if key not in self.coverage or cov.get("status") == "listed":
                self.coverage[key] = cov

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(ALL, 0)
        for r in self.records:
            out[r["outcome"]] = out.get(r["outcome"], 0) + 1
        return out

    def by_layer(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.records:
            row = out.setdefault(r["layer"], dict.fromkeys(ALL, 0))
            row[r["outcome"]] = row.get(r["outcome"], 0) + 1
        return dict(sorted(out.items()))

    def results(self) -> dict[str, Any]:
        """The JSON results document (schema: docs/results-schema.md)."""
        return {
            "schema": RESULTS_SCHEMA,
            "k4c_version": __version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": round(time.perf_counter() - self._t0, 3),
            "exit_status": self.exit_status,
            "target": self.target(),
            "targets": self.targets(),
            "benchmarks_selected": self.benchmarks,
            "totals": self.totals(),
            "by_layer": self.by_layer(),
            "coverage": dict(sorted(self.coverage.items())),
            "coverage_by_benchmark": self.coverage_by_benchmark(),
            "waivers": self.waivers.summary(self.records),
            "controls": sorted(self.records, key=lambda r: (r["layer"], r["id"], r["nodeid"])),
        }

    def coverage_by_benchmark(self) -> dict[str, dict[str, Any]]:
        """Requirement -> controls -> worst outcome, per benchmark (k4c_pytest.coverage)."""
        from k4c_pytest.coverage import by_benchmark

        return by_benchmark(self.records, self.benchmarks)

    def finish(self, exit_status: int) -> None:
        self.finished_at = _now()
        self.exit_status = exit_status
        # A usage error found during collection (an unknown waiver id) ends the run before any
        # control ran: no results file, as for a bad option (docs/results-schema.md).
        if self.json_path is not None and exit_status != pytest.ExitCode.USAGE_ERROR:
            from k4c_pytest.report.results import write_json

            write_json(self.json_path, self.results())


def _target_name(backend) -> str:
    """A target's name: its kubeconfig context, the context a snapshot was collected from (or
    its path), the manifests folder."""
    d = backend.describe()
    return str(d.get("context") or d.get("collected_context") or d.get("snapshot") or d.get("manifests") or "")


def _untargeted(nodeid: str, target: str) -> str:
    """A node id without its target parameter: ``t.py::test_x[a-prod]`` -> ``t.py::test_x[a]``."""
    if nodeid.endswith(f"[{target}]"):
        return nodeid[:-len(target) - 2]
    if nodeid.endswith(f"-{target}]"):
        return nodeid[:-len(target) - 2] + "]"
    return nodeid


def _live_backend(context: str | None, kubeconfig: str | None, page_size: int):
    from k4c_pytest.sources import cluster_live

    if kubeconfig:
        path = Path(kubeconfig)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise pytest.UsageError(f"--k4c-kubeconfig: {kubeconfig}: no such readable file")
    flag = "--k4c-kubeconfig" if kubeconfig else "--k4c-cluster"
    # The kubernetes client reads $KUBECONFIG once, when it is imported; read it now instead.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    if context and context != cluster_live.IN_CLUSTER:
        # Listing the contexts only enriches the message; when the file cannot be listed, loading
        # it below says why.
        available = cluster_live.contexts(kubeconfig)
        if available and context not in available:
            where = kubeconfig or "~/.kube/config"
            raise pytest.UsageError(f"--k4c-cluster: context {context!r} is not in {where} "
                                    f"(available: {', '.join(available)})")
    try:
        return cluster_live.LiveBackend(context, kubeconfig, page_size=page_size)
    except cluster_live.ConfigError as exc:
        raise pytest.UsageError(f"{flag}: cannot load the cluster configuration: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a YAML error, a bad certificate...: the run cannot start
        raise pytest.UsageError(f"{flag}: cannot load the cluster configuration: "
                                f"{type(exc).__name__}: {exc}") from None
