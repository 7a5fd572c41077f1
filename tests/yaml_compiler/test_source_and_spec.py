"""Parsing and DSL validation: every problem is one `file:line:col: path: message` diagnostic.

Inputs are written inline and line-numbered by eye, so a wrong line or column in a message
fails here rather than confusing a user later.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.compiling import compile_file, plan_text
from yaml_compiler import WorkflowCompileError
from yaml_compiler.plan import WorkflowPlan
from yaml_compiler.source import load_yaml

FILE = "wf.yaml"


def _text(yaml_text: str) -> str:
    return textwrap.dedent(yaml_text).lstrip("\n")


def errors(yaml_text: str) -> list[str]:
    """Every diagnostic of a workflow that must not compile, as printed to users."""
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(_text(yaml_text), FILE)
    assert str(caught.value) == "\n".join(str(d) for d in caught.value.diagnostics)
    return [str(d) for d in caught.value.diagnostics]


def plan(yaml_text: str) -> WorkflowPlan:
    return plan_text(_text(yaml_text), FILE)


# ---------------------------------------------------------------- YAML level


def test_invalid_yaml_syntax_points_at_the_offending_character() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            with: {a: [1, 2}
        """
    ) == ["wf.yaml:4:20: <root>: invalid YAML: did not find expected ',' or ']'"]


def test_unterminated_quote_is_a_yaml_error() -> None:
    assert errors(
        """
        name: 'x
        steps: []
        """
    ) == ["wf.yaml:3:1: <root>: invalid YAML: found unexpected end of stream"]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file(content: str) -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(content, FILE)
    assert [str(d) for d in caught.value.diagnostics] == ["wf.yaml:1:1: <root>: the file is empty"]


def test_duplicate_keys_are_all_reported_at_the_second_occurrence() -> None:
    assert errors(
        """
        name: x
        name: y
        steps:
          - run: echo
            with:
              a: 1
              b: 2
              a: 3
        """
    ) == [
        "wf.yaml:2:1: name: duplicate key in mapping",
        "wf.yaml:8:7: steps[0].with.a: duplicate key in mapping",
    ]


def test_non_scalar_key_is_rejected() -> None:
    assert errors(
        """
        name: x
        ? [a, b]
        : 1
        steps:
          - run: echo
        """
    ) == ["wf.yaml:2:3: <root>: keys must be scalars"]


@pytest.mark.parametrize("root", ["- run: echo\n- run: shell\n", "just a string\n", "42\n"])
def test_root_must_be_a_mapping(root: str) -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(root, FILE)
    assert [str(d) for d in caught.value.diagnostics] == [
        "wf.yaml:1:1: <root>: a workflow file is a YAML mapping"
    ]


def test_dates_stay_strings() -> None:
    """A YAML timestamp would not survive JSON; the loader keeps its text."""
    doc = load_yaml("name: x\ndescription: 2024-01-02\n", FILE)
    assert doc.value["description"] == "2024-01-02"
    assert doc.positions[("description",)] == (2, 1)


def test_merge_keys_are_resolved() -> None:
    built = plan(
        """
        name: x
        steps:
          - &base
            id: a
            run: echo
            with: {v: 1}
          - <<: *base
            id: b
        """
    )
    assert [(s.id, dict(s.params)) for s in built.steps] == [("a", {"v": 1}), ("b", {"v": 1})]


def test_merge_overrides_survive_being_aliased() -> None:
    """An anchored mapping that overrides a merged key is not a duplicate, even used twice."""
    doc = load_yaml(
        _text(
            """
            base: &base {p: 1, q: 2}
            child: &child
              <<: *base
              q: 3
            again: *child
            grandchild: {<<: [*child, *base], r: 4}
            """
        ),
        FILE,
    )
    assert doc.value == {
        "base": {"p": 1, "q": 2},
        "child": {"p": 1, "q": 3},
        "again": {"p": 1, "q": 3},
        "grandchild": {"p": 1, "q": 3, "r": 4},
    }
    assert doc.positions[("child", "q")] == (4, 3)


