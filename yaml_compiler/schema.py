"""The DSL's JSON Schema (draft 2020-12), for editors: the pydantic spec plus plugin parameters.

pydantic describes what the models store. The DSL also accepts shorthands and the original
system's spellings that validators rewrite (`retry: 3`, `timeout: 30s`, `timeout_ms`,
compensation `{plugin, config}`...); they are added here so that every file the compiler
accepts validates. Each plugin's parameter model becomes an if/then rule on `run`, so editors
complete `with` fields. The compiler stays the authority on what is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from maestro_common.durations import parse_duration
from maestro_common.values import scalar_texts
from yaml_compiler.catalog import PluginCatalog, StepPlugin
from yaml_compiler.spec import (
    SEMVER,
    WorkflowSpec,
    _as_list,
    _schedule_list,
)

Schema = dict[str, Any]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:maestro:schema:workflow:v1"
TEMPLATE_STRING: Schema = {
    "type": "string",
    "pattern": r"^\s*\{\{.*\}\}\s*$",
    "description": "A template, rendered when the step runs.",
}
DURATION: Schema = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
    "description": "Seconds, or a duration such as 500ms, 30s, 5m, 2h, 1d.",
}
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})


# ---------------------------------------------------------------- field-level shorthands

_FIELD_SHORTHANDS: dict[Callable[..., Any], Callable[[Schema], Schema]] = {
    parse_duration: lambda _stored: dict(DURATION),
    _as_list: lambda stored: {"anyOf": [{"type": "string"}, stored]},
    scalar_texts: lambda stored: {
        **stored,
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    },
    _schedule_list: lambda stored: {
        "anyOf": [stored, stored["items"], {"type": "string", "description": "A cron string."}]
    },
}


class _DslJsonSchema(GenerateJsonSchema):
    """Widens fields whose BeforeValidator accepts more than the type it stores."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> Schema:
        stored = super().function_before_schema(schema)
        widen = _FIELD_SHORTHANDS.get(schema["function"]["function"])
        return widen(stored) if widen else stored


# ---------------------------------------------------------------- model-level shorthands


def _all_of(model: Schema) -> list[Schema]:
    return model.setdefault("allOf", [])


def _add_millis_alias(model: Schema, field: str, alias: str) -> None:
    """The original system's `<field>_ms`; giving both is an error."""
    model["properties"][alias] = {
        "type": "number",
        "minimum": 0,
        "description": f"`{field}` in milliseconds (the original Maestro's spelling).",
    }
    _all_of(model).append({"not": {"required": [field, alias]}})


def _or_shorthand(model: Schema, *shorthands: Schema) -> Schema:
    """The object form or a shorthand; title and description stay on top for editors."""
    top: Schema = {key: model.pop(key) for key in ("title", "description") if key in model}
    return {**top, "anyOf": [model, *shorthands]}


def _exactly_one_list(model: Schema, names: tuple[str, str]) -> None:
    """Exactly one of two list fields is given, non-empty (steps/parallel, stages/steps)."""
    model["oneOf"] = [
        {"required": [name], "properties": {name: {"type": "array", "minItems": 1}}}
        for name in names
    ]


def _param_spec(model: Schema) -> Schema:
    """`name: value` declares a param by example: any non-object, or an object default."""
    by_example = {"type": ["string", "number", "boolean", "array", "null"]}
    object_default = {
        "type": "object",
        "not": {"anyOf": [{"required": [key]} for key in ("type", "default", "required")]},
    }
    return _or_shorthand(model, by_example, object_default)


def _compensation(model: Schema) -> None:
    """Also `{plugin, config}`, the original system's spelling of `{run, with}`."""
    model["properties"]["plugin"] = {"type": "string", "description": "Same as `run`."}
    model["properties"]["config"] = {"type": "object", "description": "Same as `with`."}
    model["required"] = [r for r in model.get("required", []) if r != "run"]
    if not model["required"]:
        del model["required"]
    _all_of(model).extend(
        [
            {"anyOf": [{"required": ["run"]}, {"required": ["plugin"]}]},
            {"not": {"required": ["run", "plugin"]}},
            {"not": {"required": ["with", "config"]}},
        ]
    )


def _apply_shorthands(root: Schema) -> None:
    """Every spelling the spec's model-level validators accept, model by model."""
    defs = root["$defs"]
    _add_millis_alias(defs["RetrySpec"], "backoff", "backoff_ms")
    defs["RetrySpec"] = _or_shorthand(
        defs["RetrySpec"],
        {"type": "integer", "minimum": 1, "maximum": 100, "description": "max_attempts"},
    )
    name_pattern = defs["OutputSpec"]["properties"]["name"]["pattern"]
    defs["OutputSpec"] = _or_shorthand(
        defs["OutputSpec"], {"type": "string", "pattern": name_pattern}
    )
    defs["ParamSpec"] = _param_spec(defs["ParamSpec"])
    _compensation(defs["CompensationSpec"])
    step = defs["StepSpec"]
    _add_millis_alias(step, "timeout", "timeout_ms")
    step["properties"]["with"] = {"anyOf": [step["properties"]["with"], {"type": "null"}]}
    _add_millis_alias(defs["DefaultsSpec"], "timeout", "timeout_ms")
    _exactly_one_list(defs["StageSpec"], ("steps", "parallel"))
    _add_millis_alias(root, "timeout", "global_timeout_ms")
    root["properties"]["version"]["pattern"] = SEMVER.pattern
    _exactly_one_list(root, ("stages", "steps"))


