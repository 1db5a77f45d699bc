"""The code source's readers on their own: requirement and lock files, Dockerfiles, CI files, trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import code_ci, code_deps, code_dockerfile
from k4c_pytest.sources.code_tree import SourceTree


def _tree(tmp_path: Path, files: dict[str, str]) -> SourceTree:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return SourceTree(str(tmp_path))


def _deps(tree: SourceTree) -> list[tuple]:
    return [(Path(d["file"]).name, d["line"], d["ecosystem"], d["name"], d["version"])
            for d in code_deps.collect(tree)["dependencies"]]


def test_requirements_continuations_hashes_markers_and_options(tmp_path):
    tree = _tree(tmp_path, {"requirements-prod.txt": (
        "--index-url https://pypi.example/simple\n"
        "-r requirements-base.txt\n"
        "# a comment line\n"
        "Django==4.2.16 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n"
        "numpy==1.*            # a wildcard is a range\n"
        "attrs===23.1.0\n"
        "six==1.16.0; python_version < '3'\n"
        "idna>=3,<4\n"
        "-e git+https://git.example/lib.git#egg=lib\n"
        "pkg @ https://files.example/pkg-1.0.tar.gz\n")})
    assert _deps(tree) == [
        ("requirements-prod.txt", 4, "PyPI", "django", "4.2.16"),
        ("requirements-prod.txt", 7, "PyPI", "numpy", None),
        ("requirements-prod.txt", 8, "PyPI", "attrs", "23.1.0"),
        ("requirements-prod.txt", 9, "PyPI", "six", "1.16.0"),
        ("requirements-prod.txt", 10, "PyPI", "idna", None),
        ("requirements-prod.txt", 11, "PyPI", "git+https://git.example/lib.git#egg=lib", None),
        ("requirements-prod.txt", 12, "PyPI", "pkg", None),
    ]


def test_lock_files(tmp_path):
    tree = _tree(tmp_path, {
        "poetry.lock": '[[package]]\nname = "Jinja2"\nversion = "3.1.4"\n\n[[package]]\nname = "markupsafe"\n'
                       'version = "2.1.5"\n',
        "Pipfile.lock": json.dumps({"default": {"idna": {"version": "==3.10"}},
                                    "develop": {"pytest": {"version": "==8.3.3"}, "local": {"path": "."}}}, indent=1),
        "a/package-lock.json": json.dumps({"lockfileVersion": 1, "dependencies": {
            "express": {"version": "4.21.0", "dependencies": {"qs": {"version": "6.13.0"}}},
            "mine": {"version": "file:../mine"}}}, indent=1),
        "b/package-lock.json": json.dumps({"lockfileVersion": 3, "packages": {
            "": {"name": "b"}, "node_modules/@scope/x": {"version": "1.0.0"},
            "node_modules/a/node_modules/y": {"version": "2.0.0"}, "node_modules/ws": {"link": True}}}, indent=1),
        "go.sum": "golang.org/x/net v0.30.0 h1:AA=\ngolang.org/x/net v0.30.0/go.mod h1:BB=\n"
                  "golang.org/x/sys v0.26.0/go.mod h1:CC=\n",
    })
    deps = {(d[0], d[3], d[4]) for d in _deps(tree)}
    assert deps == {
        ("Pipfile.lock", "idna", "3.10"), ("Pipfile.lock", "pytest", "8.3.3"), ("Pipfile.lock", "local", None),
        ("poetry.lock", "jinja2", "3.1.4"), ("poetry.lock", "markupsafe", "2.1.5"),
        ("package-lock.json", "express", "4.21.0"), ("package-lock.json", "qs", "6.13.0"),
        ("package-lock.json", "@scope/x", "1.0.0"), ("package-lock.json", "y", "2.0.0"),
        ("go.sum", "golang.org/x/net", "v0.30.0"), ("go.sum", "golang.org/x/sys", "v0.26.0"),
    }
    lines = {d[3]: d[1] for d in _deps(tree)}
    assert lines["markupsafe"] == 6 and lines["golang.org/x/sys"] == 3


@pytest.mark.parametrize("name, text, where", [
    ("poetry.lock", "[[package]\nname=", "poetry.lock"),
    ("go.sum", "golang.org/x/net v0.30.0\n", "go.sum:1"),
    ("Pipfile.lock", "{", "Pipfile.lock:1"),
    ("package-lock.json", "{}", "package-lock.json"),
])
def test_unparseable_dependency_files_name_the_file(tmp_path, name, text, where):
    tree = _tree(tmp_path, {name: text})
    with pytest.raises(DataUnavailable) as exc:
        code_deps.collect(tree)
    assert exc.value.source == f"{tmp_path}/{where}"


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=debian:12
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE} AS base
RUN useradd app
USER app

FROM base AS build
RUN make \\
    # a comment inside a continued RUN is dropped
    all
ENV A=1 B="two words" \\
    C=3

FROM golang:${TAG} AS tools
ENV GOFLAGS -mod=readonly
USER root

FROM build
COPY --from=tools /go/bin/x /x
"""


