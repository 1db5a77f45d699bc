"""``ansible://`` host specs: a real Ansible inventory (read by ansible-core's ansible-inventory,
a test dependency) expands into its hosts, each reached the way the inventory says: one with
``ansible_connection=local``, one over SSH to the loopback sshd. Without Ansible installed,
``ansible://`` is a usage error saying so."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from static_node import StaticNode

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_etcd.py"
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
def ansible_on_path(monkeypatch):
    """Ansible's commands as an activated virtualenv would put them: on PATH."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not Path(VENV_BIN, "ansible-inventory").exists():
        pytest.fail("ansible-core is not installed in the test virtualenv: pip install -e '.[test]'", pytrace=False)


@pytest.fixture
def etcd_node(tmp_path) -> StaticNode:
    node = StaticNode(tmp_path / "root")
    node.manifest("etcd", ["etcd", "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
                           "--key-file=/etc/kubernetes/pki/etcd/server.key", "--client-cert-auth=true", "--auto-tls"])
    return node


def _inventory(tmp_path: Path, sshd) -> Path:
    inv = tmp_path / "inventory.ini"
    inv.write_text(
        "[control_plane]\ncp1 ansible_connection=local\n\n"
        f"[workers]\nnode1 ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user=root "
        f"ansible_ssh_private_key_file={sshd.client_key}\n")
    return inv


def _by_host(res) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in res.controls:
        out.setdefault(r["nodeid"].rsplit("[", 1)[1].rstrip("]"), {})[r["id"]] = r["outcome"]
    return out


def test_inventory_hosts_each_get_a_run(run_k4c, etcd_node, k4c_sshd, ansible_on_path, tmp_path):
    spec = f"ansible://all?ansible_inventory={_inventory(tmp_path, k4c_sshd)}&ssh_config={k4c_sshd.client_config}"
    res = run_k4c(f"--k4c-hosts={spec}", f"--k4c-host-root={etcd_node.root}", paths=[SUITE])
    hosts = _by_host(res)
    assert sorted(hosts) == ["cp1", "node1"], res.stdout[-3000:]
    # Both read the same node root (one locally, one over SSH): the same outcomes.
    assert hosts["cp1"] == hosts["node1"]
    assert hosts["cp1"]["K4C-CL-ETCD-002"] == "PASS" and hosts["cp1"]["K4C-CL-ETCD-003"] == "FAIL"
    # Roles are overridden by inventory name.
    res = run_k4c(f"--k4c-hosts={spec}", f"--k4c-host-root={etcd_node.root}", "--k4c-host-role=node1=worker",
                  paths=[SUITE], k="client_cert_auth")
    assert _by_host(res) == {"cp1": {"K4C-CL-ETCD-002": "PASS"}, "node1": {"K4C-CL-ETCD-002": "N/A"}}


def test_unreadable_inventory_is_a_usage_error(run_k4c, ansible_on_path, tmp_path):
    res = run_k4c(f"--k4c-hosts=ansible://all?ansible_inventory={tmp_path / 'no-such-inventory.ini'}",
                  paths=[SUITE])
    assert res.ret == 4 and "cannot read the Ansible inventory" in res.stdout, res.stdout[-2000:]


def test_ansible_not_installed_is_a_usage_error(run_k4c, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without Ansible
    res = run_k4c("--k4c-hosts=ansible://all?ansible_inventory=inventory.ini", paths=[SUITE])
    assert res.ret == 4, res.stdout[-2000:]
    assert "ansible:// needs Ansible, which is not installed here" in res.stdout
    assert not res.controls
