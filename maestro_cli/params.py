"""`--param NAME=VALUE` parsing: text from the shell becomes a value of the param's declared type.

Strings stay as written (so `--param tag=007` is the string "007"); numbers and booleans are
parsed; lists and objects are read as YAML, which includes JSON, by the workflow loader with its
bounds (no alias bombs, no `!!python/...` tags, no NUL characters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from yaml_compiler.diagnostics import WorkflowCompileError
from yaml_compiler.source import load_yaml
from yaml_compiler.spec import ParamSpec

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ParamError(ValueError):
    """A `--param` that cannot be used; the message names the param."""


def split_assignment(text: str) -> tuple[str, str]:
    """`name=value` → (name, value); the value may itself contain `=`."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParamError(f"--param {text!r}: expected NAME=VALUE")
    return name, value


def coerce_value(name: str, text: str, param: ParamSpec) -> Any:
    """The value of `text` as the declared type of param `name`."""
    try:
        return _COERCERS[param.type](text)
    except ValueError as exc:
        raise ParamError(f"--param {name}: {exc}") from None


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> int | float:
    try:
        return _integer(text)
    except ValueError:
        pass
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return value


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _structured(text: str, kind: type, label: str) -> Any:
    if not text.strip():
        raise ValueError(f"expected {label} in YAML or JSON, got {text!r}")
    try:
        value = load_yaml(text, "<value>").value
    except WorkflowCompileError as exc:
        first = exc.diagnostics[0]
        where = f"{first.line}:{first.col}" + (f" {first.path}" if first.path != "<root>" else "")
        problem = first.message.removeprefix("invalid YAML: ")
        raise ValueError(f"expected {label} in YAML or JSON: {problem} (at {where})") from None
    if not isinstance(value, kind):
        raise ValueError(f"expected {label} in YAML or JSON, got {text!r}")
    return value


_COERCERS = {
    "string": lambda text: text,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "list": lambda text: _structured(text, list, "a list such as [a, b]"),
    "object": lambda text: _structured(text, dict, "an object such as {key: value}"),
}


def parse_params(assignments: Iterable[str], params: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Every `--param` as a typed value; unknown names and repeated names are errors."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, text = split_assignment(assignment)
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ParamError(f"--param {name}: unknown param (declared params: {known})")
        if name in values:
            raise ParamError(f"--param {name}: given more than once")
        values[name] = coerce_value(name, text, params[name])
    return values
