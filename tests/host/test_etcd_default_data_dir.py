"""etcd's own default data folder: a real etcd started without --data-dir keeps its data in
``<name>.etcd`` below its working folder, and that is the folder FILE-003/004 judge (found
through the running process), never a guessed /var/lib/etcd. A static pod manifest without
--data-dir does not say where that is: ERROR."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from static_node import StaticNode

from k4c_pytest.testing.controlplane import find_binaries, free_ports

FILES_SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_node_files.py"
NAME = "k4c-default-dir"


@pytest.fixture(scope="module")
def etcd_binary() -> Path:
    # Found before pytester (a function fixture) points HOME, and so the default cache, elsewhere.
    return find_binaries() / "etcd"


@pytest.fixture
def etcd_without_data_dir(etcd_binary, tmp_path) -> Iterator[Path]:
    """A real etcd run in ``tmp_path/work`` with no --data-dir; yields the folder it created."""
    work = tmp_path / "work"
    work.mkdir()
    client, peer = free_ports(2)
    proc = subprocess.Popen(
        [str(etcd_binary), f"--name={NAME}", f"--listen-client-urls=http://127.0.0.1:{client}",
         f"--advertise-client-urls=http://127.0.0.1:{client}", f"--listen-peer-urls=http://127.0.0.1:{peer}",
         f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}", f"--initial-cluster={NAME}=http://127.0.0.1:{peer}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("ETCD_")})
    folder = work / f"{NAME}.etcd"
    try:
        deadline = time.monotonic() + 30
        while not (folder / "member").is_dir():
            assert proc.poll() is None, "etcd exited"
            assert time.monotonic() < deadline, "etcd made no data folder"
            time.sleep(0.1)
        yield folder
    finally:
        proc.terminate()
        proc.wait(10)


def test_default_data_folder_is_found_below_the_working_folder(run_k4c, etcd_without_data_dir):
    folder = etcd_without_data_dir
    folder.chmod(0o755)  # etcd makes it 700; opened up, FILE-003 must name it
    res = run_k4c("--k4c-hosts=local://", paths=[FILES_SUITE], k="etcd_data_dir_permissions")
    record = res.control("K4C-CL-FILE-003")
    assert record["outcome"] == "FAIL", res.stdout[-3000:]
    assert str(folder) in [r["file"] for r in res.offenders("K4C-CL-FILE-003")]
    folder.chmod(0o700)
    res = run_k4c("--k4c-hosts=local://", paths=[FILES_SUITE], k="etcd_data_dir_permissions")
    assert str(folder) not in [r["file"] for r in res.offenders("K4C-CL-FILE-003")]
    note = next(e["text"] for e in res.control("K4C-CL-FILE-003")["evidence"] if e["type"] == "note")
    assert str(folder) in note


def test_a_manifest_without_data_dir_errors(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    node.manifest("etcd", ["etcd", "--name=cp1", "--cert-file=/etc/kubernetes/pki/etcd/server.crt"])
    node.folder("/var/lib/etcd", 0o700)  # kubeadm's folder: not what this etcd uses, so not judged
    res = run_k4c(*node.args(), paths=[FILES_SUITE], k="etcd_data_dir")
    for cid in ("K4C-CL-FILE-003", "K4C-CL-FILE-004"):
        record = res.control(cid)
        assert record["outcome"] == "ERROR", record
        assert "'cp1.etcd' is relative to etcd's working folder" in record["reason"], record["reason"]
