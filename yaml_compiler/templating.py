"""Jinja2 templates in the DSL: sandboxed, strict, and statically checked.

A template may read `params`, `run`, `steps.<id>.output`, `secrets.<NAME>` (declared names only)
and, inside `for_each` steps, `item` and `item_index`. Nothing else (the process environment
included) is reachable. References are found at compile time, so a reference to another
step's output becomes a data edge in the Dagster graph.
"""

from __future__ import annotations

import contextvars
import functools
import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from markupsafe import Markup

from maestro_common import shell_script
from maestro_common.template_sandbox import BoundedSandbox, bounded
from maestro_common.values import is_template

_READ_BY_KEY = {
    # Reading these whole would hide which steps (edges) and secrets a step uses.
    "steps": "read a step's output by id, e.g. steps.fetch.output",
    "secrets": "read a secret by name, e.g. secrets.API_TOKEN",
}
SCOPES = ("params", "run", "steps", "secrets", "item", "item_index")
RUN_FIELDS = ("id", "workflow", "tenant", "environment", "started_at")
_EXPRESSION_SPAN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPRESSION_ONLY = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class _DataFirstEnvironment(BoundedSandbox):
    """`params.items` and `steps.get.output` mean the keys, not the dict methods of that name.

    The sandbox bounds what a template builds and how long it works
    (maestro_common/template_sandbox.py; the limits are listed in docs/dsl.md)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _environment(output: Callable[[Any], Any] | None = None) -> BoundedSandbox:
    env = _DataFirstEnvironment(
        output=output, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.add_filter("shell_quote", lambda value: shlex.quote(str(value)))
    return env


_SHELL_VALUES: contextvars.ContextVar[tuple[str, list[str]]] = contextvars.ContextVar(
    "maestro_shell_values"
)


def _shell_placeholder(value: Any) -> str:
    """Each `{{ }}` of a `shell: true` script is set aside; the script gets a placeholder."""
    nonce, values = _SHELL_VALUES.get()
    values.append(str(value))
    return shell_script.placeholder(nonce, len(values) - 1)


ENV = _environment()
SHELL_ENV = _environment(output=_shell_placeholder)
"""For `shell: true` scripts: values become shell variables (maestro_common/shell_script.py)."""


def expression_source(text: str) -> str:
    """`when`/`for_each` accept `x > 1` and `{{ x > 1 }}`; return the bare expression."""
    match = _EXPRESSION_ONLY.match(text)
    return match.group(1).strip() if match and "{{" not in match.group(1) else text.strip()


@dataclass
class References:
    """What one template (or a whole `with` block) reads."""

    scopes: set[str] = field(default_factory=set)
    params: set[str] = field(default_factory=set)
    steps: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    run_fields: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def merge(self, other: References) -> None:
        self.scopes |= other.scopes
        self.params |= other.params
        self.steps |= other.steps
        self.secrets |= other.secrets
        self.run_fields |= other.run_fields
        self.problems.extend(other.problems)


def analyse_template(source: str, *, expression: bool = False) -> References:
    """List what a template reads; syntax errors land in `problems`.

    Templates mostly differ in their literal text, so a plain `... {{ expr }} ...` template is
    analysed expression by expression through the cache; anything else is parsed whole.
    """
    if not expression and "{%" not in source and "{#" not in source:
        spans = _EXPRESSION_SPAN.findall(source)
        if spans and "{{" not in _EXPRESSION_SPAN.sub("", source):
            refs = References()
            for span in spans:
                refs.merge(_analyse(span.strip(), expression=True))
            if not any(p.startswith("template syntax error") for p in refs.problems):
                return refs
    return _analyse(source, expression=expression)


@functools.lru_cache(maxsize=4096)
def _analyse(source: str, *, expression: bool) -> References:
    refs = References()
    text = f"{{{{ {source} }}}}" if expression else source
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        refs.problems.append(f"template syntax error: {exc.message}")
        return refs
    declared = _locally_declared(tree)
    for name_node in tree.find_all(nodes.Name):
        if name_node.ctx == "load" and name_node.name not in declared:
            refs.scopes.add(name_node.name)
    accesses: list[nodes.Getattr | nodes.Getitem] = list(
        tree.find_all((nodes.Getattr, nodes.Getitem))
    )
    for node in accesses:
        _record_access(node, refs, declared)
    bases = {id(node.node) for node in accesses}
    for name_node in tree.find_all(nodes.Name):
        bare = id(name_node) not in bases and name_node.name not in declared
        if bare and name_node.name in _READ_BY_KEY:
            refs.problems.append(_READ_BY_KEY[name_node.name])
    unknown = sorted(refs.scopes - set(SCOPES) - declared)
    for name in unknown:
        refs.problems.append(f"unknown name {name!r} in template: use one of {', '.join(SCOPES)}")
    return refs


def _locally_declared(tree: nodes.Template) -> set[str]:
    names: set[str] = set()
    for node in tree.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.Macro)):
        target = getattr(node, "target", None)
        if target is not None:
            names |= {n.name for n in target.find_all(nodes.Name)}
            if isinstance(target, nodes.Name):
                names.add(target.name)
        if isinstance(node, nodes.For):
            names.add("loop")
        if isinstance(node, nodes.Macro):
            names.add(node.name)
            names |= {arg.name for arg in node.args}
    return names


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
        return str(node.arg.value)
    return None


def _record_access(
    node: nodes.Getattr | nodes.Getitem, refs: References, declared: set[str]
) -> None:
    base = node.node
    if not isinstance(base, nodes.Name) or base.name in declared:
        return
    key = _key(node)
    if base.name == "params":
        if key is None:
            refs.problems.append("params must be read by name, e.g. params.region")
        else:
            refs.params.add(key)
    elif base.name == "secrets":
        if key is None:
            refs.problems.append("secrets must be read by name, e.g. secrets.API_TOKEN")
        else:
            refs.secrets.add(key)
    elif base.name == "run":
        if key is not None and key not in RUN_FIELDS:
            refs.problems.append(f"run has no field {key!r}: use one of {', '.join(RUN_FIELDS)}")
        elif key is not None:
            refs.run_fields.add(key)
    elif base.name == "steps":
        if key is None:
            refs.problems.append("steps must be read by id, e.g. steps.fetch.output")
        else:
            refs.steps.add(key)


@functools.lru_cache(maxsize=4096)
def _compiled_template(source: str, shell_quoted: bool) -> Any:
    return (SHELL_ENV if shell_quoted else ENV).from_string(source)


@functools.lru_cache(maxsize=4096)
def _compiled_expression(source: str) -> Any:
    return ENV.compile_expression(source, undefined_to_none=False)


@bounded
def render_string(source: str, context: Mapping[str, Any], *, shell_quoted: bool = False) -> Any:
    """Render one string. `"{{ expr }}"` alone keeps the expression's type (list, number...)."""
    if not is_template(source):
        return source
    match = _EXPRESSION_ONLY.match(source)
    if match and not shell_quoted and "{{" not in match.group(1) and "}}" not in match.group(1):
        return evaluate(match.group(1), context)
    if not shell_quoted:
        return _compiled_template(source, shell_quoted).render(context)
    nonce, values = secrets.token_hex(6), list[str]()
    token = _SHELL_VALUES.set((nonce, values))
    try:
        script = _compiled_template(source, shell_quoted).render(context)
    finally:
        _SHELL_VALUES.reset(token)
    return shell_script.bind(script, nonce, values)


@bounded
def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a bare Jinja expression (as in `when` and `for_each`)."""
    result = _compiled_expression(expression_source(expression))(**context)
    if isinstance(result, StrictUndefined):
        str(result)  # raises UndefinedError naming the missing value
    # Filters such as tojson return Markup; autoescape is off, so keep plain text.
    return str(result) if isinstance(result, Markup) else result


@bounded
def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside a nested value, keeping its structure."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    return value
