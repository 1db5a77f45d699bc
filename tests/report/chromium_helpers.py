"""Debian's headless Chromium driven through the DevTools protocol (a WebSocket on loopback), for
tests that act on a page as a person would (choose a filter, click a row) and then read the DOM
and the computed style: what is really shown, not only what the markup says.

Chromium comes from scripts/install-chromium.sh (``make test`` runs it). Without it the tests
fail rather than skip, so a CI job cannot pass without ever opening the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

CHROMIUM = "/usr/bin/chromium"
#: How long to wait for Chromium to start, or a page to reach a state, before the test fails.
#: A guard against hanging, not a measure: no test asserts on how long anything took.
PATIENCE = 180.0


def chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is not installed: run `make test` (which installs it with "
                    "scripts/install-chromium.sh), or run scripts/install-chromium.sh as root", pytrace=False)
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


class Browser:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, profile: Path):
        profile.mkdir(parents=True, exist_ok=True)
        argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._id = 0
        try:
            port = self._port(profile / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
                targets = json.load(resp)
            page = next(t for t in targets if t.get("type") == "page")
            # No Origin header: Chromium refuses WebSocket clients that send one it does not allow.
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=PATIENCE,
                                                  suppress_origin=True)
        except BaseException:
            self._stop()
            raise

    def _port(self, active_port: Path) -> int:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited ({self.proc.returncode}): {self.proc.stderr.read()[-3000:]}")
            if active_port.exists():
                first = active_port.read_text().splitlines()[:1]
                if first and first[0].isdigit():
                    return int(first[0])
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                assert "error" not in message, (method, message["error"])
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serializable)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Evaluate until the expression is truthy; its value."""
        deadline = time.monotonic() + PATIENCE
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"the page never reached: {expression} (last value {value!r})")

    def open(self, url: str, ready: str) -> None:
        """Navigate and wait until the ``ready`` expression holds."""
        self.send("Page.navigate", url=url)
        self.wait_for(f"document.readyState === 'complete' && ({ready})")

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._stop()
