"""Shared fixtures: a real Dagster instance per test, workflow compilation from inline YAML,
a throwaway PostgreSQL database and one SeaweedFS per test session.

Tests that need PostgreSQL, Redis or SeaweedFS are marked `services` (below), so
`pytest -m "not services"` runs everything else on a machine without them.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.artifacts import ArtifactsIOManager, ArtifactStore
from tests.support.compiling import CompiledWorkflow, compile_file
from tests.support.postgres import fresh_database
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedS3, running_seaweedfs

SERVICE_FIXTURES = frozenset({"postgres_url", "postgres_instance", "seaweedfs", "e2e_stack"})
"""Fixtures that start or reach a service; a test using one (directly or not) is `services`."""
SERVICE_PARAMS = {
    "gate_instance": "postgres",
    "artifacts_backend": "s3",
    "observed_home": "postgres",
}
"""Parametrised fixtures whose one variant reaches a service."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses_service = bool(names & SERVICE_FIXTURES) or any(
            params.get(fixture) == variant for fixture, variant in SERVICE_PARAMS.items()
        )
        if uses_service:
            item.add_marker(pytest.mark.services)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def write_workflow(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML to a file in tmp_path and return its path."""

    def write(text: str, name: str = "workflow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def compile_yaml(write_workflow: Callable[..., Path]) -> Callable[..., CompiledWorkflow]:
    def compile_(text: str, name: str = "workflow.yaml") -> CompiledWorkflow:
        return compile_file(write_workflow(text, name))

    return compile_


@pytest.fixture
def run_yaml(
    compile_yaml: Callable[..., CompiledWorkflow], instance: dg.DagsterInstance
) -> Callable[..., dg.ExecuteInProcessResult]:
    """Compile and execute in process on the test instance; failures do not raise."""

    def run(text: str, params: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
        compiled = compile_yaml(text)
        run_config = {"params": params} if params else None
        return compiled.job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )

    return run


@pytest.fixture(params=["sqlite", "postgres"])
def observed_home(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A DAGSTER_HOME folder whose dagster.yaml stores runs in SQLite (the folder) or in the
    session's PostgreSQL database, emptied first; the policy store lives beside it."""
    from tests.support.observed import empty_postgres_home, sqlite_home

    home = tmp_path / "dagster_home"
    if request.param == "postgres":
        return empty_postgres_home(home, request.getfixturevalue("postgres_url"))
    return sqlite_home(home)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped after the session."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedS3]:
    """One SeaweedFS `weed mini` per test session, every port free-picked, data in a temp dir."""
    with running_seaweedfs() as server:
        yield server


class ArtifactsBackend:
    """Where a test's artifacts go: a temp folder or a fresh bucket on the session's SeaweedFS."""

    def __init__(self, kind: str, location: str, endpoint_url: str | None, client: Any = None):
        self.kind, self.location, self.endpoint_url, self.client = (
            kind,
            location,
            endpoint_url,
            client,
        )

    def io_manager(self) -> ArtifactsIOManager:
        return ArtifactsIOManager(location=self.location, s3_endpoint_url=self.endpoint_url)

    def store(self) -> ArtifactStore:
        return self.io_manager().open_store()

    def corrupt(self, key: str) -> None:
        """Flip the first byte of a stored object behind the store's back."""
        if self.kind == "local":
            path = Path(self.location) / key
            data = bytearray(path.read_bytes())
            data[0] ^= 0xFF
            path.chmod(0o644)
            path.write_bytes(bytes(data))
            return
        bucket, _, prefix = self.location.removeprefix("s3://").partition("/")
        full = f"{prefix}/{key}" if prefix else key
        data = bytearray(self.client.get_object(Bucket=bucket, Key=full)["Body"].read())
        data[0] ^= 0xFF
        self.client.put_object(Bucket=bucket, Key=full, Body=bytes(data))


@pytest.fixture(params=["local", "s3"])
def artifacts_backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ArtifactsBackend:
    """The same artifact tests on both backends: a local folder and SeaweedFS over S3."""
    if request.param == "local":
        return ArtifactsBackend("local", str(tmp_path / "artifacts"), None)
    server: SeaweedS3 = request.getfixturevalue("seaweedfs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"maestro-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    return ArtifactsBackend("s3", f"s3://{bucket}/artifacts", server.endpoint_url, server.client())


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real stack per session (`maestro deploy local` on a database of its own, so other
    tests' runs stay out of it): the end-to-end tests (tests/test_e2e_*.py) share it. This
    process reaches the same instance (DAGSTER_PG_* set for the session)."""
    from maestro_cli.deployment import postgres_env
    from tests.support.stack import running_stack

    with pytest.MonkeyPatch.context() as patch, fresh_database() as url:
        for name, value in postgres_env(url).items():
            patch.setenv(name, value)
        with running_stack(tmp_path_factory.mktemp("stack"), url) as stack:
            yield stack