def test_dockerfile_stages_continuations_and_inherited_user(tmp_path):
    tree = _tree(tmp_path, {"Dockerfile": DOCKERFILE})
    (df,) = code_dockerfile.collect(tree)
    assert [(s.index, s.image, s.name, s.line) for s in df.stages] == [
        (0, "debian:12", "base", 4), (1, "base", "build", 8), (2, "golang:${TAG}", "tools", 15), (3, "build", None, 19)]
    run = df.stages[1].all("RUN")[0]
    assert run.line == 9 and " ".join(run.value.split()) == "make all"
    assert code_dockerfile.assignments(df.stages[1].all("ENV")[0]) == ["A", "B", "C"]
    assert code_dockerfile.assignments(df.stages[2].all("ENV")[0]) == ["GOFLAGS"]
    # the final stage sets no USER: it inherits "app" through build -> base, not "root" from tools
    user, ins = df.effective_user()
    assert (user, ins.line) == ("app", 6)
    assert [s.image for s in df.external_images()] == ["debian:12", "golang:${TAG}"]
    assert df.global_args == {"BASE": "debian:12", "TAG": None}
    assert df.global_arg_lines == {"BASE": 2, "TAG": 3}


@pytest.mark.parametrize("user, root", [("root", True), ("0", True), ("0:0", True), ("root:app", True),
                                        ("app", False), ("10001:10001", False), ("1000", False)])
def test_is_root(user, root):
    assert code_dockerfile.is_root(user) is root


@pytest.mark.parametrize("command, runs", [
    ("k4c run --cluster prod --html report.html", True),
    ("pip install k4c-pytest && pytest --pyargs k4c_pytest.suites", True),
    ("pytest \\\n  --k4c-source=.", True),
    ("python -m k4c_pytest.cli run", True),
    ("# k4c run (disabled)\npytest tests/", False),
    ("pytest tests/ -k k4c", False),
    ("echo k4c", False),
])
def test_runs_k4c(command, runs):
    assert code_ci.runs_k4c(command) is runs


def test_ci_systems(tmp_path):
    tree = _tree(tmp_path, {
        ".gitlab-ci.yml": "stages: [test]\ncompliance:\n  script:\n    - pip install k4c-pytest\n"
                          "    - k4c run --manifests deploy\nlint:\n  script: [ruff check]\n",
        ".ci/run": "#!/bin/sh\nset -e\nmake test\n",
        ".github/workflows/docs.yml": "on: push\njobs:\n  docs:\n    steps:\n      - run: mkdocs build\n",
        ".github/workflows/sub/ignored.yml": "not: a workflow\n",
    })
    found = [(Path(c["file"]).name, c["system"], c["runs_k4c"], c["where"]) for c in code_ci.collect(tree)]
    assert found == [("run", "script in .ci/", False, ""), ("docs.yml", "GitHub Actions", False, ""),
                     (".gitlab-ci.yml", "GitLab CI", True, "compliance.script")]


def test_workflow_without_jobs_errors(tmp_path):
    tree = _tree(tmp_path, {".github/workflows/x.yml": "name: x\n"})
    with pytest.raises(DataUnavailable) as exc:
        code_ci.collect(tree)
    assert exc.value.reason == "not a GitHub Actions workflow: no 'jobs' mapping"


def test_tree_skips_tool_folders_and_names_files_as_given(tmp_path, monkeypatch):
    _tree(tmp_path, {"repo/app.py": "", "repo/node_modules/x/index.js": "", "repo/.git/config": "",
                     "repo/.venv/lib/y.py": "", "repo/build/z.py": ""})
    monkeypatch.chdir(tmp_path)
    tree = SourceTree("./repo/")
    assert [tree.display(p) for p in tree.files()] == ["repo/app.py", "repo/build/z.py"]
    assert SourceTree(".").display(tmp_path / "repo" / "app.py") == "repo/app.py"