# ---------------------------------------------------------------- plugin parameters


def _accepts_any_string(schema: Schema) -> bool:
    """True when the schema lets any string through, so a template needs no alternative."""
    keys = set(schema) - _ANNOTATIONS
    if not keys:
        return True
    kind = schema.get("type")
    if keys == {"type"} and (kind == "string" or (isinstance(kind, list) and "string" in kind)):
        return True
    return keys == {"anyOf"} and any(_accepts_any_string(s) for s in schema["anyOf"])


def _or_string(schema: Schema, alternative: Schema) -> Schema:
    """`schema` or `alternative`; annotations stay on top, where editors show them."""
    if _accepts_any_string(schema):
        return schema
    top = {key: value for key, value in schema.items() if key in _ANNOTATIONS}
    rest = {key: value for key, value in schema.items() if key not in _ANNOTATIONS}
    return {**top, "anyOf": [rest, alternative]}


def _with_templates(schema: Schema) -> Schema:
    """Every field below the top of `with` may hold a template instead of its typed value."""
    result = dict(schema)
    if "properties" in result:
        result["properties"] = {
            name: _or_string(_with_templates(sub), TEMPLATE_STRING)
            for name, sub in result["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(result.get(key), dict):
            result[key] = _or_string(_with_templates(result[key]), TEMPLATE_STRING)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in result:
            result[key] = [_with_templates(sub) for sub in result[key]]
    return result


def _rewritten_fields(model: type[BaseModel]) -> set[str]:
    """Fields a before/plain/wrap validator may turn from a string into something else."""
    decorators = model.__pydantic_decorators__
    if any(d.info.mode == "before" for d in decorators.model_validators.values()):
        return set(model.model_fields)
    fields: set[str] = set()
    for validator in decorators.field_validators.values():
        if validator.info.mode in ("before", "plain", "wrap"):
            fields.update(validator.info.fields)
    return fields


def _plugin_params(plugin: StepPlugin, defs: Schema) -> Schema:
    """The plugin's `with` schema; nested models land in the shared $defs under a prefix."""
    prefix = f"plugin.{plugin.name}."
    model = plugin.params_model
    schema = model.model_json_schema(by_alias=True, ref_template=f"#/$defs/{prefix}{{model}}")
    for name, nested in schema.pop("$defs", {}).items():
        defs[prefix + name] = _with_templates(nested)
    properties = schema.get("properties", {})
    for field in _rewritten_fields(model):
        key = model.model_fields[field].alias or field
        if key in properties:  # the model parses strings itself (durations, upper-casing...)
            properties[key] = _or_string(properties[key], {"type": "string"})
    return _with_templates(schema)


def _plugin_rules(registry: PluginCatalog, defs: Schema, run_key: str, with_key: str) -> list:
    """`if run is NAME then with follows NAME's parameters`, for every name and alias."""
    rules = []
    for name in registry.names():
        plugin = registry.get(name)
        assert plugin is not None
        target = defs[f"plugin.{plugin.name}"]
        then: Schema = {"properties": {with_key: {"$ref": f"#/$defs/plugin.{plugin.name}"}}}
        if target.get("required"):
            then["required"] = [with_key]
        else:  # `with:` left empty is read as {}
            then["properties"][with_key] = {
                "anyOf": [then["properties"][with_key], {"type": "null"}]
            }
        rules.append(
            {"if": {"properties": {run_key: {"const": name}}, "required": [run_key]}, "then": then}
        )
    return rules


def _add_plugins(root: Schema, registry: PluginCatalog) -> None:
    """Plugin parameter schemas in $defs, selected by `run` on steps and compensations."""
    defs = root["$defs"]
    for plugin in registry:
        defs[f"plugin.{plugin.name}"] = _plugin_params(plugin, defs)
    names = registry.names()
    step = defs["StepSpec"]
    step["properties"]["run"]["examples"] = names
    _all_of(step).extend(_plugin_rules(registry, defs, "run", "with"))
    compensation = defs["CompensationSpec"]
    compensation["properties"]["run"]["examples"] = names
    compensation["properties"]["plugin"]["examples"] = names
    _all_of(compensation).extend(
        _plugin_rules(registry, defs, "run", "with")
        + _plugin_rules(registry, defs, "plugin", "config")
    )


def workflow_json_schema(registry: PluginCatalog) -> Schema:
    """The JSON Schema of a workflow file, with the installed plugins' parameters."""
    generated = WorkflowSpec.model_json_schema(by_alias=True, schema_generator=_DslJsonSchema)
    _apply_shorthands(generated)
    _add_plugins(generated, registry)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "Maestro workflow",
        "description": (
            "A Maestro workflow file (DSL version 1): stages or steps, each running a plugin "
            "with parameters; compiled to a Dagster job."
        ),
        **{k: v for k, v in generated.items() if k not in ("title", "description")},
    }
