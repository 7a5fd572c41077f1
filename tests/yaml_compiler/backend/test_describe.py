"""What the UI shows of a workflow: op descriptions lead back to the YAML, run tags stay few."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg

from tests.support.compiling import compile_file

WORKFLOW = """
name: described
version: 2.0.0
environment: staging
on_failure: continue
budget: {max_cost_usd: 1.5}
stages:
  - name: fetch
    steps:
      - id: pull
        name: Pull the report
        description: Downloads yesterday's report.
        run: http.request
        with:
          url: "https://example.com/report?day={{ run.started_at }}"
          headers: {Authorization: "Bearer sk-inline-not-a-template"}
          timeout: 10s
"""


def _compiled(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "described.yaml"
    path.write_text(textwrap.dedent(WORKFLOW).lstrip())
    return path, compile_file(path)


def test_an_op_description_shows_the_plugin_the_steps_words_its_with_and_its_place(
    tmp_path: Path,
) -> None:
    path, compiled = _compiled(tmp_path)
    description = compiled.job.graph.node_named("pull").definition.description
    assert description is not None
    assert description.splitlines()[0] == (
        "**Pull the report**: `http.request` step `pull` in stage `fetch`."
    )
    assert "Downloads yesterday's report." in description
    assert "- `url`: https://example.com/report?day={{ run.started_at }}" in description
    assert "- `timeout`: 10s" in description
    assert "- `headers`: {'Authorization': '***'}" in description
    assert "sk-inline" not in description
    assert description.endswith(f"Defined at {path}:9.")


def test_run_tags_keep_what_users_filter_by_and_the_rest_is_job_metadata(
    tmp_path: Path,
) -> None:
    path, compiled = _compiled(tmp_path)
    job = compiled.job
    assert job.tags == {"maestro/workflow": "described", "maestro/tenant": "default"}
    metadata = {key: getattr(value, "value", value) for key, value in job.metadata.items()}
    assert metadata == {
        "maestro/source": str(path),
        "maestro/version": "2.0.0",
        "maestro/environment": "staging",
        "maestro/on_failure": "continue",
        "maestro/budget_usd": 1.5,
    }
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert sorted(k for k in run.tags if k.startswith("maestro/")) == [
        "maestro/tenant",
        "maestro/workflow",
    ]
