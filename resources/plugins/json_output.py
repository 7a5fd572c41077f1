"""The JSON an LLM step was asked for: parsed, and checked against its schema when it has one."""

from __future__ import annotations

import json
from typing import Any

from resources.plugins.base import StepError


def parse_json_output(text: str, schema: dict[str, Any] | None, asked_by: str) -> Any:
    """The model's answer as JSON; `invalid_output` (retryable by kind) when it is not JSON or
    does not match `schema`. `asked_by` names the parameter that asked for JSON."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepError(
            f"the model did not answer with JSON ({exc.msg} at character {exc.pos})",
            kind="invalid_output",
        ) from None
    if schema is not None:
        import jsonschema  # here: the code location does not pay for it unless a step needs it

        error = jsonschema.exceptions.best_match(
            jsonschema.validators.validator_for(schema)(schema).iter_errors(value)
        )
        if error is not None:
            where = "/".join(str(p) for p in error.path) or "<root>"
            raise StepError(
                f"the model's JSON does not match {asked_by}: {where}: {error.message}",
                kind="invalid_output",
            )
    return value
