"""Semantic checks of the planner and the edges it hands to the Dagster builder."""

from __future__ import annotations

import textwrap
from typing import Any

import dagster as dg
import pytest

from resources.plugins import default_registry
from tests.support.compiling import compile_text, plan_text
from yaml_compiler import WorkflowCompileError
from yaml_compiler.plan import WorkflowPlan

FILE = "wf.yaml"
KNOWN_PLUGINS = ", ".join(default_registry().names())


def _text(yaml_text: str) -> str:
    return textwrap.dedent(yaml_text).lstrip("\n")


def errors(yaml_text: str, **overrides: Any) -> list[str]:
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(_text(yaml_text), FILE, param_overrides=overrides or None)
    return [str(d) for d in caught.value.diagnostics]


def plan(yaml_text: str, **overrides: Any) -> WorkflowPlan:
    return plan_text(_text(yaml_text), FILE, param_overrides=overrides or None)


def upstream_of(job: dg.JobDefinition, node: str) -> dict[str, list[tuple[str, str]]]:
    """Input name -> [(upstream node, output)] of one node of a built job."""
    structure = job.graph.dependency_structure
    return {
        handle.input_name: [(out.node.name, out.output_def.name) for out in outputs]
        for handle, outputs in structure.input_to_upstream_outputs_for_node(node).items()
    }


# ---------------------------------------------------------------- ids


def test_default_ids_count_steps_across_the_whole_workflow() -> None:
    built = plan(
        """
        name: x
        stages:
          - name: build
            steps:
              - run: echo
              - run: echo
          - name: test
            parallel:
              - run: echo
              - id: lint
                run: echo
              - run: echo
          - name: ship
            steps:
              - run: echo
        """
    )
    assert [(s.id, s.stage) for s in built.steps] == [
        ("build_0", "build"),
        ("build_1", "build"),
        ("test_2", "test"),
        ("lint", "test"),
        ("test_4", "test"),
        ("ship_5", "ship"),
    ]
    assert [(s.name, s.kind, s.step_ids) for s in built.stages] == [
        ("build", "steps", ("build_0", "build_1")),
        ("test", "parallel", ("test_2", "lint", "test_4")),
        ("ship", "steps", ("ship_5",)),
    ]


def test_flat_steps_get_step_index_ids_and_no_ordering_edges() -> None:
    built = plan(
        """
        name: x
        steps:
          - run: echo
          - id: named
            run: echo
          - run: echo
        """
    )
    assert [s.id for s in built.steps] == ["step_0", "named", "step_2"]
    assert all(s.upstream == () for s in built.steps)
    assert built.stages == ()


def test_duplicate_ids() -> None:
    assert errors(
        """
        name: x
        stages:
          - name: a
            steps:
              - id: fetch
                run: echo
          - name: b
            steps:
              - run: echo
              - id: fetch
                run: echo
        """
    ) == ["wf.yaml:10:9: stages[1].steps[1].id: duplicate step id 'fetch' (first used on line 5)"]


def test_explicit_id_colliding_with_a_default_id() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: step_1
            run: echo
          - run: echo
        """
    ) == ["wf.yaml:5:5: steps[1].id: duplicate step id 'step_1' (first used on line 3)"]


def test_ids_that_sanitise_to_the_same_op_name() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: build.web
            run: echo
          - id: build-web
            run: echo
        """
    ) == [
        "wf.yaml:5:5: steps[1].id: step id 'build-web' and 'build.web' both become Dagster op "
        "'build_web': rename one"
    ]


def test_reserved_dagster_names_are_renamed_and_can_still_collide() -> None:
    built = plan("name: x\nsteps:\n  - id: config\n    run: echo\n")
    assert (built.steps[0].id, built.steps[0].node_name) == ("config", "config_step")
    assert errors(
        """
        name: x
        steps:
          - id: config
            run: echo
          - id: config_step
            run: echo
        """
    ) == [
        "wf.yaml:5:5: steps[1].id: step id 'config_step' and 'config' both become Dagster op "
        "'config_step': rename one"
    ]


def test_for_each_helper_ops_are_reserved() -> None:
    """A for_each step also builds `<op>__items` and `<op>__collect`."""
    assert errors(
        """
        name: x
        steps:
          - id: fan
            run: echo
            for_each: [1, 2]
          - id: fan__collect
            run: echo
        """
    ) == [
        "wf.yaml:6:5: steps[1].id: step id 'fan__collect' and 'fan' both become Dagster op "
        "'fan__collect': rename one"
    ]


