"""docs/testing.md stays true: its complete example, taken from the page, passes against a real
control plane in a project of its own, and the fixtures and options it lists exist."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from k4c_pytest.testing import controlplane, fixtures
from k4c_pytest.testing.faults import Rule

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "testing.md"


def _section(title: str) -> str:
    return DOC.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def example_files() -> dict[str, str]:
    """The example's files: each ```python block of section 3 whose first line is ``# <path>``."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", _section("3. A complete example"), re.S):
        first, _, rest = block.partition("\n")
        if first.startswith("# ") and first.endswith(".py"):
            files[first[2:]] = rest
    return files


def test_the_example_is_the_readme_control_plus_its_tests():
    files = example_files()
    assert set(files) == {"controls/test_payments.py", "tests/conftest.py", "tests/test_payments_control.py"}
    readme = (REPO / "README.md").read_text().split("## Writing a control", 1)[1]
    assert files["controls/test_payments.py"] == re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert (REPO / "README.md").read_text().count("(docs/testing.md)") >= 1


@pytest.mark.controlplane
def test_the_example_passes_in_a_project_of_its_own(tmp_path):
    for name, text in example_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-rA"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = set(re.findall(r"^PASSED tests/test_payments_control.py::(\w+)", run.stdout, re.M))
    assert passed == {"test_fails_naming_the_privileged_deployment", "test_passes_for_a_read_only_auditor",
                      "test_errors_when_pods_cannot_be_read", "test_errors_when_the_api_server_fails"}, run.stdout


def test_the_fixtures_and_options_listed_exist():
    table = _section("2. Enable the fixtures")
    listed = set(re.findall(r"^\| `(k4c_\w+)` \|", table, re.M))
    provided = {name for name in vars(fixtures) if name.startswith("k4c_")}
    assert listed == provided == {"k4c_control_plane", "k4c_kube", "k4c_fault_proxy"}
    options = _section("4. The `ControlPlane`").split("Constructor options:", 1)[1]
    documented = set(re.findall(r"`(\w+)` \(", options)) | set(re.findall(r"^`(\w+)`, `(\w+)`\.", options, re.M)[0])
    assert documented == set(inspect.signature(controlplane.ControlPlane).parameters) - {"workdir"}
    rule = re.search(r"A `Rule\((.*?)\)` matches", _section("7. Faults a real API server will not produce: "
                                                             "`FaultProxy`"), re.S).group(1)
    assert [p.split("=")[0].strip() for p in rule.split(",")] == [
        f.name for f in Rule.__dataclass_fields__.values() if f.init]
