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
from k4c_pytest.outcomes import ALL, NotApplicable
from k4c_pytest.waivers import Waivers

RUN_KEY = pytest.StashKey["Run"]()
RESULTS_SCHEMA = "k4c-results/1"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


class Run:
    """State of one run, kept in ``config.stash[RUN_KEY]``."""

    def __init__(self, *, cluster_backend=None, json_path: Path | None = None, benchmarks: list[str] | None = None):
        self._backend = cluster_backend
        self._source = None
        self.json_path = json_path
        self.records: list[dict[str, Any]] = []
        self.coverage: dict[str, dict[str, Any]] = {}
        self.benchmarks: list[str] = list(benchmarks or [])
        self.started_at = _now()
        self._t0 = time.perf_counter()
        self.finished_at: str | None = None
        self.exit_status: int | None = None
        self.waivers = Waivers([])

    # -- options -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Run":
        opt = config.getoption
        cluster, kubeconfig = opt("k4c_cluster"), opt("k4c_kubeconfig")
        snapshot, manifests = opt("k4c_snapshot"), opt("k4c_manifests")
        given = [f for f, v in (("--k4c-cluster", cluster or kubeconfig), ("--k4c-snapshot", snapshot),
                                ("--k4c-manifests", manifests)) if v]
        if len(given) > 1:
            raise pytest.UsageError(f"{' and '.join(given)}: give one cluster target per run, not {len(given)}")
        if opt("k4c_page_size") < 1:
            raise pytest.UsageError(f"--k4c-page-size: must be at least 1, got {opt('k4c_page_size')}")
        if opt("k4c_max_evidence_rows") < 0:
            raise pytest.UsageError("--k4c-max-evidence-rows: must not be negative")
        backend = None
        if cluster or kubeconfig:
            backend = _live_backend(cluster, kubeconfig, opt("k4c_page_size"))
        elif snapshot:
            path = Path(snapshot)
            bundled_mode = None
            if path.is_dir():
                # An evidence bundle (--k4c-bundle): evaluate the snapshot it holds, once its hash
                # matches the manifest (a changed snapshot is never evaluated).
                from k4c_pytest.bundle import BundleError, read_manifest, snapshot_in

                try:
                    bundled_mode = (read_manifest(path).get("target") or {}).get("mode")
                    path = snapshot_in(path)
                except BundleError as exc:
                    raise pytest.UsageError(f"--k4c-snapshot: {exc}") from None
            if not path.is_file():
                raise pytest.UsageError(f"--k4c-snapshot: {snapshot}: no such file (write one with 'k4c collect')")
            if not os.access(path, os.R_OK):
                raise pytest.UsageError(f"--k4c-snapshot: {snapshot}: not readable")
            from k4c_pytest.sources.cluster_snapshot import SnapshotBackend

            backend = SnapshotBackend(path)
            if bundled_mode == "manifests":
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
        return cls(cluster_backend=backend, json_path=json_path, benchmarks=opt("k4c_benchmark"))

    # -- sources -------------------------------------------------------------------------

    def cluster_source(self):
        """The session's ClusterSource; N/A for every cluster control when no cluster was given."""
        __tracebackhide__ = True
        if self._backend is None:
            raise NotApplicable("no cluster target: give --k4c-cluster, --k4c-snapshot or --k4c-manifests")
        if self._source is None:
            from k4c_pytest.sources.cluster import ClusterSource

            self._source = ClusterSource(self._backend)
        return self._source

    def read_source(self):
        """The session's ClusterSource if a control read the cluster, else None (no request is made)."""
        return self._source

    def target(self) -> dict[str, Any]:
        if self._backend is None:
            return {"mode": None, "server_version": None}
        d = dict(self._backend.describe())
        d["server_version"] = self._backend.server_version()
        return d

    def target_line(self) -> str:
        if self._backend is None:
            return "no cluster target"
        t = self.target()
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
        return self._source.coverage_report() if self._source is not None else {}

    def close(self) -> None:
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    # -- records -------------------------------------------------------------------------

    def record(self, item: pytest.Item, control: Control, state: dict, evidence: Evidence | None) -> dict[str, Any]:
        started, stopped = state.get("started", 0.0), state.get("stopped", 0.0)
        return {
            **control.as_dict(),
            "layer": state.get("layer", "other"),
            "nodeid": item.nodeid,
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
