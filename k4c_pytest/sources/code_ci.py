"""CI configurations of a source tree and whether they run k4c.

Read: GitHub Actions workflows (``.github/workflows/*.yml|yaml``: every step's ``run``; a job or
step whose ``if`` is ``false`` never runs and does not count; ``uses`` is not followed), GitLab CI
(``.gitlab-ci.yml``: every job's ``script``, ``before_script`` and ``after_script``; a job with
``when: never`` does not count) and scripts in ``.ci/``.

Each shell line (continuations joined, ``#`` comments dropped) is split into simple commands
(``;``, ``&&``, ``||``, ``|``), quotes honoured. A command runs k4c when its program, after
variable assignments and wrappers (``sudo``, ``env``, ``time``, ``exec``, ``uv run``,
``poetry run``...), is the ``k4c`` CLI (``k4c run|demo|collect``), pytest with a ``--k4c-``
option or a ``k4c_pytest`` argument (``--pyargs k4c_pytest.suites``), ``python -m pytest`` the
same, or ``python -m k4c_pytest``; ``sh -c '...'`` is read inside. Text that is only printed
(``echo "pytest --k4c-..."``) does not count. A command ``make [TARGET...]`` is followed one
level: the recipe of each target in the tree's own Makefile (``Makefile``, ``makefile`` or
``GNUmakefile`` at the root, or as ``-C DIR``/``-f FILE`` say; the default goal without a
target; the Makefile's own variables expanded) is read the same way, without following the
``make`` commands it runs in turn.

A configuration or Makefile that cannot be parsed or read is a DataUnavailable naming it.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_tree import SourceTree

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_SEPARATORS = {";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "{", "}"}
_WRAPPERS = {"sudo", "env", "time", "exec", "nice", "nohup", "command", "xvfb-run", "stdbuf", "ionice", "timeout"}
_RUNNERS = {"uv", "poetry", "pipenv", "pdm", "hatch", "rye"}  # "<runner> run <command>"
_PRINTERS = {"echo", "printf", ":", "true", "false", "cat", "test", "["}
_SHELLS = {"sh", "bash", "zsh", "dash", "ash", "ksh"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_MAKEFILES = ("GNUmakefile", "makefile", "Makefile")


# -- shell ------------------------------------------------------------------------------------

def _strip_comment(line: str) -> str:
    """``line`` without its ``#`` comment: a ``#`` starting a word outside quotes, as the shell reads it."""
    quote = None
    prev = " "
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and prev in " \t;&|()":
            return line[:i]
        prev = c
        i += 1
    return line


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first line number, line)`` of a script: backslash continuations joined, comments dropped."""
    pending: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = n
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = _strip_comment(" ".join(pending)).strip()
        pending = []
        if line:
            yield start, line
    if pending:
        line = _strip_comment(" ".join(pending)).strip()
        if line:
            yield start, line


def _words(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        return list(lex)
    except ValueError:  # unbalanced quote: the words as the blanks separate them
        return line.split()


def commands(line: str) -> Iterator[list[str]]:
    """The simple commands of one logical shell line, as word lists."""
    current: list[str] = []
    for w in _words(line):
        if w in _SEPARATORS or (w and set(w) <= set(";&|()")):
            if current:
                yield current
            current = []
        else:
            current.append(w)
    if current:
        yield current


def _unwrap(words: list[str]) -> list[str]:
    """The command without leading variable assignments and wrappers (``sudo``, ``env``, ``uv run``...)."""
    while words:
        head = os.path.basename(words[0])
        if _ASSIGNMENT.match(words[0]):
            words = words[1:]
        elif head in _WRAPPERS:
            words = words[1:]
            while words and (words[0].startswith("-") or (head == "env" and _ASSIGNMENT.match(words[0]))):
                words = words[1:]
            if head == "timeout" and words:
                words = words[1:]  # the duration
        elif head in _RUNNERS and len(words) > 1 and words[1] == "run":
            words = words[2:]
            while words and words[0].startswith("-"):
                words = words[1:]
        else:
            break
    return words


def _program(words: list[str]) -> tuple[str, list[str]]:
    """``(program, arguments)``: the program's file name, or ``-m <module>`` for ``python -m``."""
    words = _unwrap(words)
    if not words:
        return "", []
    prog = os.path.basename(words[0])
    if _PYTHON.match(prog):
        args = words[1:]
        while args and args[0].startswith("-") and args[0] != "-m":
            args = args[1:]
        if len(args) >= 2 and args[0] == "-m":
            return f"-m {args[1]}", args[2:]
    return prog, words[1:]


