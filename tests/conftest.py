"""Shared fixtures: a real Dagster instance per test, workflow compilation from inline YAML,
and a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import contextlib
import http.server
import os
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.artifacts import ArtifactsIOManager, ArtifactStore
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedS3, running_seaweedfs
from yaml_compiler import CompiledWorkflow, compile_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_DSN = os.environ.get("MAESTRO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


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


def step_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Final outcome per Dagster step key: STEP_SUCCESS, STEP_FAILURE or STEP_SKIPPED."""
    outcomes: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            outcomes[event.step_key] = event.event_type_value
    return outcomes


def _result_outputs(result: dg.ExecuteInProcessResult, step_key: str) -> list[Any]:
    return [
        e.step_output_data
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
        and e.step_key == step_key
        and e.step_output_data.output_name == "result"
    ]


def ran(result: dg.ExecuteInProcessResult, step_key: str) -> bool:
    """True when the op produced a real `result`: not a skip marker, not stopped or failed."""
    return any("skipped" not in out.metadata for out in _result_outputs(result, step_key))


def skipped(result: dg.ExecuteInProcessResult, step_key: str) -> bool:
    """True when the op emitted a skip marker (`when` false, or a skipped upstream)."""
    return any("skipped" in out.metadata for out in _result_outputs(result, step_key))


@contextlib.contextmanager
def serve_http(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free loopback port, in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped after the session."""
    import psycopg2

    name = f"maestro_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES_DSN}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_DSN}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


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
