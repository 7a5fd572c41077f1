"""Built-in workflow templates (`maestro templates`) and `maestro init`, which copies one.

A template is a YAML file in maestro_cli/templates/ whose first line is `# <description>`;
the file name is the template's name. They ship as package data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_TEMPLATE = "demo"


class ScaffoldError(Exception):
    """A template that does not exist, or a file `init` must not overwrite."""


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    text: str


def _description(name: str, text: str) -> str:
    first = text.splitlines()[0] if text else ""
    if not first.startswith("#"):
        raise ScaffoldError(f"template {name!r} does not start with a `# description` line")
    return first.lstrip("#").strip()


def list_templates() -> list[Template]:
    """Every built-in template, sorted by name."""
    folder = resources.files("maestro_cli") / "templates"
    templates = []
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            name = entry.name.removesuffix(".yaml")
            text = entry.read_text(encoding="utf-8")
            templates.append(Template(name, _description(name, text), text))
    return sorted(templates, key=lambda t: t.name)


def template_names() -> list[str]:
    return [t.name for t in list_templates()]


def get_template(name: str) -> Template:
    for template in list_templates():
        if template.name == name:
            return template
    raise ScaffoldError(
        f"unknown template {name!r}; built-in templates: {', '.join(template_names())}"
    )


def init_project(
    directory: Path, template_name: str = DEFAULT_TEMPLATE, force: bool = False
) -> Path:
    """Write `<directory>/workflows/<template>.yaml`; refuses to overwrite unless forced."""
    return write_template(directory / "workflows", template_name, force)


def write_template(folder: Path, template_name: str, force: bool = False) -> Path:
    """Write `<folder>/<template>.yaml` (a workflows folder); refuses to overwrite unless
    forced."""
    template = get_template(template_name)
    target = folder / f"{template.name}.yaml"
    if target.exists() and not force:
        raise ScaffoldError(f"{target} already exists (use --force to overwrite it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: an interrupted init leaves no half-written file.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(template.text, encoding="utf-8")
    partial.replace(target)
    return target