def _command_runs_k4c(words: list[str], depth: int = 0) -> bool:
    prog, args = _program(words)
    if prog in _PRINTERS or not prog:
        return False
    if prog in ("pytest", "py.test", "-m pytest"):
        return any("--k4c-" in a or "k4c_pytest" in a for a in args)
    if prog == "k4c":
        verb = next((a for a in args if not a.startswith("-")), "")
        return verb in ("run", "demo", "collect")
    if prog == "-m k4c_pytest" or prog.startswith("-m k4c_pytest."):
        return True
    if prog in _SHELLS and "-c" in args and depth < 3:
        i = args.index("-c")
        if i + 1 < len(args):
            return any(_command_runs_k4c(c, depth + 1) for line in args[i + 1].splitlines()
                       for c in commands(line))
    return False


def runs_k4c(command: str) -> bool:
    """Whether a shell command (or script) runs k4c itself (``make`` not followed; see :class:`CiReader`)."""
    return any(_command_runs_k4c(c) for _, line in logical_lines(command) for c in commands(line))


# -- make -------------------------------------------------------------------------------------

@dataclass
class Makefile:
    """The targets, recipes (``(line, command)`` each) and variables of one Makefile."""

    path: str
    recipes: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    default: str | None = None

    _RULE = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)\s*(.*)$")
    _VARIABLE = re.compile(r"^(?:export\s+|override\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(\?=|:=|::=|\+=|!=|=)\s*(.*)$")

    @classmethod
    def parse(cls, path: str, text: str) -> "Makefile":
        mk = cls(path)
        current: list[str] = []
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            n, raw = i + 1, lines[i]
            while raw.endswith("\\") and i + 1 < len(lines):  # continued line (recipe or not)
                i += 1
                raw = raw[:-1] + " " + lines[i].lstrip("\t")
            i += 1
            if raw.startswith("\t"):
                cmd = raw[1:].lstrip("@-+ \t")
                if current and cmd.strip() and not cmd.lstrip().startswith("#"):
                    for target in current:
                        mk.recipes.setdefault(target, []).append((n, cmd))
                continue
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            var = cls._VARIABLE.match(line)
            if var:
                name, op, value = var.groups()
                if op == "+=":
                    mk.variables[name] = (mk.variables.get(name, "") + " " + value).strip()
                elif op == "?=":
                    mk.variables.setdefault(name, value)
                elif op != "!=":  # a shell command's output: unknown here
                    mk.variables[name] = value
                current = []
                continue
            rule = cls._RULE.match(line)
            if rule:
                targets = rule.group(1).split()
                current = targets
                recipe = rule.group(2)
                if ";" in recipe:  # "target: prereqs ; command"
                    cmd = recipe.split(";", 1)[1].strip()
                    if cmd:
                        for target in current:
                            mk.recipes.setdefault(target, []).append((n, cmd))
                for t in targets:
                    mk.recipes.setdefault(t, mk.recipes.get(t, []))
                    if mk.default is None and not t.startswith(".") and "%" not in t:
                        mk.default = t
                continue
            current = []
        return mk

    def expand(self, text: str, depth: int = 0) -> str:
        """``text`` with the Makefile's variables substituted (unknown ones and functions: empty)."""
        def sub(m: re.Match) -> str:
            name = m.group(1) or m.group(2)
            if name == "MAKE":
                return "make"
            value = self.variables.get(name, "")
            return self.expand(value, depth + 1) if depth < 8 else value

        text = text.replace("$$", "\0")
        text = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}", sub, text)
        text = re.sub(r"\$\([a-z]+ [^)]*\)", "", text)  # $(shell ...), $(wildcard ...): not evaluated
        return text.replace("\0", "$")


