"""Evidence bundles of runs with several cluster targets: one snapshot per target, each
re-evaluated offline as its own target to the same outcomes.

Two contexts of the session's real API server stand in for two clusters that differ: ``a`` is
the admin (it lists everything), ``r`` the restricted user (HTTP 403 on everything), so their
outcomes and their snapshots differ and a mixed-up snapshot would show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k4c_pytest import bundle
from k4c_pytest.sources.cluster_snapshot import read_snapshot
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, copy_contexts

SUITES = Path(__file__).resolve().parents[1] / "suites"
XDIST = ["-p", "xdist", "-n", "2"]


@pytest.mark.controlplane
@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_a_multi_cluster_bundle_holds_a_snapshot_per_target_and_reevaluates_each(
        k4c_control_plane, run_k4c, tmp_path, workers):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "r/x": RESTRICTED})
    live_dir, offline_dir = tmp_path / "live", tmp_path / "offline"
    paths = [SUITES / "cluster" / "test_rbac.py", SUITES / "cluster" / "test_namespaces.py"]
    live = run_k4c("--k4c-cluster=a", "--k4c-cluster=r/x", f"--k4c-kubeconfig={kubeconfig}",
                   f"--k4c-bundle={live_dir}", *workers, paths=paths)
    manifest = json.loads((live_dir / bundle.MANIFEST).read_text())
    assert manifest["snapshots"] == {"a": "snapshots/a.json.gz", "r/x": "snapshots/r_x.json.gz"}
    assert manifest["snapshot"] == "snapshots/a.json.gz"
    assert [t["name"] for t in manifest["targets"]] == ["a", "r/x"]
    assert not (live_dir / bundle.SNAPSHOT).exists() and not (live_dir / bundle.PARTS).exists()
    # Each snapshot holds its own target's reads: everything listed for a, everything forbidden for r/x.
    snaps = {t: read_snapshot(live_dir / f) for t, f in manifest["snapshots"].items()}
    assert snaps["a"]["target"]["context"] == "a" and snaps["r/x"]["target"]["context"] == "r/x"
    assert snaps["a"]["kinds"] and {e["status"] for e in snaps["a"]["kinds"].values()} == {"listed"}
    assert snaps["r/x"]["kinds"] and {e["status"] for e in snaps["r/x"]["kinds"].values()} == {"forbidden"}
    assert set(snaps["r/x"]["kinds"]) < set(snaps["a"]["kinds"])

    offline = run_k4c(f"--k4c-snapshot={live_dir}", f"--k4c-bundle={offline_dir}", *workers, paths=paths)
    assert [t["name"] for t in offline.results["targets"]] == ["a", "r/x"]
    assert {t["mode"] for t in offline.results["targets"]} == {"snapshot"}
    outcomes = {r["nodeid"]: r["outcome"] for r in live.controls}
    assert {r["target"] for r in live.controls} == {"a", "r/x"}
    assert {o for n, o in outcomes.items() if n.endswith("[r/x]")} == {"ERROR"}
    assert "ERROR" not in {o for n, o in outcomes.items() if n.endswith("[a]")}
    assert {r["nodeid"]: r["outcome"] for r in offline.controls} == outcomes
    assert {r["nodeid"]: r["target"] for r in offline.controls} == {r["nodeid"]: r["target"] for r in live.controls}
    # The offline bundle carries both targets on, and both bundles verify.
    assert json.loads((offline_dir / bundle.MANIFEST).read_text())["snapshots"].keys() == {"a", "r/x"}
    for root in (live_dir, offline_dir):
        assert bundle.verify_bundle(root).ok, root


@pytest.mark.controlplane
def test_a_changed_target_snapshot_is_never_evaluated(k4c_control_plane, run_k4c, tmp_path):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "b": ADMIN})
    live_dir = tmp_path / "live"
    run_k4c("--k4c-cluster=a", "--k4c-cluster=b", f"--k4c-kubeconfig={kubeconfig}", f"--k4c-bundle={live_dir}",
            paths=[SUITES / "cluster" / "test_namespaces.py"])
    (live_dir / "snapshots" / "b.json.gz").write_bytes(b"\x1f\x8b tampered")
    res = run_k4c(f"--k4c-snapshot={live_dir}", paths=[SUITES / "cluster" / "test_namespaces.py"])
    assert res.ret == 4
    assert "snapshots/b.json.gz: changed since the bundle was written" in res.stdout


@pytest.mark.controlplane
def test_merge_splits_a_multi_cluster_bundle_into_a_column_per_target(k4c_control_plane, run_k4c, tmp_path, capsys):
    from k4c_pytest import cli

    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "r": RESTRICTED})
    fleet_dir, single_dir = tmp_path / "fleet", tmp_path / "single"
    paths = [SUITES / "cluster" / "test_namespaces.py", SUITES / "code" / "test_ci.py"]
    fleet = run_k4c("--k4c-cluster=a", "--k4c-cluster=r", f"--k4c-kubeconfig={kubeconfig}",
                    f"--k4c-bundle={fleet_dir}", f"--k4c-source={tmp_path}", paths=paths)
    single = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                     f"--k4c-bundle={single_dir}", paths=paths[:1])
    out = tmp_path / "merged.json"
    capsys.readouterr()
    assert cli.main(["merge", str(fleet_dir), str(single_dir), "-o", str(out)]) == 0, capsys.readouterr()
    doc = json.loads(out.read_text())
    labels = [t["label"] for t in doc["targets"]]
    assert labels == ["a", "r", f"{fleet_dir} (no target)", ADMIN], labels
    assert [t["target"].get("context") for t in doc["targets"][:2]] == ["a", "r"]
    # One row per control: the fleet's per-target runs line up with the single-cluster run.
    (row,) = [r for r in doc["controls"] if r["id"] == "K4C-CL-NS-001"]
    assert row["key"] == "K4C-CL-NS-001"
    outcomes = {label: cell["outcome"] for label, cell in row["outcomes"].items()}
    live = {r["target"]: r["outcome"] for r in fleet.controls if r["id"] == "K4C-CL-NS-001"}
    assert outcomes == {"a": live["a"], "r": "ERROR", ADMIN: single.control("K4C-CL-NS-001")["outcome"]}
    # The code control belongs to no cluster: it sits in the fleet run's own column only.
    code = [r for r in doc["controls"] if r["layer"] == "code"]
    assert code and all(set(r["outcomes"]) == {f"{fleet_dir} (no target)"} for r in code)


@pytest.mark.controlplane
def test_the_oscal_of_a_multi_cluster_run_names_each_controls_own_target(k4c_control_plane, run_k4c, tmp_path,
                                                                         oscal_validator):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "r": RESTRICTED})
    root = tmp_path / "fleet"
    run_k4c("--k4c-cluster=a", "--k4c-cluster=r", f"--k4c-kubeconfig={kubeconfig}", f"--k4c-bundle={root}",
            paths=[SUITES / "cluster" / "test_namespaces.py"])
    doc = json.loads((root / bundle.OSCAL).read_text())
    assert not list(oscal_validator.iter_errors(doc))
    result = doc["assessment-results"]["results"][0]
    components = {c["uuid"]: c for c in result["local-definitions"]["components"]}
    by_target = {}
    for obs in result["observations"]:
        props = {p["name"]: p["value"] for p in obs["props"]}
        (subject,) = obs["subjects"]  # the target only: its name is no parameter of its own
        by_target[props["nodeid"].rsplit("[", 1)[1].rstrip("]")] = components[subject["subject-uuid"]]
    assert set(by_target) == {"a", "r"}
    assert by_target["a"]["title"] == f"live cluster, context a ({k4c_control_plane.url})"
    assert by_target["r"]["title"] == f"live cluster, context r ({k4c_control_plane.url})"