def test_sanitised_ids_build_a_job() -> None:
    compiled = compile_text(
        _text(
            """
            name: my-flow_v2
            steps:
              - id: fetch.data
                run: echo
              - id: use-it
                run: echo
                with: {v: "{{ steps['fetch.data'].output }}"}
            """
        ),
        FILE,
    )
    assert compiled.job.name == "my_flow_v2"
    assert upstream_of(compiled.job, "use_it") == {"from_fetch_data": [("fetch_data", "result")]}
    assert compiled.job.graph.node_named("fetch_data").definition.tags["maestro/step_id"] == (
        "fetch.data"
    )


# ---------------------------------------------------------------- plugins and their params


def test_unknown_plugin_lists_known_plugins_at_the_run_line() -> None:
    assert "shell" in KNOWN_PLUGINS and "http.request" in KNOWN_PLUGINS
    assert errors(
        """
        name: x
        steps:
          - id: a
            with: {command: ls}
            run: shel
        """
    ) == [f"wf.yaml:5:5: steps[0].run: unknown plugin 'shel'; known plugins: {KNOWN_PLUGINS}"]


def test_aliases_resolve_to_the_plugin() -> None:
    built = plan("name: x\nsteps:\n  - run: api.request\n    with: {url: 'http://h'}\n")
    assert (built.steps[0].run, built.steps[0].plugin) == ("api.request", "http.request")


def test_shell_without_command() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            run: shell
            with:
              cwd: /tmp
        """
    ) == ["wf.yaml:5:5: steps[0].with.command: field required"]


def test_shell_unknown_param_and_unsplittable_command() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: shell
            with:
              comand: ls
          - run: shell
            with:
              command: echo 'unterminated
        """
    ) == [
        "wf.yaml:4:5: steps[0].with.command: field required",
        "wf.yaml:5:7: steps[0].with.comand: unknown field",
        "wf.yaml:8:7: steps[1].with.command: cannot split into arguments: No closing quotation",
    ]


def test_http_request_with_a_bad_method() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            run: http.request
            with:
              url: http://127.0.0.1:1/
              method: FETCH
        """
    ) == [
        "wf.yaml:7:7: steps[0].with.method: Input should be 'GET', 'POST', 'PUT', 'PATCH', "
        "'DELETE', 'HEAD' or 'OPTIONS'"
    ]


def test_template_strings_in_typed_fields_are_checked_at_run_time() -> None:
    built = plan(
        """
        name: x
        params:
          method: post
          wait: 5s
          codes: [200, 201]
          lines: 10
        steps:
          - id: call
            run: http.request
            with:
              url: http://127.0.0.1:1/
              method: "{{ params.method }}"
              timeout: "{{ params.wait }}"
              expected_status: "{{ params.codes }}"
          - id: sh
            run: shell
            with:
              command: echo hi
              tail_lines: "{{ params.lines }}"
        """
    )
    assert built.step("call").params["timeout"] == "{{ params.wait }}"
    assert built.step("sh").params["tail_lines"] == "{{ params.lines }}"


def test_python_callable_must_be_dotted() -> None:
    assert errors("name: x\nsteps:\n  - run: python\n    with: {callable: transform}\n") == [
        "wf.yaml:4:12: steps[0].with.callable: use a dotted path such as mypackage.tasks:transform"
    ]


def test_reserved_plugins_validate_their_params() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: litellm.generate
            with: {prompt: hi}
        """
    ) == ["wf.yaml:4:5: steps[0].with.model: field required"]


def test_compensation_plugin_and_params_are_checked() -> None:
    assert errors(
        """
        name: x
        on_failure: compensate
        steps:
          - run: echo
            compensation: {run: nope}
          - run: echo
            compensation: {plugin: shell, config: {cwd: /}}
        """
    ) == [
        f"wf.yaml:5:20: steps[0].compensation.run: unknown plugin 'nope'; "
        f"known plugins: {KNOWN_PLUGINS}",
        "wf.yaml:7:5: steps[1].compensation.with.command: field required",
    ]


def test_compensation_retry_is_checked_with_the_spec() -> None:
    assert errors(
        """
        name: x
        on_failure: compensate
        steps:
          - run: echo
            compensation: {run: echo, retry: {max_attempts: 0}}
        """
    ) == [
        "wf.yaml:5:39: steps[0].compensation.retry.max_attempts: Input should be greater "
        "than or equal to 1"
    ]


