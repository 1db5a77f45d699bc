"""A real OpenSSH server on loopback, for testing host controls over SSH.

Debian's ``/usr/sbin/sshd`` runs in the foreground on a free 127.0.0.1 port with a private
configuration: host key and client key generated for the session, public-key login only,
root allowed with a key (host controls read root-only files). The client side gets an
``ssh_config`` that pins the host key (``StrictHostKeyChecking yes``), so
``ssh://root@127.0.0.1:PORT?ssh_config=...`` is checked like a real node would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from k4c_pytest.testing.controlplane import free_port

SSHD = os.environ.get("K4C_SSHD", "/usr/sbin/sshd")
START_TIMEOUT = 20.0


class SshdUnavailable(Exception):
    """sshd or ssh-keygen is not installed."""


class Sshd:
    """sshd on ``127.0.0.1:port``; ``spec()`` is a testinfra host spec that logs in as root."""

    def __init__(self, workdir: Path, user: str = "root"):
        self.workdir = Path(workdir)
        self.user = user
        self.port = 0
        self.config = self.workdir / "sshd_config"
        self.client_config = self.workdir / "ssh_config"
        self.client_key = self.workdir / "client_ed25519"
        self.host_key = self.workdir / "host_ed25519"
        self.log = self.workdir / "sshd.log"
        self._proc: subprocess.Popen | None = None

    def spec(self, scheme: str = "ssh") -> str:
        """The testinfra host spec: ``ssh://root@127.0.0.1:PORT?ssh_config=...`` (or paramiko://)."""
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}?ssh_config={self.client_config}"

    def start(self) -> "Sshd":
        keygen = shutil.which("ssh-keygen")
        if not os.access(SSHD, os.X_OK) or keygen is None:
            raise SshdUnavailable(f"{SSHD} or ssh-keygen not found: install Debian's openssh-server and "
                                  "openssh-client (scripts/install-system-deps.sh)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            key.unlink(missing_ok=True)
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "k4c-test", "-f", str(key)], check=True)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        # sshd refuses to start without its privilege separation folder (normally made by systemd).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.port = free_port()
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {self.workdir / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin prohibit-password", "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no",
            # The key files live in a pytest temporary folder, whose parents sshd would judge.
            "StrictModes no", "LogLevel VERBOSE", f"AllowUsers {self.user}", "",
        ]))
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        known = self.workdir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.client_config.write_text("\n".join([
            "Host 127.0.0.1", f"  Port {self.port}", f"  User {self.user}", f"  IdentityFile {self.client_key}",
            "  IdentitiesOnly yes", f"  UserKnownHostsFile {known}", "  StrictHostKeyChecking yes",
            "  BatchMode yes", "  ConnectTimeout 5", "",
        ]))
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._banner():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start; log {self.log}:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        return self

    def _banner(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
        return False

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def __enter__(self) -> "Sshd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def k4c_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A started :class:`Sshd` for the session (fails, never skips, when sshd is missing)."""
    sshd = Sshd(tmp_path_factory.mktemp("k4c-sshd"))
    try:
        sshd.start()
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield sshd
    finally:
        sshd.stop()
