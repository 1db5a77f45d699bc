"""The README's "k4c in your CI pipeline" examples: each one, put in a repository, is what
K4C-CODE-CI-001 accepts, and the shell example's k4c command runs as written."""

from __future__ import annotations

import re
import shlex

import pytest

from code_fixtures import DATA, REPO


def _examples() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## k4c in your CI pipeline", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(yaml|sh)\n(.*?)```", section, re.S))
    assert set(blocks) == {"yaml", "sh"}, "the README's CI section lost an example"
    return blocks


@pytest.mark.parametrize("kind, path", [("yaml", ".github/workflows/k4c.yml"), ("sh", ".ci/k4c.sh")])
def test_readme_ci_example_satisfies_the_ci_control(k4c_code, tmp_path, kind, path):
    (tmp_path / "app.py").write_text("print('hello')\n")
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(_examples()[kind])
    res = k4c_code(tmp_path, k="ci_runs")
    assert res.outcomes()["K4C-CODE-CI-001"] == "PASS", res.stdout[-3000:]


def test_readme_shell_example_command_runs(run_k4c, monkeypatch, tmp_path):
    script = _examples()["sh"].replace("\\\n", " ")
    line = next(ln for ln in script.splitlines() if "--pyargs" in ln)
    argv = shlex.split(line)[1:]  # drop "$venv/bin/pytest"
    assert argv[:2] == ["--pyargs", "k4c_pytest.suites.code"]
    monkeypatch.chdir(DATA / "good")  # --k4c-source=. is the repository the CI checked out
    args = [a for a in argv[2:] if not a.startswith(("--k4c-json", "--junitxml"))]
    res = run_k4c(*args, f"--junitxml={tmp_path / 'junit.xml'}",
                  paths=["--pyargs", "k4c_pytest.suites.code"])
    assert res.outcomes()["K4C-CODE-SEC-001"] == "PASS", res.stdout[-3000:]
    assert res.outcomes()["K4C-CODE-CI-001"] == "PASS"
    assert (tmp_path / "junit.xml").is_file()


def test_readme_installs_k4c_from_git_or_a_wheel_not_pypi():
    # k4c is not on PyPI: a bare "pip install k4c-pytest" would fail in every CI that copies it
    from packaging.requirements import Requirement

    text = (REPO / "README.md").read_text()
    assert not re.search(r"pip install (-q )?k4c-pytest\b", text)
    blocks = _examples()
    specs = [re.search(r'K4C: "([^"]+)"', blocks["yaml"]).group(1),
             re.search(r'K4C="\$\{K4C:-([^}]+)\}"', blocks["sh"]).group(1)]
    for spec in specs:
        req = Requirement(spec)
        assert req.name == "k4c-pytest" and req.url and req.url.startswith("git+https://"), spec
    assert 'pip install "$K4C"' in blocks["yaml"] and '"$venv/bin/pip" install -q "$K4C"' in blocks["sh"]