def test_compensation_templates_and_compensate_self_are_checked() -> None:
    assert errors(
        """
        name: x
        on_failure: compensate
        steps:
          - id: a
            run: echo
            compensate_self: true
          - id: b
            run: echo
            compensation:
              run: echo
              with: {x: "{{ steps.a.output }}", y: "{{ step.output.id }} {{ params.nope }}"}
        """
    ) == [
        "wf.yaml:6:5: steps[0].compensate_self: compensate_self runs the step's compensation "
        "when it fails: give the step a compensation: {run, with}",
        "wf.yaml:11:14: steps[1].compensation.with.x: unknown name 'steps' in a compensation "
        "template: use one of step, failure, params, run, secrets (step.output is the step's "
        "own output)",
        "wf.yaml:11:41: steps[1].compensation.with.y: unknown param 'nope'",
    ]


# ---------------------------------------------------------------- dependencies


def test_unknown_depends_on_suggests_a_close_id() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: fetch
            run: echo
          - id: parse
            run: echo
            depends_on: [fetc]
        """
    ) == ["wf.yaml:7:18: steps[1].depends_on[0]: unknown step 'fetc' (did you mean 'fetch'?)"]


def test_unknown_depends_on_without_suggestion() -> None:
    assert errors("name: x\nsteps:\n  - run: echo\n    depends_on: zzz\n") == [
        "wf.yaml:4:5: steps[0].depends_on[0]: unknown step 'zzz'"
    ]


def test_self_dependency() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            run: echo
            depends_on: [a]
        """
    ) == ["wf.yaml:5:18: steps[0].depends_on[0]: a step cannot depend on itself"]


def test_two_step_cycle() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            run: echo
            depends_on: [b]
          - id: b
            run: echo
            depends_on: [a]
        """
    ) == ["wf.yaml:5:18: steps[0].depends_on[0]: dependency cycle: b -> a -> b"]


def test_cycle_names_every_member_and_not_the_bystanders() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: root
            run: echo
          - id: a
            run: echo
            depends_on: [root, c]
          - id: b
            run: echo
            depends_on: [a]
          - id: c
            run: echo
            depends_on: [b]
          - id: leaf
            run: echo
            depends_on: [c]
        """
    ) == ["wf.yaml:13:18: steps[3].depends_on[0]: dependency cycle: b -> c -> a -> b"]


def test_cycle_through_a_data_reference() -> None:
    assert errors(
        """
        name: x
        steps:
          - id: a
            run: echo
            with: {v: "{{ steps.b.output }}"}
          - id: b
            run: echo
            depends_on: [a]
        """
    ) == ["wf.yaml:5:12: steps[0].with.v: dependency cycle: b -> a -> b"]


def test_cycle_against_stage_order() -> None:
    """A step may not read a later stage's output: the barrier already orders them."""
    assert errors(
        """
        name: x
        stages:
          - name: one
            steps:
              - id: early
                run: echo
                with: {v: "{{ steps.late.output }}"}
          - name: two
            steps:
              - id: late
                run: echo
        """
    ) == ["wf.yaml:7:16: stages[0].steps[0].with.v: dependency cycle: late -> early -> late"]


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ git.sha }}",
            "unknown name 'git' in template: use one of params, run, steps, secrets, item, "
            "item_index",
        ),
        ("{{ params.regoin }}", "unknown param 'regoin' (did you mean 'region'?)"),
        ("{{ secrets.TOKEN }}", "secret 'TOKEN' is not declared under secrets"),
        ("{{ steps.nope.output }}", "unknown step 'nope'"),
        ("{{ steps.fetc.output.x }}", "unknown step 'fetc' (did you mean 'fetch'?)"),
        ("{{ steps.use.output }}", "a step cannot read its own output"),
        ("{{ item }}", "'item' exists only in for_each steps"),
        ("{{ item_index }}", "'item_index' exists only in for_each steps"),
        ("{{ params.region }", "template syntax error: unexpected '}'"),
        (
            "{{ params.region | }}",
            "template syntax error: expected token 'name', got 'end of print statement'",
        ),
        (
            "{{ run.user }}",
            "run has no field 'user': use one of id, workflow, tenant, environment, started_at",
        ),
        ("{{ params[params.region] }}", "params must be read by name, e.g. params.region"),
        (
            "{{ env.HOME }}",
            "unknown name 'env' in template: use one of params, run, steps, "
            "secrets, item, item_index",
        ),
    ],
)
def test_template_problems_point_at_the_field(template: str, message: str) -> None:
    assert errors(
        f"""
        name: x
        params:
          region: eu
        steps:
          - id: fetch
            run: echo
          - id: use
            run: echo
            with:
              value: '{template}'
        """
    ) == [f"wf.yaml:10:7: steps[1].with.value: {message}"]