def test_merge_of_a_scalar() -> None:
    assert errors("name: x\nsteps:\n  - <<: [1]\n    run: echo\n") == [
        "wf.yaml:3:10: steps[0]: << merges a mapping (not itself) or a list of mappings"
    ]


# ---------------------------------------------------------------- workflow fields


def test_unknown_top_level_field() -> None:
    assert errors(
        """
        name: x
        triggers: [push]
        steps:
          - run: echo
        """
    ) == ["wf.yaml:2:1: triggers: unknown field"]


def test_missing_name() -> None:
    assert errors(
        """
        version: 1.0.0
        steps:
          - run: echo
        """
    ) == ["wf.yaml:1:1: name: field required"]


@pytest.mark.parametrize("name", ["my workflow", "build/test", "café"])
def test_bad_name_characters(name: str) -> None:
    assert errors(
        f"""
        version: 1.0.0
        name: "{name}"
        steps:
          - run: echo
        """
    ) == ["wf.yaml:2:1: name: String should match pattern '^[A-Za-z0-9_-]+$'"]


@pytest.mark.parametrize(
    ("written", "seen"),
    [("1.2", "1.2"), ("v1.0.0", "v1.0.0"), ("1.0", "1.0"), ("'01.2.3'", "01.2.3")],
)
def test_bad_semver(written: str, seen: str) -> None:
    assert errors(
        f"""
        name: x
        version: {written}
        steps:
          - run: echo
        """
    ) == [f"wf.yaml:2:1: version: '{seen}' is not a semantic version like 1.2.3"]


@pytest.mark.parametrize("version", ["1.2.3", "0.0.1-rc.1", "2.0.0+build.7"])
def test_good_semver(version: str) -> None:
    assert plan(f"name: x\nversion: {version}\nsteps:\n  - run: echo\n").spec.version == version


def test_version_defaults_to_0_0_0() -> None:
    assert plan("name: x\nsteps:\n  - run: echo\n").spec.version == "0.0.0"


def test_stages_and_steps_both_given() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
        stages:
          - name: a
            steps:
              - run: echo
        """
    ) == ["wf.yaml:1:1: <root>: a workflow has either stages or steps (exactly one of them)"]


def test_neither_stages_nor_steps() -> None:
    assert errors(
        """
        name: x
        version: 1.0.0
        """
    ) == ["wf.yaml:1:1: <root>: a workflow has either stages or steps (exactly one of them)"]


def test_empty_steps_list() -> None:
    assert errors("name: x\nsteps: []\n") == [
        "wf.yaml:1:1: <root>: a workflow needs at least one step"
    ]


def test_stage_with_both_steps_and_parallel() -> None:
    assert errors(
        """
        name: x
        stages:
          - name: ok
            steps:
              - run: echo
          - name: both
            steps:
              - run: echo
            parallel:
              - run: echo
        """
    ) == ["wf.yaml:6:5: stages[1]: a stage has either steps or parallel (exactly one of them)"]


def test_stage_with_empty_parallel() -> None:
    assert errors(
        """
        name: x
        stages:
          - name: empty
            parallel: []
        """
    ) == ["wf.yaml:3:5: stages[0]: a stage needs at least one step"]


def test_unknown_step_field_points_at_the_field() -> None:
    assert errors(
        """
        name: x
        stages:
          - name: a
            steps:
              - run: echo
                retries: 3
        """
    ) == ["wf.yaml:6:9: stages[0].steps[0].retries: unknown field"]


def test_step_without_run() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            with: {v: 1}
        """
    ) == ["wf.yaml:3:5: steps[0].run: field required"]


def test_bad_step_id() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: 1st
            run: echo
        """
    ) == ["wf.yaml:3:5: steps[0].id: String should match pattern '^[A-Za-z_][A-Za-z0-9_.-]*$'"]


# ---------------------------------------------------------------- durations and aliases


def test_bad_duration() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            timeout: 5x
        """
    ) == [
        "wf.yaml:4:5: steps[0].timeout: invalid duration '5x': "
        "use a number of seconds or 500ms, 30s, 5m, 2h, 1d"
    ]


