"""Dagster names without Dagster: the core's rule agrees with Dagster's, and op definitions are
unique per workflow while graph nodes keep the step id."""

from __future__ import annotations

import textwrap

import dagster as dg

from resources.dagster_private import DAGSTER_RESERVED_NAMES
from tests.support.compiling import compile_text
from yaml_compiler.names import RESERVED_NAMES, is_valid_name, job_name_for, node_name_for


def test_the_reserved_names_are_dagsters() -> None:
    assert set(RESERVED_NAMES) == set(DAGSTER_RESERVED_NAMES)


def test_names_are_made_valid_the_way_dagster_checks_them() -> None:
    for text in ("fetch.data", "config", "class", "a-b", "ok_1", "1st", "dict"):
        name = node_name_for(text)
        assert is_valid_name(name), (text, name)
        dg.OpDefinition(compute_fn=lambda context: None, name=name)  # Dagster checks the name
    assert not is_valid_name("class") and not is_valid_name("a.b")
    assert node_name_for("fetch.data") == "fetch_data"
    assert node_name_for("config") == "config_step"
    assert job_name_for("class") == "class_job"


def test_two_workflows_with_the_same_step_load_into_one_definitions() -> None:
    """Two files each with a step `summary` (workflows/demo.yaml and examples/data-passing.yaml
    both have one): op definitions differ, the graph nodes and step keys stay `summary`."""
    text = "name: {name}\nsteps:\n  - {{id: summary, run: echo, with: {{w: {name}}}}}\n"
    first = compile_text(textwrap.dedent(text.format(name="one")))
    second = compile_text(textwrap.dedent(text.format(name="two")))
    defs = dg.Definitions(jobs=[first.job, second.job])
    for job_name in ("one", "two"):
        job = defs.resolve_job_def(job_name)
        node = job.graph.node_named("summary")
        assert node.definition.name == f"{job_name}__summary"
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance)
        assert result.output_for_node("summary") == {"w": job_name}
        assert {e.step_key for e in result.all_events if e.step_key} == {"summary"}