def test_local_template_names_are_allowed() -> None:
    built = plan(
        """
        name: x
        params:
          teams: [a, b]
        steps:
          - run: echo
            with:
              text: "{% for t in params.teams %}{{ loop.index }}={{ t }} {% endfor %}"
              other: "{% set n = params.teams | length %}{{ n }}"
        """
    )
    assert built.steps[0].uses_params


def test_item_in_when_and_for_each_expressions() -> None:
    assert errors(
        """
        name: x
        steps:
          - run: echo
            for_each: [1, 2]
            when: "item > 1"
          - run: echo
            for_each: "item"
        """
    ) == [
        "wf.yaml:5:5: steps[0].when: when is evaluated once per step: it cannot use item",
        "wf.yaml:7:5: steps[1].for_each: for_each is evaluated once per step: it cannot use item",
    ]


def test_when_and_for_each_references_become_data_edges() -> None:
    built = plan(
        """
        name: x
        steps:
          - id: check
            run: echo
          - id: list
            run: echo
          - id: gated
            run: echo
            when: "steps.check.output.ok"
            for_each: "{{ steps.list.output.items }}"
        """
    )
    assert built.step("gated").data_refs == ("check", "list")
    assert built.step("gated").depends_on == ()


# ---------------------------------------------------------------- schedules and params


def test_schedule_with_bad_cron_and_unknown_timezone() -> None:
    assert errors(
        """
        name: x
        schedule:
          - cron: "every day"
          - cron: "0 6 * * *"
            timezone: Mars/Olympus_Mons
        steps:
          - run: echo
        """
    ) == [
        "wf.yaml:3:5: schedule[0]: invalid cron string 'every day'",
        "wf.yaml:4:5: schedule[1]: unknown timezone 'Mars/Olympus_Mons'",
    ]


def test_schedule_shorthand_string() -> None:
    assert errors("name: x\nschedule: '61 * * * *'\nsteps:\n  - run: echo\n") == [
        "wf.yaml:2:1: schedule: invalid cron string '61 * * * *'"
    ]


def test_schedule_params_are_type_checked() -> None:
    assert errors(
        """
        name: x
        params:
          env: {type: string, required: true}
          replicas: 2
        schedule:
          cron: "0 * * * *"
          params:
            replicas: "three"
            colour: blue
        steps:
          - run: echo
        """
    ) == [
        "wf.yaml:7:3: schedule.params: param 'replicas' must be of type integer",
        "wf.yaml:7:3: schedule.params: required param 'env' has no value",
        "wf.yaml:7:3: schedule.params: unknown param 'colour'",
    ]


def test_good_schedules_become_dagster_schedules() -> None:
    compiled = compile_text(
        _text(
            """
            name: nightly
            params:
              env: {type: string, required: true}
            schedule:
              - cron: "0 2 * * *"
                timezone: Europe/Paris
                params: {env: prod}
              - cron: "*/15 * * * *"
                name: often
                params: {env: dev}
            steps:
              - run: echo
                with: {env: "{{ params.env }}"}
            """
        ),
        FILE,
    )
    first, second = compiled.schedules
    assert (first.name, first.cron_schedule, first.execution_timezone) == (
        "nightly_schedule_0",
        "0 2 * * *",
        "Europe/Paris",
    )
    assert (second.name, second.cron_schedule) == ("often", "*/15 * * * *")
    assert first.job_name == second.job_name == "nightly"


def test_param_overrides_are_checked_and_resolved() -> None:
    text = """
        name: x
        params:
          region: eu
          replicas: {type: integer, required: true}
        steps:
          - run: echo
        """
    assert plan(text, replicas=3).param_values == {"region": "eu", "replicas": 3}
    assert errors(text, replicas="3", zone="a") == [
        "wf.yaml:2:1: params: --param: param 'replicas' must be of type integer",
        "wf.yaml:2:1: params: --param: unknown param 'zone'",
    ]


