"""K4C-CODE-CI-001's reading of CI configurations: commands, not text (echo does not run k4c),
continuations joined, disabled GitHub jobs and steps left out, ``make`` targets followed one
level into the tree's Makefile; and k4c's own tree passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import code_ci
from k4c_pytest.sources.code_tree import SourceTree

from code_fixtures import REPO


def _tree(tmp_path: Path, files: dict[str, str | bytes]) -> SourceTree:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return SourceTree(str(tmp_path))


def _found(tree: SourceTree) -> list[tuple[str, bool, str]]:
    return [(Path(c["file"]).name, c["runs_k4c"], c["where"]) for c in code_ci.collect(tree)]


@pytest.mark.parametrize("command, runs", [
    ('echo "pytest --k4c-source=."', False),
    ("printf '%s\\n' 'k4c run --manifests deploy'", False),
    ('echo "run: pytest --k4c-source=." > ci.txt && cat ci.txt', False),
    ("make test # k4c run", False),
    ("ruff check . || echo k4c run skipped", False),
    ("bash -c 'pytest --k4c-source=.'", True),
    ("A=1 B='x y' uv run --frozen pytest --k4c-source=.", True),
    ("sudo -E env K4C=1 timeout 600 .venv/bin/k4c run --suite code", True),
    ("python3 -m pytest -q --pyargs k4c_pytest.suites", True),
    ("echo start; cd repo && pytest \\\n    --k4c-source=.", True),
    ("curl -o x https://example.com/#k4c run", False),
    ("echo a#b && k4c run", True),
])
def test_commands_are_read_as_the_shell_splits_them(command, runs):
    assert code_ci.runs_k4c(command) is runs


MAKEFILE = """\
BIN := .venv/bin
PYTEST_ARGS ?= -q --k4c-source=.

.PHONY: all test check lint echo nested
all: lint

lint:
\t@ruff check .

test: lint
\t$(BIN)/pytest \\
\t  --pyargs k4c_pytest.suites --k4c-source=.

check:
\t-$(BIN)/pytest $(PYTEST_ARGS)

echo:
\t@echo "pytest --k4c-source=."

nested:
\t$(MAKE) test
"""


@pytest.mark.parametrize("script, runs, where", [
    ("make test", True, "line 3 (make test -> {tree}/Makefile:11)"),
    ("make -j 2 V=1 check", True, "line 3 (make check -> {tree}/Makefile:15)"),
    ("make lint echo", False, ""),  # only prints the command
    ("make", False, ""),  # the default goal, all: lint
    ("make nested", False, ""),  # followed one level only
    ("make missing", False, ""),
    ("echo make test", False, ""),
])
def test_make_targets_are_followed_one_level(tmp_path, script, runs, where):
    tree = _tree(tmp_path, {"Makefile": MAKEFILE, ".ci/run": f"#!/bin/sh\nset -e\n{script}\n"})
    assert _found(tree) == [("run", runs, where.format(tree=tmp_path))]


def test_make_directory_and_file_options(tmp_path):
    tree = _tree(tmp_path, {"sub/Makefile": MAKEFILE, "ci.mk": MAKEFILE, ".ci/a": "make -C sub test\n",
                            ".ci/b": "make -f ci.mk check\n", ".ci/c": "make test\n"})
    assert _found(tree) == [("a", True, f"line 1 (make test -> {tmp_path}/sub/Makefile:11)"),
                            ("b", True, f"line 1 (make check -> {tmp_path}/ci.mk:15)"),
                            ("c", False, "")]  # no Makefile at the root


def test_a_makefile_that_cannot_be_read_errors_naming_it(tmp_path):
    tree = _tree(tmp_path, {"Makefile": b"test:\n\t\xff\xfe pytest\n", ".ci/run": "make test\n"})
    with pytest.raises(DataUnavailable) as exc:
        code_ci.collect(tree)
    assert exc.value.source == f"{tmp_path}/Makefile"


def test_script_continuations_are_joined(tmp_path):
    tree = _tree(tmp_path, {".ci/run": "#!/bin/sh\nset -e\n.venv/bin/pytest \\\n  -q \\\n  --k4c-source=.\n"})
    assert _found(tree) == [("run", True, "line 3")]


WORKFLOW = """\
on: push
jobs:
  off:
    if: false
    runs-on: ubuntu-latest
    steps:
      - run: pytest --k4c-source=.
  steps-off:
    runs-on: ubuntu-latest
    steps:
      - if: ${{ false }}
        run: k4c run --suite code
      - if: "false"
        run: pytest --k4c-source=.
      - run: echo "pytest --k4c-source=."
%s"""


def test_disabled_github_jobs_and_steps_do_not_count(tmp_path):
    tree = _tree(tmp_path, {".github/workflows/ci.yml": WORKFLOW % ""})
    assert _found(tree) == [("ci.yml", False, "")]
    enabled = ("  on-push:\n    if: github.event_name == 'push'\n    runs-on: ubuntu-latest\n    steps:\n"
               "      - uses: actions/checkout@v4\n      - run: make test\n")
    tree = _tree(tmp_path, {".github/workflows/ci.yml": WORKFLOW % enabled, "Makefile": MAKEFILE})
    assert _found(tree) == [("ci.yml", True, f"jobs.on-push.steps[1] (make test -> {tmp_path}/Makefile:11)")]


def test_gitlab_jobs_that_never_run_do_not_count(tmp_path):
    tree = _tree(tmp_path, {".gitlab-ci.yml": "k4c:\n  when: never\n  script: [k4c run]\n"})
    assert _found(tree) == [(".gitlab-ci.yml", False, "")]


def test_k4c_own_tree_passes_its_ci_control(k4c_code):
    # .ci/run calls `make test`, whose recipe runs `k4c run` on this tree
    res = k4c_code(REPO, k="ci_runs_k4c")
    assert res.outcomes()["K4C-CODE-CI-001"] == "PASS", res.stdout[-3000:]
    rows = [r for r in res.offenders("K4C-CODE-CI-001") if r.get("system") == "script in .ci/"]
    assert [(Path(r["file"]).relative_to(REPO).as_posix(), r["runs k4c"]) for r in rows] == [(".ci/run", True)]
    assert "make test -> " in rows[0]["where"] and "/Makefile:" in rows[0]["where"]
