"""Prompt templates for LLM steps: a built-in library plus the workflow's own `prompts/` folder.

A template is a Jinja file `<name>.j2`, rendered in a sandbox with strict undefined. Its first
line is a comment that says what it is for and which variables may be left out:
`{# Summarize a text. optional: max_words, audience #}`; every other variable it reads is
required, so a missing one is reported when the workflow compiles, not when the model is paid.
User templates (`prompts/<name>.j2` beside the workflow file) win over built-ins of that name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta

from maestro_common.template_sandbox import BoundedSandbox, render_limits

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "prompt_templates"
USER_DIR_NAME = "prompts"
SUFFIX = ".j2"
_HEADER = re.compile(r"^\{#-?\s*(?P<text>.*?)\s*-?#\}", re.DOTALL)
_OPTIONAL = re.compile(r"optional:\s*(?P<names>[\w\s,]+?)\s*$")
_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


class PromptTemplateError(ValueError):
    """An unknown template, a missing variable or a template that does not render."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    path: Path
    source: str
    description: str
    required: frozenset[str]
    optional: frozenset[str]

    def missing(self, variables: Mapping[str, Any]) -> list[str]:
        return sorted(self.required - set(variables))

    def render(self, variables: Mapping[str, Any]) -> str:
        """The prompt text; every variable the template reads must be given or optional."""
        missing = self.missing(variables)
        if missing:
            raise PromptTemplateError(
                f"prompt template {self.name!r} needs template_variables: {', '.join(missing)}"
            )
        scope = {name: None for name in self.optional} | dict(variables)
        try:
            with render_limits():
                return _compiled(self.source).render(scope).strip() + "\n"
        except TemplateError as exc:
            raise PromptTemplateError(f"prompt template {self.name!r}: {exc}") from exc


@functools.cache
def _environment() -> BoundedSandbox:
    """The bounded sandbox of the DSL's templates (maestro_common/template_sandbox.py)."""
    return BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=True)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """Compiling a template costs a millisecond: each step would pay it twice (the budget
    estimate, then the call), so a source is compiled once per process."""
    return _environment().from_string(source)


@functools.lru_cache(maxsize=256)
def _variables(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_environment().parse(source)))


def _parse(name: str, path: Path) -> PromptTemplate:
    source = path.read_text(encoding="utf-8")
    try:
        variables = _variables(source)
    except TemplateError as exc:
        raise PromptTemplateError(f"prompt template {name!r} ({path}): {exc}") from exc
    header = _HEADER.match(source)
    text = header.group("text") if header else ""
    optional_match = _OPTIONAL.search(text)
    optional = (
        {n.strip() for n in optional_match.group("names").split(",") if n.strip()}
        if optional_match
        else set()
    )
    description = _OPTIONAL.sub("", text).strip()
    return PromptTemplate(
        name=name,
        path=path,
        source=source,
        description=description,
        required=frozenset(variables - optional),
        optional=frozenset(optional & variables),
    )


def template_dirs(workflow_dir: Path | None) -> list[Path]:
    dirs = [workflow_dir / USER_DIR_NAME] if workflow_dir is not None else []
    return [*dirs, BUILTIN_DIR]


def find_template(name: str, workflow_dir: Path | None = None) -> PromptTemplate:
    """The template called `name`: the workflow's `prompts/` first, then the built-ins."""
    if not _NAME.match(name):
        raise PromptTemplateError(f"invalid prompt template name {name!r}")
    for directory in template_dirs(workflow_dir):
        path = directory / f"{name}{SUFFIX}"
        if path.is_file():
            return _parse(name, path)
    known = ", ".join(sorted(available_templates(workflow_dir)))
    raise PromptTemplateError(f"unknown prompt template {name!r}; known templates: {known}")


def load_template_file(path: str | Path, name: str) -> PromptTemplate:
    """A template by the file the compiler resolved it to (user templates)."""
    file = Path(path)
    if not file.is_file():
        raise PromptTemplateError(f"prompt template {name!r}: {file} no longer exists")
    return _parse(name, file)


def available_templates(workflow_dir: Path | None = None) -> dict[str, Path]:
    """Template name -> file, user templates shadowing built-ins."""
    found: dict[str, Path] = {}
    for directory in reversed(template_dirs(workflow_dir)):
        if directory.is_dir():
            found.update({p.stem: p for p in directory.glob(f"*{SUFFIX}")})
    return found
