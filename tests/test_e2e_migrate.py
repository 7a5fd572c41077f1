"""`dagster instance migrate` on the deployment's PostgreSQL storage: a no-op on a current
database, and a database created by the previous Dagster patch release (1.13.26, stored as a
pg_dump in tests/data, made by tests/support/make_previous_schema.py) migrates and keeps its
runs; Maestro runs on it afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from maestro_cli.deployment import postgres_env
from tests.support.compiling import compile_file
from tests.support.paths import PROJECT_ROOT
from tests.support.postgres import fresh_database

DUMP = PROJECT_ROOT / "tests" / "data" / "dagster-1.13.26-postgres.sql"
PREVIOUS_RUN = "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
pytestmark = pytest.mark.services


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A DAGSTER_HOME with the deployment's dagster.yaml on a database of its own."""
    with fresh_database() as url:
        for name, value in postgres_env(url).items():
            monkeypatch.setenv(name, value)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        yield tmp_path, url


def _migrate(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGSTER, "instance", "migrate"],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _schema(url: str) -> str:
    """The database's tables, columns and indexes as pg_dump writes them (no data)."""
    done = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", url],
        capture_output=True,
        text=True,
        check=True,
    )
    skip = ("--", "\\restrict", "\\unrestrict")  # comments, and pg_dump's random session keys
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith(skip))


def _one(url: str, query: str) -> object:
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        row = cursor.fetchone()
        return row[0] if row else None


def _run_demo(home: Path) -> dg.DagsterRun:
    workflow = compile_file(PROJECT_ROOT / "workflows" / "demo.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = workflow.job.execute_in_process(instance=instance)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        return run


def test_migrate_on_a_current_database_changes_nothing(home: tuple[Path, str]) -> None:
    root, url = home
    run = _run_demo(root)  # creates the schema, stores a run
    before, version = _schema(url), _one(url, "SELECT version_num FROM alembic_version")
    done = _migrate(root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _schema(url) == before
    assert _one(url, "SELECT version_num FROM alembic_version") == version
    with dg.DagsterInstance.from_config(str(root)) as instance:
        assert instance.get_run_by_id(run.run_id) is not None
        assert instance.get_runs_count() == 1


def test_a_schema_from_the_previous_patch_release_migrates(home: tuple[Path, str]) -> None:
    root, url = home
    subprocess.run(
        ["psql", "--quiet", "-v", "ON_ERROR_STOP=1", "-f", str(DUMP), url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert _one(url, f"SELECT status FROM runs WHERE run_id = '{PREVIOUS_RUN}'") == "SUCCESS"
    done = _migrate(root)
    assert done.returncode == 0, done.stderr[-3000:]
    # The migrated schema is the one the pinned Dagster creates on an empty database.
    with fresh_database() as current:
        for name, value in postgres_env(current).items():
            os.environ[name] = value
        try:
            with dg.DagsterInstance.from_config(str(root)) as instance:
                instance.get_runs_count()  # creates every table and index
            expected = _one(current, "SELECT version_num FROM alembic_version")
            expected_schema = _schema(current)
        finally:
            for name, value in postgres_env(url).items():
                os.environ[name] = value
    assert _one(url, "SELECT version_num FROM alembic_version") == expected
    assert _schema(url) == expected_schema
    with dg.DagsterInstance.from_config(str(root)) as instance:
        old = instance.get_run_by_id(PREVIOUS_RUN)
        assert old is not None and old.job_name == "previous_version_job"
        assert old.status == dg.DagsterRunStatus.SUCCESS
        assert old.tags["maestro/tenant"] == "default"
    new = _run_demo(root)  # a Maestro run on the migrated database
    with dg.DagsterInstance.from_config(str(root)) as instance:
        assert {r.run_id for r in instance.get_runs()} == {PREVIOUS_RUN, new.run_id}