# ---------------------------------------------------------------- barrier edges and defaults


BARRIER = """
    name: x
    stages:
      - name: seq
        steps:
          - id: s1
            run: echo
          - id: s2
            run: echo
      - name: par
        parallel:
          - id: p1
            run: echo
          - id: p2
            run: echo
          - id: p3
            run: echo
      - name: seq2
        steps:
          - id: t1
            run: echo
          - id: t2
            run: echo
            depends_on: [s1]
      - name: last
        parallel:
          - id: z
            run: echo
    """


def test_barrier_edges_in_the_plan() -> None:
    built = plan(BARRIER)
    assert {s.id: s.after for s in built.steps} == {
        "s1": (),
        "s2": ("s1",),
        "p1": ("s2",),  # a sequential stage hands over through its last step only
        "p2": ("s2",),
        "p3": ("s2",),
        "t1": ("p1", "p2", "p3"),  # a parallel stage: every member
        "t2": ("t1",),
        "z": ("t2",),
    }
    assert [e for e in built.to_dict()["edges"] if e["to"] == "t2"] == [
        {"from": "t1", "to": "t2", "kind": "order"},
        {"from": "s1", "to": "t2", "kind": "depends_on"},
    ]


def test_barrier_edges_in_the_dagster_job() -> None:
    job = compile_text(_text(BARRIER), FILE).job
    assert upstream_of(job, "s1") == {}
    assert upstream_of(job, "p2") == {"after_s2": [("s2", "result")]}
    assert upstream_of(job, "t1") == {
        "after_p1": [("p1", "result")],
        "after_p2": [("p2", "result")],
        "after_p3": [("p3", "result")],
    }
    assert upstream_of(job, "t2") == {
        "after_t1": [("t1", "result")],
        "needs_s1": [("s1", "result")],
    }
    assert job.graph.node_named("t1").definition.input_def_named("after_p1").dagster_type.is_nothing


def test_each_depends_on_is_its_own_input() -> None:
    """One input per upstream: Dagster runs a fan-in input when only some sources are missing."""
    job = compile_text(
        _text(
            """
            name: x
            steps:
              - id: a
                run: echo
              - id: b
                run: echo
              - id: c
                run: echo
                depends_on: [a, b]
              - id: d
                run: echo
                depends_on: [a]
                on_upstream_skip: run
            """
        ),
        FILE,
    ).job
    assert upstream_of(job, "c") == {"needs_a": [("a", "result")], "needs_b": [("b", "result")]}
    assert upstream_of(job, "d") == {"after_a": [("a", "result")]}


def test_defaults_apply_to_steps_that_do_not_set_their_own() -> None:
    compiled = compile_text(
        _text(
            """
            name: x
            defaults:
              timeout: 30s
              retry: {max_attempts: 3, backoff: 200ms, exponential: true}
            steps:
              - id: plain
                run: echo
              - id: own
                run: echo
                timeout: 2s
                retry: {max_attempts: 5}
              - id: no_retry
                run: echo
                retry: 1
            """
        ),
        FILE,
    )
    built = compiled.plan
    assert [(s.id, s.timeout, s.retry.max_attempts if s.retry else None) for s in built.steps] == [
        ("plain", 30.0, 3),
        ("own", 2.0, 5),
        ("no_retry", 30.0, 1),
    ]
    job = compiled.job
    plain = job.graph.node_named("plain").definition
    assert plain.tags["maestro/timeout_s"] == "30"
    assert plain.retry_policy == dg.RetryPolicy(
        max_retries=2, delay=0.2, backoff=dg.Backoff.EXPONENTIAL
    )
    assert job.graph.node_named("own").definition.retry_policy == dg.RetryPolicy(max_retries=4)
    assert job.graph.node_named("no_retry").definition.retry_policy is None


def test_plan_to_dict_is_json_ready() -> None:
    import json

    built = plan(BARRIER)
    summary = built.to_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert [s["id"] for s in summary["steps"]] == ["s1", "s2", "p1", "p2", "p3", "t1", "t2", "z"]
    assert summary["stages"][1] == {"name": "par", "kind": "parallel", "steps": ["p1", "p2", "p3"]}


