"""The published JSON Schema agrees with the compiler: what compiles validates, and typos fail."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from maestro_cli.scaffold import list_templates
from resources.plugins import default_registry
from tests.support.compiling import compile_text
from tests.support.paths import PROJECT_ROOT
from yaml_compiler import WorkflowCompileError
from yaml_compiler.schema import SCHEMA_DIALECT, workflow_json_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return workflow_json_schema(default_registry())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def _load(text: str) -> Any:
    return yaml.safe_load(textwrap.dedent(text))


def _leaves(errors: Any) -> list[jsonschema.ValidationError]:
    """The innermost errors: anyOf/oneOf failures keep what each branch said in `context`."""
    found = []
    for error in errors:
        found += _leaves(error.context) if error.context else [error]
    return found


def _errors(validator: Draft202012Validator, data: Any) -> list[str]:
    """`path: message` for every innermost error, path as `steps/0/with`."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _leaves(validator.iter_errors(data))
    ]


def _compiles(text: str) -> bool:
    try:
        compile_text(textwrap.dedent(text))
    except WorkflowCompileError:
        return False
    return True


def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"] and schema["title"] == "Maestro workflow"
    step = schema["$defs"]["StepSpec"]["properties"]
    assert "with" in step and "with_" not in step


def test_every_plugin_name_and_alias_has_a_with_rule(schema: dict[str, Any]) -> None:
    rules = schema["$defs"]["StepSpec"]["allOf"]
    ruled = {r["if"]["properties"]["run"]["const"] for r in rules if "if" in r}
    assert ruled == set(default_registry().names())
    assert {"shell", "http.request", "api.request", "litellm.generate", "echo"} <= ruled


def _shipped_files() -> list[Path]:
    files = sorted((PROJECT_ROOT / "workflows").glob("*.y*ml"))
    files += sorted((PROJECT_ROOT / "examples").rglob("*.y*ml"))
    return files


@pytest.mark.parametrize("path", _shipped_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_shipped_workflows_that_compile_validate(
    path: Path, validator: Draft202012Validator
) -> None:
    text = path.read_text(encoding="utf-8")
    if path.parent.name == "workflows" or _compiles(text):
        assert _errors(validator, yaml.safe_load(text)) == []


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.name)
def test_built_in_templates_validate(template: Any, validator: Draft202012Validator) -> None:
    assert _errors(validator, yaml.safe_load(template.text)) == []


# Spellings the compiler accepts through validators that rewrite their input.
ACCEPTED = {
    "shorthands": """
        name: shorthands
        version: 2.0.1
        global_timeout_ms: 60000
        params:
          region: eu-west-1
          count: 3
          ratio: 0.5
          enabled: true
          regions: [a, b]
          settings: {depth: 2}
          documented: {description: only a description}
        schedule: "0 * * * *"
        tags: {team: data, priority: 1, critical: true}
        defaults: {timeout_ms: 1500, retry: 2}
        steps:
          - id: first
            run: echo
            with:
            outputs: [report]
            timeout: 1.5m
          - id: second
            run: shell
            depends_on: first
            retry: {max_attempts: 4, backoff_ms: 250, jitter: full}
            timeout_ms: 2000
            with: {command: "echo {{ params.region }}", tail_lines: "{{ params.count }}"}
            compensation: {plugin: shell, config: {command: "echo undo"}}
    """,
    "templated typed fields": """
        name: templated
        params: {method: {type: string, default: post}, wait: {type: string, default: 5s}}
        stages:
          - name: call
            steps:
              - id: call
                run: api.request
                with:
                  url: "https://example.invalid/{{ run.id }}"
                  method: "{{ params.method }}"
                  timeout: 10s
                  expected_status: ["{{ 200 }}", 201]
                  follow_redirects: "{{ params.method == 'post' }}"
    """,
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=list(ACCEPTED))
def test_what_the_compiler_accepts_validates(text: str, validator: Draft202012Validator) -> None:
    assert _compiles(text)
    assert _errors(validator, _load(text)) == []


# Mistakes the compiler rejects; the schema must flag them too, at the right place.
REJECTED = {
    "retry max_attempts is not an integer": (
        """
        name: wrong-type
        steps:
          - run: echo
            retry: {max_attempts: "x"}
        """,
        "steps/0/retry/max_attempts",
    ),
    "unknown top-level field": (
        """
        name: typo
        stepz: []
        steps: [{run: echo}]
        """,
        "",
    ),
    "shell without command": (
        """
        name: no-command
        steps:
          - run: shell
            with: {shell: true}
        """,
        "steps/0/with",
    ),
    "shell without with": ("name: no-with\nsteps: [{run: shell}]\n", "steps/0"),
    "unknown http parameter": (
        """
        name: http-typo
        steps:
          - run: http.request
            with: {url: "https://example.invalid", header: {}}
        """,
        "steps/0/with",
    ),
    "typed plugin field given a non-template string": (
        """
        name: bad-tail
        steps:
          - run: shell
            with: {command: "true", tail_lines: many}
        """,
        "steps/0/with/tail_lines",
    ),
    "timeout and timeout_ms together": (
        """
        name: both-timeouts
        steps:
          - run: echo
            timeout: 1s
            timeout_ms: 1000
        """,
        "steps/0",
    ),
    "stage with steps and parallel": (
        """
        name: two-kinds
        stages:
          - name: s
            steps: [{run: echo}]
            parallel: [{run: echo}]
        """,
        "stages/0",
    ),
    "stages and steps together": (
        """
        name: two-layouts
        stages: [{name: s, steps: [{run: echo}]}]
        steps: [{run: echo}]
        """,
        "",
    ),
    "version is not semver": ("name: v\nversion: '1.0'\nsteps: [{run: echo}]\n", "version"),
    "bad duration": ("name: d\nsteps: [{run: echo, timeout: soon}]\n", "steps/0/timeout"),
}


@pytest.mark.parametrize(("text", "where"), REJECTED.values(), ids=list(REJECTED))
def test_what_the_compiler_rejects_fails(
    text: str, where: str, validator: Draft202012Validator
) -> None:
    assert not _compiles(text)
    errors = _errors(validator, _load(text))
    assert errors, "the schema accepted a file the compiler rejects"
    assert any(e.startswith(f"{where}:") for e in errors), errors


def test_nested_plugin_models_are_checked(validator: Draft202012Validator) -> None:
    data = _load(
        """
        name: deep
        steps:
          - run: web_scraper
            with: {url: "https://example.invalid", extract: {type: pdf}}
        """
    )
    errors = _errors(validator, data)
    assert any(e.startswith("steps/0/with/extract/type: 'pdf' is not one of") for e in errors)
    data["steps"][0]["with"]["extract"]["type"] = "{{ params.kind }}"
    assert _errors(validator, data) == []