class CiReader:
    """Reads whether commands run k4c in one tree, following ``make`` targets one level."""

    def __init__(self, tree: SourceTree):
        self.tree = tree
        self._makefiles: dict[Path, Makefile | None] = {}

    def _makefile(self, folder: Path, name: str | None) -> Makefile | None:
        candidates = [folder / name] if name else [folder / n for n in _MAKEFILES]
        for path in candidates:
            if path in self._makefiles:
                if self._makefiles[path] is not None:
                    return self._makefiles[path]
                continue
            if path.is_file():
                mk = Makefile.parse(self.tree.display(path), self.tree.read_text(path))
                self._makefiles[path] = mk
                return mk
            self._makefiles[path] = None
        return None

    def _make(self, args: list[str]) -> tuple[list[str], list[str]]:
        """The targets a ``make`` command builds, and where their recipes run k4c (``Makefile:62`` each)."""
        folder, name, targets = self.tree.path, None, []
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-C", "--directory") and i + 1 < len(args):
                folder, i = folder / args[i + 1], i + 2
                continue
            if a in ("-f", "--file", "--makefile") and i + 1 < len(args):
                name, i = args[i + 1], i + 2
                continue
            if a.startswith("--directory="):
                folder = folder / a.split("=", 1)[1]
            elif a.startswith(("--file=", "--makefile=")):
                name = a.split("=", 1)[1]
            elif a in ("-j", "--jobs", "-l", "--load-average", "-o", "-W", "-I") and i + 1 < len(args) and \
                    (a not in ("-j", "-l") or args[i + 1].isdigit()):
                i += 1
            elif not a.startswith("-") and not _ASSIGNMENT.match(a):
                targets.append(a)
            i += 1
        if not (folder / (name or ".")).resolve().is_relative_to(self.tree.path):
            return targets, []  # a Makefile outside the tree is not the tree's
        mk = self._makefile(folder, name)
        if mk is None:
            return targets, []
        targets = targets or ([mk.default] if mk.default else [])
        hits = []
        for target in targets:
            for n, cmd in mk.recipes.get(target, ()):
                if any(_command_runs_k4c(c) for _, line in logical_lines(mk.expand(cmd)) for c in commands(line)):
                    hits.append(f"{mk.path}:{n}")
        return targets, hits

    def where(self, script: str) -> list[tuple[int, str]]:
        """``(line, how)`` of each logical line of ``script`` that runs k4c; ``how`` names the Makefile
        recipe line for a ``make`` command ("" when the line runs k4c itself)."""
        out = []
        for n, line in logical_lines(script):
            for c in commands(line):
                if _command_runs_k4c(c):
                    out.append((n, ""))
                    break
                prog, args = _program(c)
                if prog in ("make", "gmake"):
                    targets, hits = self._make(args)
                    if hits:
                        out.append((n, f"make {' '.join(targets)} -> {', '.join(hits)}"))
                        break
        return out

    def describe(self, script: str) -> list[str]:
        """Short descriptions of the hits in ``script``: ``""`` or ``make test -> Makefile:62``."""
        return [how for _, how in self.where(script)]


# -- configurations ---------------------------------------------------------------------------

def _yaml(tree: SourceTree, path: Path) -> Any:
    try:
        return yaml.load(tree.read_text(path), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{tree.display(path)}:{mark.line + 1}" if mark is not None else tree.display(path)
        raise DataUnavailable(where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _lines(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _lines(v)


def _disabled(condition: Any) -> bool:
    """Whether a GitHub Actions ``if`` is the constant false (``false``, ``${{ false }}``)."""
    if condition is False:
        return True
    if isinstance(condition, str):
        text = re.sub(r"\s+", "", condition).lower()
        return text in ("false", "${{false}}")
    return False


def _label(where: str, how: str) -> str:
    return f"{where} ({how})" if how else where


def _github(reader: CiReader, path: Path) -> dict[str, Any]:
    tree = reader.tree
    doc = _yaml(tree, path)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise DataUnavailable(tree.display(path), "not a GitHub Actions workflow: no 'jobs' mapping")
    hits = []
    for job_id, job in doc["jobs"].items():
        job = job if isinstance(job, dict) else {}
        if _disabled(job.get("if")):
            continue
        for i, step in enumerate(job.get("steps") or ()):
            if not isinstance(step, dict) or _disabled(step.get("if")):
                continue
            found = reader.describe(str(step.get("run", "")))
            if found:
                hits.append(_label(f"jobs.{job_id}.steps[{i}]", found[0]))
    return {"file": tree.display(path), "system": "GitHub Actions", "runs_k4c": bool(hits), "where": ", ".join(hits)}


def _gitlab(reader: CiReader, path: Path) -> dict[str, Any]:
    tree = reader.tree
    doc = _yaml(tree, path)
    if not isinstance(doc, dict):
        raise DataUnavailable(tree.display(path), "not a GitLab CI configuration: not a mapping")
    hits = []
    for name, job in doc.items():
        if not isinstance(job, dict) or job.get("when") == "never":
            continue
        for key in ("before_script", "script", "after_script"):
            found = [how for line in _lines(job.get(key)) for how in reader.describe(line)]
            if found:
                hits.append(_label(f"{name}.{key}", found[0]))
    return {"file": tree.display(path), "system": "GitLab CI", "runs_k4c": bool(hits), "where": ", ".join(hits)}


def _script(reader: CiReader, path: Path) -> dict[str, Any]:
    tree = reader.tree
    found = reader.where(tree.read_text(path))
    return {"file": tree.display(path), "system": "script in .ci/", "runs_k4c": bool(found),
            "where": ", ".join(_label(f"line {n}", how) for n, how in found)}


def collect(tree: SourceTree) -> list[dict[str, Any]]:
    """Every CI configuration of the tree: ``{"file", "system", "runs_k4c", "where"}``."""
    if tree.path.is_file():
        return []
    reader = CiReader(tree)
    out = []
    for path in tree.files():
        rel = tree.relative(path)
        if rel.startswith(".github/workflows/") and path.suffix in (".yml", ".yaml") and rel.count("/") == 2:
            out.append(_github(reader, path))
        elif rel == ".gitlab-ci.yml":
            out.append(_gitlab(reader, path))
        elif rel.startswith(".ci/"):
            out.append(_script(reader, path))
    return out
