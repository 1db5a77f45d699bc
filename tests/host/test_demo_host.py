"""The demo's node controls on a machine running no Kubernetes: N/A, never ERROR or FAIL."""

from __future__ import annotations

from pathlib import Path

from k4c_pytest.demo import host as demo_host

SUITES = Path(__file__).resolve().parents[2] / "suites" / "cluster"
NODE_SUITES = [SUITES / f for f in ("test_control_plane_flags.py", "test_etcd.py", "test_kubelet.py",
                                    "test_node_files.py", "test_encryption_at_rest.py")]


def test_demo_node_controls_are_not_applicable_without_kubernetes(run_k4c, tmp_path):
    # This machine may run other tests' control planes; an empty root stands for a laptop's
    # root filesystem with no Kubernetes on it (no component process, manifest or kubelet file).
    root = tmp_path / "laptop"
    (root / "proc").mkdir(parents=True)
    (root / "etc").mkdir()
    res = run_k4c(*demo_host.pytest_args(), f"--k4c-host-root={root}", paths=NODE_SUITES)
    assert res.ret == 0, res.stdout[-2000:]
    assert len(res.controls) > 50 and {r["outcome"] for r in res.controls} == {"N/A"}
    assert demo_host.pytest_args() == ["--k4c-hosts=local://"]
