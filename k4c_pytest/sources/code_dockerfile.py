"""Dockerfiles of a source tree, parsed by ``dockerfile-parse`` into stages and instructions.

The parser joins line continuations and drops comments (also those inside a continued
instruction); this module splits the result into build stages at each ``FROM`` and resolves
what the controls ask about a multi-stage build: the final stage, the user it runs as (also
when it is inherited from an earlier stage it is built ``FROM``), the base images, global
``ARG`` defaults substituted. Instruction values are kept in memory for the controls' checks;
controls put only file, line, instruction and key names in the evidence, never values.
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_tree import SourceTree

PATTERNS = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile", "Containerfile", "Containerfile.*")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")
_ROOT_USERS = {"root", "0"}


@dataclass
class Instruction:
    """One instruction: its keyword (upper case), 1-based first line, and value after the keyword."""

    instruction: str
    line: int
    value: str


@dataclass
class Stage:
    """One build stage: the ``FROM`` image (global ARGs substituted), its name and instructions."""

    index: int
    image: str
    name: str | None
    line: int
    platform: str | None = None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, *keywords: str) -> list[Instruction]:
        return [i for i in self.instructions if i.instruction in keywords]


def _substitute(text: str, args: dict[str, str | None]) -> str:
    # An ARG without a default stays as written: its value comes from --build-arg, unknown here.
    return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2)) or m.group(0), text)


class Dockerfile:
    """A parsed Dockerfile: ``stages`` in order, ``path`` (as findings name it)."""

    def __init__(self, path: str, stages: list[Stage], global_args: dict[str, str | None],
                 global_arg_lines: dict[str, int] | None = None):
        self.path = path
        self.stages = stages
        self.global_args = global_args
        #: line of the ``ARG`` (before the first ``FROM``) declaring each global build argument
        self.global_arg_lines = global_arg_lines or {}

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_named(self, name: str) -> Stage | None:
        for s in self.stages:
            if s.name and s.name.lower() == name.lower():
                return s
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None

    def parent_stage(self, stage: Stage) -> Stage | None:
        """The earlier stage ``stage`` is built ``FROM``, or None when it starts from an image."""
        parent = self.stage_named(stage.image)
        return parent if parent is not None and parent.index < stage.index else None

    def effective_user(self, stage: Stage | None = None) -> tuple[str | None, Instruction | None]:
        """The user a stage's image runs as and the ``USER`` that set it, following the stages it
        is built from; ``(None, None)`` when no stage of the chain sets one (the base image's)."""
        stage = stage or self.final
        while stage is not None:
            users = stage.all("USER")
            if users:
                return users[-1].value.strip(), users[-1]
            stage = self.parent_stage(stage)
        return None, None

    def external_images(self) -> list[Stage]:
        """Stages built from an image, not from an earlier stage nor ``scratch``."""
        return [s for s in self.stages if self.parent_stage(s) is None and s.image.lower() != "scratch"]


def is_root(user: str) -> bool:
    """Whether a ``USER`` value (``name``, ``uid``, ``name:group``) runs as root."""
    who = user.split(":", 1)[0].strip()
    return who in _ROOT_USERS


def assignments(ins: Instruction) -> list[str]:
    """The variable names an ``ENV`` or ``ARG`` instruction sets (``ENV a=1 b=2``, ``ENV a 1``, ``ARG a``)."""
    return [name for name, _ in assigned_values(ins)]


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:  # an unbalanced quote: split on blanks, as the value stays in memory only
        return text.split()


def assigned_values(ins: Instruction) -> list[tuple[str, str | None]]:
    """``(name, value)`` of each variable an ``ENV`` or ``ARG`` instruction sets, quotes removed;
    ``None`` for an ``ARG`` without a default. The values are for the secret checks only: they
    are never put in evidence."""
    value = ins.value.strip()
    if ins.instruction == "ARG":
        out: list[tuple[str, str | None]] = []
        for w in _words(value):
            name, eq, default = w.partition("=")
            out.append((name, default if eq else None))
        return out
    words = _words(value)
    if words and "=" not in words[0]:  # legacy form: ENV NAME value with spaces
        rest = value.split(None, 1)[1] if len(value.split(None, 1)) > 1 else ""
        return [(words[0], " ".join(_words(rest)))]
    return [(w.split("=", 1)[0], w.split("=", 1)[1]) for w in words if "=" in w]


def parse(tree: SourceTree, path: Path) -> Dockerfile:
    """Parse one Dockerfile. Not UTF-8, unreadable or without any ``FROM``: DataUnavailable."""
    from dockerfile_parse import DockerfileParser

    text = tree.read_text(path)
    name = tree.display(path)
    try:
        parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
        structure: list[dict[str, Any]] = parser.structure
    except Exception as exc:  # the parser failing on this file: Dockerfile controls ERROR naming it
        raise DataUnavailable(name, f"dockerfile-parse failed: {type(exc).__name__}: {exc}") from None
    stages: list[Stage] = []
    global_args: dict[str, str | None] = {}
    global_lines: dict[str, int] = {}
    for item in structure:
        kw = item["instruction"].upper()
        line = item["startline"] + 1
        if kw == "COMMENT":
            continue
        if kw == "FROM":
            words = item["value"].split()
            platform = next((w.split("=", 1)[1] for w in words if w.startswith("--platform=")), None)
            words = [w for w in words if not w.startswith("--")]
            if not words:
                raise DataUnavailable(f"{name}:{line}", "FROM without an image")
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), _substitute(words[0], global_args), alias, line, platform))
            continue
        if not stages:
            if kw == "ARG":  # only ARG may come before the first FROM: it parameterises FROM lines
                for word in item["value"].split():
                    key, eq, default = word.partition("=")
                    global_args[key] = default.strip("\"'") if eq else None
                    global_lines[key] = line
                continue
            if kw in ("PARSER_DIRECTIVE",):
                continue
            raise DataUnavailable(f"{name}:{line}", f"{kw} before the first FROM: not a valid Dockerfile")
        stages[-1].instructions.append(Instruction(kw, line, item["value"]))
    if not stages:
        raise DataUnavailable(name, "no FROM instruction: not a Dockerfile")
    return Dockerfile(name, stages, global_args, global_lines)


def collect(tree: SourceTree) -> list[Dockerfile]:
    """Every Dockerfile of the tree, parsed."""
    return [parse(tree, p) for p in tree.glob(*PATTERNS)]