def test_negative_duration() -> None:
    assert errors("name: x\nsteps:\n  - run: echo\n    timeout: -1\n") == [
        "wf.yaml:4:5: steps[0].timeout: a duration is a finite number of seconds, zero or more"
    ]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("7", 7.0)],
)
def test_duration_units(written: str, seconds: float) -> None:
    built = plan(f"name: x\nsteps:\n  - run: echo\n    timeout: {written}\n")
    assert built.steps[0].timeout == seconds


def test_millisecond_aliases_are_converted() -> None:
    built = plan(
        """
        name: x
        global_timeout_ms: 90000
        defaults:
          timeout_ms: 2500
        steps:
          - id: a
            run: echo
            timeout_ms: 1500
            retry: {max_attempts: 2, backoff_ms: 250}
          - id: b
            run: echo
        """
    )
    assert built.spec.timeout == 90.0
    assert built.step("a").timeout == 1.5
    assert built.step("a").retry is not None
    assert built.step("a").retry.backoff == 0.25
    assert built.step("b").timeout == 2.5
    summary = built.to_dict()
    assert summary["timeout"] == "90s"
    assert [s["timeout"] for s in summary["steps"]] == ["1500ms", "2500ms"]


def test_timeout_and_timeout_ms_together() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            timeout: 5s
            timeout_ms: 100
        """
    ) == ["wf.yaml:3:5: steps[0]: give either timeout or timeout_ms, not both"]


def test_global_timeout_twice() -> None:
    assert errors(
        """
        name: x
        timeout: 1m
        global_timeout_ms: 100
        steps:
          - run: echo
        """
    ) == ["wf.yaml:1:1: <root>: give either timeout or global_timeout_ms, not both"]


def test_millisecond_alias_must_be_a_number() -> None:
    assert errors("name: x\nsteps:\n  - run: echo\n    timeout_ms: soon\n") == [
        "wf.yaml:3:5: steps[0]: timeout_ms must be a number of milliseconds"
    ]


def test_retry_shorthand_is_max_attempts() -> None:
    built = plan("name: x\nsteps:\n  - run: echo\n    retry: 4\n")
    retry = built.steps[0].retry
    assert retry is not None
    assert (retry.max_attempts, retry.backoff, retry.retry_on) == (4, None, None)


def test_retry_on_unknown_kind() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            retry: {max_attempts: 2, retry_on: [boom]}
        """
    ) == [
        "wf.yaml:4:41: steps[0].retry.retry_on[0]: Input should be 'timeout', 'exit_code', "
        "'http_status', 'connection', 'rate_limit', 'server_error', 'context_window', "
        "'invalid_output', 'model_not_found', 'gpu_unavailable', 'auth', 'bad_request' or "
        "'plugin_error'"
    ]


def test_compensation_in_the_original_spelling() -> None:
    built = plan(
        """
        name: x
        on_failure: compensate
        steps:
          - id: deploy
            run: echo
            compensation:
              plugin: shell
              config: {command: "echo undo"}
        """
    )
    compensation = built.step("deploy").compensation
    assert compensation is not None
    assert (compensation.run, compensation.with_) == ("shell", {"command": "echo undo"})
    assert built.to_dict()["steps"][0]["compensation"] == {
        "run": "shell",
        "with": {"command": "echo undo"},
    }


