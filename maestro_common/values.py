"""How the DSL writes values that plugins and the spec both read: text maps and templates."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def is_template(value: object) -> bool:
    """A string holding a Jinja expression or block, rendered when the step runs."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def scalar_text(value: Any) -> Any:
    """YAML numbers and booleans as the text a user meant (`true`, not `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


def scalar_texts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {key: scalar_text(item) for key, item in value.items()}


TextMap = Annotated[dict[str, str], BeforeValidator(scalar_texts)]
"""Environment variables, headers, tags: `PORT: 8080` is text, not a type error."""


class PrepareError(ValueError):
    """A plugin's compile-time check failed on one field of `with` (the planner positions it)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