def test_dict_method_names_read_as_the_data() -> None:
    """`params.items` is the param, `steps.get.output` the step's output: not dict methods."""
    compiled = compile_text(
        _text(
            """
            name: x
            params:
              items: {type: list, default: [1, 2]}
            steps:
              - id: get
                run: echo
                with: {n: "{{ params.items | length }}"}
              - id: use
                run: echo
                with: {got: "{{ steps.get.output.n }}", first: "{{ params.items[0] }}"}
            """
        ),
        FILE,
    )
    with dg.instance_for_test() as instance:
        result = compiled.job.execute_in_process(instance=instance)
    assert result.output_for_node("use") == {"got": 2, "first": 1}


def test_templates_in_a_literal_for_each_list_are_checked_and_wired() -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        plan(
            """
            name: x
            steps:
              - id: fe
                run: echo
                for_each: ["{{ params.nope }}", "{{ steps.ghost.output }}"]
            """
        )
    messages = [d.message for d in caught.value.diagnostics]
    assert "unknown param 'nope'" in messages
    assert "unknown step 'ghost'" in messages


def test_exponential_backoff_without_a_delay_is_a_positioned_error() -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        plan(
            """
            name: x
            steps:
              - run: echo
                retry: {max_attempts: 3, exponential: true}
            """
        )
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.path == "steps[0].retry"
    assert "give a backoff delay too" in diagnostic.message


def test_only_steps_with_independent_peers_check_for_earlier_failures() -> None:
    """In a chain every earlier failure is upstream (Dagster skips); siblings need the check."""
    built = plan(
        """
        name: x
        stages:
          - name: one
            steps:
              - {id: a, run: echo}
              - {id: b, run: echo}
          - name: two
            parallel:
              - {id: c, run: echo}
              - {id: d, run: echo}
          - name: three
            steps:
              - {id: e, run: echo}
        """
    )
    assert {s.id: s.has_independent_peers for s in built.steps} == {
        "a": False,
        "b": False,
        "c": True,
        "d": True,
        "e": False,
    }


# ---------------------------------------------------------------- executor, max_parallel, isolation


def test_the_execution_fields_reach_the_plan() -> None:
    built = plan(
        """
        name: exec
        executor: multiprocess
        max_parallel: 4
        steps:
          - {id: each, run: echo, for_each: [1, 2, 3], max_parallel: 2}
          - {id: heavy, run: echo, isolation: process}
        """
    )
    summary = built.to_dict()
    assert (summary["executor"], summary["max_parallel"]) == ("multiprocess", 4)
    steps = {s["id"]: s for s in summary["steps"]}
    assert (steps["each"]["max_parallel"], steps["each"]["isolation"]) == (2, "thread")
    assert (steps["heavy"]["max_parallel"], steps["heavy"]["isolation"]) == (None, "process")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: e\nexecutor: celery\nsteps:\n  - run: echo\n",
            "wf.yaml:2:1: executor: Input should be 'threads', 'in_process', 'multiprocess' "
            "or 'k8s'",
        ),
        (
            "name: e\nmax_parallel: 0\nsteps:\n  - run: echo\n",
            "wf.yaml:2:1: max_parallel: Input should be greater than or equal to 1",
        ),
        (
            "name: e\nsteps:\n  - {run: echo, isolation: container}\n",
            "wf.yaml:3:17: steps[0].isolation: Input should be 'thread' or 'process'",
        ),
        (
            "name: e\nsteps:\n  - run: echo\n    max_parallel: 2\n",
            "wf.yaml:4:5: steps[0].max_parallel: max_parallel on a step limits its for_each "
            "items, and this step has no for_each; the workflow's max_parallel limits the whole "
            "run",
        ),
        (
            "name: e\nexecutor: in_process\nsteps:\n  - run: echo\n    isolation: process\n",
            "wf.yaml:5:5: steps[0].isolation: isolation: process needs the threads or "
            "multiprocess executor; the workflow says executor: in_process (line 2), which runs "
            "every step in the run's own process",
        ),
    ],
    ids=["unknown executor", "zero max_parallel", "unknown isolation", "no for_each", "in_process"],
)
def test_bad_execution_fields_are_positioned_errors(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_the_executor_names_of_the_dsl_are_the_executors_the_backend_builds() -> None:
    """The language core restates the names (it imports no Dagster); they must agree."""
    from typing import get_args

    from resources.executor import EXECUTOR_KINDS
    from yaml_compiler.spec import ExecutorKind

    assert get_args(ExecutorKind) == EXECUTOR_KINDS
