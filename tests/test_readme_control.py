"""The README's "Writing a control" example, taken from the README itself, works as shown."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def readme_control() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Writing a control", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def payments(privileged: bool) -> list[dict]:
    container = {"name": "api", "image": "registry.example.com/api@sha256:" + "a" * 64}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "payments"},
             "spec": {"selector": {"matchLabels": {"app": "api"}},
                      "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [container]}}}}]


def test_the_readme_control_is_at_most_ten_lines_and_runs(run_k4c, tmp_path):
    code = readme_control()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10, code
    control = tmp_path / "test_payments.py"
    control.write_text(code)
    for privileged, outcome in ((True, "FAIL"), (False, "PASS")):
        folder = tmp_path / f"manifests-{privileged}"
        folder.mkdir()
        (folder / "payments.yaml").write_text(yaml.safe_dump_all(payments(privileged)))
        res = run_k4c(f"--k4c-manifests={folder}", paths=[control])
        record = res.control("ACME-001")
        assert record["outcome"] == outcome, res.stdout[-2000:]
        if privileged:
            assert res.offenders("ACME-001") == [{"kind": "Deployment", "namespace": "payments", "name": "api",
                                                  "container": "api"}]