def test_compensation_spelled_both_ways() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            compensation: {run: shell, plugin: shell}
        """
    ) == ["wf.yaml:4:5: steps[0].compensation: give either run or plugin, not both"]


# ---------------------------------------------------------------- params and secrets


def test_param_shorthand_infers_the_type() -> None:
    built = plan(
        """
        name: x
        params:
          region: eu
          replicas: 3
          ratio: 0.5
          dry_run: false
          teams: [a, b]
        steps:
          - run: echo
        """
    )
    assert {name: (p.type, p.default) for name, p in built.spec.params.items()} == {
        "region": ("string", "eu"),
        "replicas": ("integer", 3),
        "ratio": ("number", 0.5),
        "dry_run": ("boolean", False),
        "teams": ("list", ["a", "b"]),
    }


def test_param_default_of_the_wrong_type() -> None:
    assert errors(
        """
        name: x
        params:
          replicas:
            type: integer
            default: many
        steps:
          - run: echo
        """
    ) == ["wf.yaml:3:3: params.replicas: default 'many' is not of type integer"]


def test_boolean_is_not_an_integer_default() -> None:
    text = "name: x\nparams:\n  n: {type: integer, default: true}\nsteps:\n  - run: echo\n"
    assert errors(text) == ["wf.yaml:3:3: params.n: default True is not of type integer"]


def test_required_param_with_default() -> None:
    assert errors(
        """
        name: x
        params:
          replicas:
            type: integer
            required: true
            default: 3
        steps:
          - run: echo
        """
    ) == ["wf.yaml:3:3: params.replicas: a required param has no default"]


def test_unknown_param_type() -> None:
    assert errors("name: x\nparams:\n  n: {type: int}\nsteps:\n  - run: echo\n") == [
        "wf.yaml:3:7: params.n.type: Input should be 'string', 'integer', 'number', "
        "'boolean', 'list' or 'object'"
    ]


def test_bad_secret_name() -> None:
    assert errors(
        """
        name: x
        secrets: [API_TOKEN, API-KEY]
        steps:
          - run: echo
        """
    ) == ["wf.yaml:2:22: secrets[1]: String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'"]


# ---------------------------------------------------------------- many at once


def test_several_errors_are_reported_together_in_file_order() -> None:
    assert errors(
        """
        name: bad name
        version: x
        colour: blue
        params:
          n: {type: integer, default: no}
        stages:
          - name: s
            steps:
              - run: echo
                timeout: 5x
                bogus: 1
              - run: echo
                timeout: 1s
                timeout_ms: 5
        """
    ) == [
        "wf.yaml:1:1: name: String should match pattern '^[A-Za-z0-9_-]+$'",
        "wf.yaml:2:1: version: 'x' is not a semantic version like 1.2.3",
        "wf.yaml:3:1: colour: unknown field",
        "wf.yaml:5:3: params.n: default False is not of type integer",
        "wf.yaml:10:9: stages[0].steps[0].timeout: invalid duration '5x': "
        "use a number of seconds or 500ms, 30s, 5m, 2h, 1d",
        "wf.yaml:11:9: stages[0].steps[0].bogus: unknown field",
        "wf.yaml:12:9: stages[0].steps[1]: give either timeout or timeout_ms, not both",
    ]


def test_diagnostics_name_the_real_file(write_workflow: Callable[..., Path]) -> None:
    path = write_workflow(
        """
        name: x
        steps:
          - run: echo
            retries: 3
        """,
        "broken.yaml",
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    assert str(caught.value) == f"{path}:4:5: steps[0].retries: unknown field"


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(missing)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.col, diagnostic.path) == (
        str(missing),
        1,
        1,
        "<root>",
    )
    assert "No such file or directory" in diagnostic.message


def test_a_recursive_alias_is_a_diagnostic_not_a_crash() -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text("name: x\nsteps:\n  - run: echo\n    with: &a {k: [*a]}\n", "w.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "w.yaml:4:11: steps[0].with.k[0]: an alias refers to itself"
    ]


def test_yaml_1_1_boolean_words_stay_names_when_used_as_keys() -> None:
    plan = plan_text(
        "name: x\nparams:\n  on: {default: push}\nsteps:\n  - run: echo\n"
        "    with: {event: '{{ params.on }}'}\n",
        "w.yaml",
    )
    assert list(plan.spec.params) == ["on"]
