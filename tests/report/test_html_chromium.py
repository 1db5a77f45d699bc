"""The HTML report opened in a real browser (Debian's headless Chromium): pytest-html's script
renders the rows and k4c's evidence, and markup from the target stays text.

Chromium comes from scripts/install-chromium.sh, which ``make test`` runs. Without it this test
fails rather than skips, so a CI job cannot pass without ever opening the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.chromium

CHROMIUM = "/usr/bin/chromium"
TITLE = "k4c compliance evidence"
SCRIPT_NAME = "x-<script>document.title='pwned'</script>"
IMG_NOTE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
PARAM_ID = "<img src=x onerror=document.title='param'>"

CONTROLS = f'''
import pytest


@pytest.mark.control("T-HOSTNET", title="no host network", severity="high", remediation="Set hostNetwork: false")
def test_host_network(cluster, evidence):
    offenders = [w for w in cluster.workloads() if w.pod_spec.get("hostNetwork")]
    evidence.table("workloads on the host network",
                   [w.row(note=w.obj["metadata"]["annotations"]["note"]) for w in offenders])
    assert not offenders, f"{{len(offenders)}} workloads use the host network"


@pytest.mark.parametrize("name", [{PARAM_ID!r}])
@pytest.mark.control("T-PARAM", title="parametrized over data", severity="low")
def test_param(name):
    pass
'''


class _Dom(HTMLParser):
    """The elements of a serialized DOM: (tag, attributes, text inside) for the ones we look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self._text: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._text = []
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag == "td" and self._text is not None:
            self.cells.append("".join(self._text))
            self._text = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._text is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data


def _chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is not installed: run `make test` (which installs it with "
                    "scripts/install-chromium.sh), or run scripts/install-chromium.sh as root", pytrace=False)
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def _dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's scripts ran, as Chromium serializes it."""
    argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "</html>" in proc.stdout, f"chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_report_renders_evidence_and_runs_no_markup_from_the_target(pytester, tmp_path):
    manifests = pytester.mkdir("manifests")
    for name, note in (("web", "plain"), (SCRIPT_NAME, IMG_NOTE)):
        doc = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "prod", "annotations": {"note": note}},
               "spec": {"template": {"spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "nginx"}]}}}}
        (manifests / f"{'hostile' if '<' in name else name}.yaml").write_text(json.dumps(doc))
    pytester.makepyfile(test_controls=CONTROLS)
    page = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-manifests={manifests}", f"--html={page}",
                                "--self-contained-html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()

    serialized = _dump_dom(page, tmp_path / "chromium-profile")
    dom = _Dom()
    dom.feed(serialized)

    # pytest-html's script ran (it builds the rows from its JSON blob) ...
    assert "T-HOSTNET" in dom.cells and "FAIL" in dom.cells, dom.cells[:40]
    # ... and rendered the evidence row with the hostile values as text.
    assert SCRIPT_NAME in dom.cells and IMG_NOTE in dom.cells, [c for c in dom.cells if "<" in c]
    assert "web" in dom.cells and "plain" in dom.cells
    assert any(c.startswith("test_controls.py::test_param[<img") for c in dom.cells), dom.cells[:40]
    # None of it ran: the title is k4c's, no script set an attribute, no injected element exists.
    assert dom.title == TITLE
    for tag, attrs in dom.tags:
        assert "data-pwned" not in attrs, (tag, attrs)
        assert "onerror" not in attrs, (tag, attrs)
        assert not (tag == "img" and attrs.get("src") == "x"), (tag, attrs)
    assert "<script>document.title" not in serialized
    # The k4c summary is on the page, and the remediation under the control.
    text = " ".join(dom.text)
    assert "Target: manifests in" in text and "apps/v1/deployments" in dom.cells
    assert "Remediation:" in text and "Set hostNetwork: false" in text
