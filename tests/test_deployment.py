"""The deployment files: pinned versions, the Postgres instance config, the Helm values."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml
from jsonschema import Draft7Validator

from maestro_cli.deployment import postgres_env
from tests.support.compiling import compile_file
from tests.support.paths import PROJECT_ROOT

HELM_SCHEMA = PROJECT_ROOT.parent / "shared" / "dagster-helm" / "values.schema.json"
PINS = {
    "dagster": "1.13.27",
    "dagster-webserver": "1.13.27",
    "dagster-graphql": "1.13.27",
    "dagster-shared": "1.13.27",
    "dagster-postgres": "0.29.27",
    "dagster-aws": "0.29.27",
    "dagster-k8s": "0.29.27",
}


@pytest.mark.parametrize(("package", "expected"), sorted(PINS.items()))
def test_pinned_dagster_versions_are_installed(package: str, expected: str) -> None:
    assert version(package) == expected


def test_pyproject_pins_match_the_installed_set() -> None:
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    for package, expected in PINS.items():
        assert f'"{package}=={expected}"' in text


def test_postgres_instance_stores_runs_events_and_schedules(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped dagster.yaml, on a real PostgreSQL database, records a Maestro run."""
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    for name, value in postgres_env(postgres_url).items():  # DAGSTER_PG_HOST, ... as deployed
        monkeypatch.setenv(name, value)
    workflow = compile_file(PROJECT_ROOT / "workflows" / "demo.yaml")
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = workflow.job.execute_in_process(instance=instance)
        assert result.success
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone() == ("maestro_demo", "SUCCESS")
        cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone()[0] > 10
        cursor.execute("SELECT to_regclass('public.jobs') IS NOT NULL")
        assert cursor.fetchone()[0]


def _partial(schema: Any) -> Any:
    """Helm merges overrides over chart defaults: drop `required`, accept external k8s refs."""
    if isinstance(schema, dict):
        if str(schema.get("$ref", "")).startswith("http"):
            return {"type": "object"}
        return {k: _partial(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_partial(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def helm_validator() -> Draft7Validator:
    if not HELM_SCHEMA.exists():
        pytest.skip(f"the chart's values schema is not beside the repo ({HELM_SCHEMA})")
    return Draft7Validator(_partial(json.loads(HELM_SCHEMA.read_text())))


def test_helm_values_match_the_chart_schema(helm_validator: Draft7Validator) -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in helm_validator.iter_errors(values)]
    assert errors == []


def test_helm_schema_check_catches_a_misspelt_key(helm_validator: Draft7Validator) -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    values["runLauncher"]["confg"] = values["runLauncher"].pop("config")
    assert list(helm_validator.iter_errors(values))


def test_helm_code_server_loads_the_code_location_module() -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert module == workspace["load_from"][0]["python_module"]["module_name"]
