"""The deployment files: pinned versions, the Postgres instance config, the Helm values."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml
from jsonschema import Draft7Validator

from maestro_cli.deployment import PG_VARS, postgres_env
from tests.support.compiling import compile_file
from tests.support.paths import PROJECT_ROOT
from tests.support.ports import free_port

HELM_SCHEMA_CANDIDATES = [
    folder / "shared" / "dagster-helm" / "values.schema.json"
    for folder in (PROJECT_ROOT.parent, PROJECT_ROOT.parent.parent)
]  # shared/ beside the clone (CI), or beside the folder of worktrees
HELM_SCHEMA = next((p for p in HELM_SCHEMA_CANDIDATES if p.exists()), HELM_SCHEMA_CANDIDATES[0])
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
        if os.environ.get("CI"):  # CI has shared/ beside the clone: missing is a failure there
            pytest.fail(f"the chart's values schema is missing ({HELM_SCHEMA})")
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


# ---------------------------------------------------------------- Helm values: stricter than helm


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/"):
        node: Any = root
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        schema = node
    return schema


def unknown_keys(value: Any, schema: Any, root: dict[str, Any], path: str = "") -> list[str]:
    """Keys the chart's schema does not name. The schema leaves some objects open (a user
    deployment, postgresql), where helm would accept a misspelt key and ignore it; this does
    not. Open maps (`env`, `labels`: additionalProperties with a schema) and Kubernetes
    objects (external references) are left alone."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or str(schema.get("$ref", "")).startswith("http"):
        return []
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        option = _resolve(option, root)
        if isinstance(option, dict) and ("properties" in option or option.get("type") == "array"):
            found += unknown_keys(value, option, root, path)
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                found += unknown_keys(item, schema["properties"][key], root, f"{path}.{key}")
            elif not isinstance(schema.get("additionalProperties"), dict):
                found.append(f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += unknown_keys(item, schema["items"], root, f"{path}[{index}]")
    return found


@pytest.fixture(scope="module")
def helm_schema(helm_validator: Draft7Validator) -> dict[str, Any]:
    return json.loads(HELM_SCHEMA.read_text())


def test_every_helm_key_is_one_the_chart_knows(helm_schema: dict[str, Any]) -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    assert unknown_keys(values, helm_schema, helm_schema) == []


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("a misspelt key in an open object", ("dagster-user-deployments", "deployments", 0)),
        ("a misspelt key in postgresql", ("postgresql",)),
        (
            "a misspelt key in runK8sConfig",
            ("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"),
        ),
    ],
)
def test_misspelt_helm_keys_fail(
    helm_schema: dict[str, Any], where: str, bad: tuple[Any, ...]
) -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    node: Any = values
    for part in bad:
        node = node[part]
    node["envSecretz"] = []
    found = unknown_keys(values, helm_schema, helm_schema)
    assert found == ["." + ".".join(str(p) for p in bad).replace(".0", "[0]") + ".envSecretz"], (
        where
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("dagster-user-deployments", "deployments", 0, "port"), "3030"),  # a string
        (("computeLogManager", "type"), "S3LogManager"),  # not in the enum
        (
            (
                "dagsterDaemon",
                "runCoordinator",
                "config",
                "queuedRunCoordinator",
                "maxConcurrentRuns",
            ),
            "20",
        ),
        (("postgresql", "enabled"), "no"),
    ],
)
def test_wrong_helm_types_fail(
    helm_validator: Draft7Validator, path: tuple[Any, ...], value: Any
) -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    node: Any = values
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert list(helm_validator.iter_errors(values))


def test_helm_run_queue_matches_the_policy_data() -> None:
    from maestro_cli.deployment import helm_queue_values
    from resources.policy.engine import PolicySet

    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    shipped = values["dagsterDaemon"]["runCoordinator"]
    expected = helm_queue_values(PolicySet.load())["dagsterDaemon"]["runCoordinator"]
    assert shipped == expected
    limits = shipped["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "maestro/tenant", "value": "globex", "limit": 1} in limits


def test_helm_values_say_where_compute_logs_go() -> None:
    text = (PROJECT_ROOT / "helm-values.yaml").read_text()
    values = yaml.safe_load(text)
    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager"
    bucket = logs["config"]["s3ComputeLogManager"]["bucket"]
    assert f"bucket `{bucket}`" in text  # the header comment names it
    instance = (PROJECT_ROOT / "deploy" / "dagster.yaml").read_text()
    assert "$DAGSTER_HOME/storage/<run id>/compute_logs/" in instance


def test_helm_secrets_and_the_opa_service() -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert {"maestro-llm-keys", "maestro-s3", "maestro-opa"} <= secrets
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    # The OPA URL the pods get is the Service deploy/opa.yaml creates.
    manifests = list(yaml.safe_load_all((PROJECT_ROOT / "deploy" / "opa.yaml").read_text()))
    [service] = [m for m in manifests if m["kind"] == "Service"]
    [port] = service["spec"]["ports"]
    assert deployment["env"]["MAESTRO_OPA_URL"] == (
        f"http://{service['metadata']['name']}:{port['port']}"
    )
    [opa] = [m for m in manifests if m["kind"] == "Deployment"]
    assert opa["spec"]["selector"]["matchLabels"].items() <= service["spec"]["selector"].items()
    [push] = [m for m in manifests if m["kind"] == "Job"]
    command = push["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["maestro", "policies", "push"]
    assert deployment["env"]["MAESTRO_OPA_URL"] in command


def test_deploy_k8s_dry_run_prints_the_helm_command_and_merged_values(
    tmp_path: Path, helm_validator: Draft7Validator
) -> None:
    from tests.support.cli import run_maestro

    extra = tmp_path / "prod.yaml"
    extra.write_text("dagsterWebserver:\n  replicaCount: 2\n")
    done = run_maestro(
        "deploy",
        "k8s",
        "--dry-run",
        "-n",
        "orchestration",
        "--values",
        str(extra),
        "--image-tag",
        "1.2.3",
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    first, rest = done.stdout.split("\n", 1)
    command = shlex.split(first)
    assert command[:5] == ["helm", "upgrade", "--install", "maestro", "dagster/dagster"]
    assert command[command.index("--version") + 1] == PINS["dagster"]
    assert command[command.index("--namespace") + 1] == "orchestration"
    values = yaml.safe_load(rest)
    assert [e.message for e in helm_validator.iter_errors(values)] == []
    assert values["dagsterWebserver"]["replicaCount"] == 2  # the extra file
    assert values["dagsterWebserver"]["envSecrets"] == [{"name": "maestro-s3"}]  # merged, kept
    assert values["dagster-user-deployments"]["deployments"][0]["image"]["tag"] == "1.2.3"


def test_deploy_k8s_uses_the_policy_folder_it_is_given(tmp_path: Path) -> None:
    from tests.support.cli import run_maestro
    from tests.support.policy_data import policies_with_tenant

    folder = policies_with_tenant(tmp_path, "initech", {"max_concurrent_runs": 2})
    done = run_maestro(
        "deploy",
        "k8s",
        "--dry-run",
        "--policy-dir",
        str(folder),
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    values = yaml.safe_load(done.stdout.split("\n", 1)[1])
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert {"key": "maestro/tenant", "value": "initech", "limit": 2} in limits[
        "tagConcurrencyLimits"
    ]


# ---------------------------------------------------------------- the instance


def test_no_instance_file_at_the_repository_root() -> None:
    """`dagster dev` warns about a ./dagster.yaml (or .yml) outside DAGSTER_HOME
    (dagster/_cli/dev.py); the deployment's instance file lives in deploy/."""
    assert not (PROJECT_ROOT / "dagster.yaml").exists()
    assert not (PROJECT_ROOT / "dagster.yml").exists()
    assert (PROJECT_ROOT / "deploy" / "dagster.yaml").exists()


def test_the_instance_reads_postgres_from_dagster_pg_variables() -> None:
    storage = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())["storage"]
    assert storage["postgres"]["postgres_db"] == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }


def test_instance_config_queue_from_the_policy_folder_and_s3_compute_logs(tmp_path: Path) -> None:
    from maestro_cli.deployment import instance_config
    from tests.support.policy_data import policies_with_tenant

    folder = policies_with_tenant(tmp_path, "initech", {"max_concurrent_runs": 2})
    config = instance_config({}, folder)
    queue = config["run_coordinator"]["config"]
    assert {"key": "maestro/tenant", "value": "initech", "limit": 2} in queue[
        "tag_concurrency_limits"
    ]
    assert queue["dequeue_interval_seconds"] == 1
    assert "compute_logs" not in config  # the local default
    s3 = instance_config(
        {"MAESTRO_COMPUTE_LOGS_S3_BUCKET": "logs", "MAESTRO_S3_ENDPOINT_URL": "http://127.0.0.1:1"}
    )["compute_logs"]
    assert s3["class"] == "S3ComputeLogManager"
    assert s3["config"]["bucket"] == "logs" and s3["config"]["endpoint_url"] == "http://127.0.0.1:1"


def test_compute_logs_go_to_s3_when_configured(
    postgres_url: str, seaweedfs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run on the deployment's instance with MAESTRO_COMPUTE_LOGS_S3_BUCKET: its steps'
    stdout lands in that bucket (SeaweedFS), where the UI reads it."""
    from maestro_cli.deployment import instance_config, instance_text, write_instance
    from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY

    bucket = f"logs-{uuid.uuid4().hex[:8]}"
    seaweedfs.create_bucket(bucket)
    env = {
        "MAESTRO_COMPUTE_LOGS_S3_BUCKET": bucket,
        "MAESTRO_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        **postgres_env(postgres_url),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_instance(tmp_path, instance_text(instance_config(env)))
    workflow = tmp_path / "printing.yaml"
    workflow.write_text(
        "name: printing\nsteps:\n  - id: say\n    run: shell\n"
        '    with: {command: "echo compute-log-marker-42"}\n'
    )
    compiled = compile_file(workflow)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        result = compiled.job.execute_in_process(instance=instance)
        assert result.success
    client = seaweedfs.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and all(k.startswith("compute-logs/") for k in keys)
    bodies = b"".join(client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys)
    assert b"compute-log-marker-42" in bodies


def test_pool_limits_are_set_on_the_instance(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_cli.deployment import DeployError, apply_pool_limits, load_pool_limits
    from tests.support.cli import run_maestro

    limits = load_pool_limits()
    assert set(limits) == {"llm", "ollama", "scrape"}
    for name, value in postgres_env(postgres_url).items():
        monkeypatch.setenv(name, value)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    done = run_maestro("deploy", "pools", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pool ollama: 1" in done.stdout
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        assert {k: storage.get_concurrency_info(k).slot_count for k in limits} == limits
        apply_pool_limits(instance, {"ollama": 2})
        assert storage.get_concurrency_info("ollama").slot_count == 2
    bad = tmp_path / "pools.yaml"
    bad.write_text("pools:\n  llm: -1\n  ollama: many\n")
    with pytest.raises(DeployError) as caught:
        load_pool_limits(bad)
    assert caught.value.lines == (
        f"{bad}: pools.llm: the limit must be a whole number >= 0, not -1",
        f"{bad}: pools.ollama: the limit must be a whole number >= 0, not 'many'",
    )


def test_deploy_local_refuses_without_postgres_and_keeps_a_foreign_instance_file(
    tmp_path: Path,
) -> None:
    from tests.support.cli import UNSET, run_maestro

    unset = {name: UNSET for name in (*PG_VARS, "DAGSTER_PG_PORT")}
    done = run_maestro(
        "deploy",
        "local",
        "--home",
        str(tmp_path / "h"),
        cwd=tmp_path,
        home=tmp_path / "h",
        env=unset,
    )
    assert done.returncode == 1
    assert "DAGSTER_PG_HOST, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD, DAGSTER_PG_DB" in done.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = run_maestro(
        "deploy",
        "local",
        "--home",
        str(mine),
        "--postgres-url",
        "postgresql://postgres@127.0.0.1:1/nothing",
        cwd=tmp_path,
        home=mine,
        env=unset,
    )
    assert done.returncode == 1 and "was not written by `maestro deploy local`" in done.stderr
    assert (mine / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


# ---------------------------------------------------------------- the image


def _dockerfile() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_dockerfile_installs_the_lock_runs_as_non_root_and_serves_the_code_location() -> None:
    lines = _dockerfile()
    [base] = [line for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-\w+", base)  # a pinned patch release
    assert "COPY deploy/requirements.lock deploy/requirements.lock" in lines
    assert "COPY deploy/requirements-pip.lock deploy/requirements-pip.lock" in lines
    installs = [line for line in lines if "pip install" in line]
    assert installs[:2] == [
        "RUN pip install --require-hashes --requirement deploy/requirements-pip.lock",
        "RUN pip install --require-hashes --requirement deploy/requirements.lock",
    ]
    # nothing unpinned: the project itself comes without its dependencies, and is built with the
    # hashed setuptools and wheel installed above (no isolated build environment fetched)
    [project] = installs[2:]
    assert "--no-deps --no-build-isolation --editable ." in project, project
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("root", "0")
    assert lines.index(users[-1]) > max(lines.index(line) for line in installs)
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    args = json.loads(cmd.removeprefix("CMD "))
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert (
        args[:3] == ["dagster", "api", "grpc"] and args[args.index("--module-name") + 1] == module
    )
    for line in lines:  # no secret baked into the image
        if line.startswith(("ENV ", "ARG ")):
            assert not re.search(r"(?i)(key|token|secret|password)\w*=", line), line
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env", ".dagster_home"} <= set(ignored)


def test_the_lock_pins_the_dagster_set_and_satisfies_pyproject() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = {name: pinned for name, (pinned, _) in _lock(LOCKS[0]).items()}
    for package, expected in PINS.items():
        assert lock[package] == expected
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is not in the lock"
        assert requirement.specifier.contains(lock[name], prereleases=True), (text, lock[name])
    assert "pytest" not in lock and "ruff" not in lock  # runtime only


LOCKS = [
    PROJECT_ROOT / "deploy" / name
    for name in ("requirements.lock", "requirements-dev.lock", "requirements-pip.lock")
]
MALICIOUS_LITELLM = ["1.82.7", "1.82.8"]


def _lock_module() -> Any:
    """deploy/lock.py (a script, not a package), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("maestro_lock", PROJECT_ROOT / "deploy/lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes), every requirement line checked to be an exact pin."""
    text = path.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line == "-r requirements.lock":
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"{path.name}: not an exact pin with sha256 hashes: {line[:120]}"
        pins[match[1]] = (match[2], re.findall(r"sha256:([0-9a-f]{64})", match[3]))
    return pins


def test_every_pin_of_the_locks_carries_sha256_hashes_and_the_locks_match_the_venv() -> None:
    runtime, dev, pip = (_lock(path) for path in LOCKS)
    assert len(runtime) > 100 and {"pytest", "ruff", "mypy"} <= set(dev)
    assert {"pip", "setuptools", "wheel"} <= set(pip) and "pytest" not in pip
    assert not set(runtime) & set(dev)  # the dev lock adds to the runtime lock, never re-pins
    assert "-r requirements.lock" in LOCKS[1].read_text().splitlines()
    for pins in (runtime, dev, pip):
        for name, (_, hashes) in pins.items():
            assert hashes and len(set(hashes)) == len(hashes), name
    assert _lock_module().check() == []  # offline: the pins are the installed versions


def test_lock_check_fails_on_a_changed_pin_or_a_missing_hash(tmp_path: Path) -> None:
    lock = _lock_module()
    text = LOCKS[0].read_text()
    stale = tmp_path / "stale.lock"
    stale.write_text(text.replace("litellm==1.110.2", "litellm==1.82.7"))
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text(
        re.sub(r"(?m)^(jinja2==\S+) \\\n(    --hash=\S+ \\\n)*    --hash=\S+", r"\1", text)
    )
    assert "jinja2==3.1.6\n" in unhashed.read_text()
    for path, problem in ((stale, "pins differ"), (unhashed, "jinja2 has no hash")):
        assert lock.check({LOCKS[0]: lock.locked_versions()}) == []  # the control
        assert any(problem in line for line in lock.check({path: lock.locked_versions()})), problem


def test_litellm_is_pinned_past_the_malicious_releases_everywhere() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert "litellm==1.110.2" in project["dependencies"]
    runtime = _lock(LOCKS[0])
    assert runtime["litellm"][0] == "1.110.2" and runtime["litellm"][1]
    assert "litellm" not in _lock(LOCKS[1])  # the dev lock takes it from the runtime lock
    for path in LOCKS:
        for bad in MALICIOUS_LITELLM:
            assert f"litellm=={bad}" not in path.read_text()


def _fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal, installable wheel: what a malicious upload would look like to pip."""
    import zipfile

    folder.mkdir(exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "CANARY = True\n")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("bad", MALICIOUS_LITELLM)
def test_the_lock_cannot_resolve_a_malicious_litellm(tmp_path: Path, bad: str) -> None:
    # A find-links folder offering the malicious version (offline: no index is read).
    links = tmp_path / "links"
    _fake_wheel(links, "litellm", bad)
    request = ["install", "--dry-run", "--no-deps", "--find-links", str(links), f"litellm=={bad}"]
    assert _pip(*request).returncode == 0  # without the lock pip would take it
    refused = _pip(*request, "--constraint", str(LOCKS[0]))
    assert refused.returncode != 0 and "ResolutionImpossible" in refused.stderr, refused.stderr
    # Installing the lock itself never takes it either: only 1.110.2 is acceptable, and a
    # file named like 1.110.2 that is not the published one fails its hash.
    [block] = re.findall(r"(?m)^litellm==.*(?:\n    .*)*", LOCKS[0].read_text())
    requirements = tmp_path / "litellm.lock"
    requirements.write_text(block + "\n")
    _fake_wheel(links, "litellm", "1.110.2")
    tampered = _pip(
        "download",
        "--no-deps",
        "--require-hashes",
        "--find-links",
        str(links),
        "--dest",
        str(tmp_path / "out"),
        "--requirement",
        str(requirements),
    )
    assert tampered.returncode != 0 and "DO NOT MATCH THE HASHES" in tampered.stderr, (
        tampered.stderr
    )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_make_install_is_hash_checked() -> None:
    text = (PROJECT_ROOT / "Makefile").read_text()
    recipe = text.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    installs = [line.strip() for line in recipe.splitlines() if "pip install" in line]
    assert installs[:2] == [
        "$(PY) -m pip install --quiet --require-hashes -r deploy/requirements-pip.lock",
        "$(PY) -m pip install --quiet --require-hashes -r deploy/requirements-dev.lock",
    ]
    # the project itself, without dependencies and built with the hashed setuptools and wheel
    # of the pip lock: nothing unhashed comes in through it
    assert installs[2:] == ["$(PY) -m pip install --quiet --no-deps --no-build-isolation -e ."]
    assert "--upgrade" not in recipe and "[dev]" not in recipe


def test_the_build_backend_is_pinned_exactly_and_hashed_in_the_pip_lock() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    requires = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["build-system"]
    pip_lock = _lock(LOCKS[2])
    names = set()
    for text in requires["requires"]:
        requirement = Requirement(text)
        [spec] = requirement.specifier
        assert spec.operator == "==" and "*" not in spec.version, text  # exact, one version
        name = canonicalize_name(requirement.name)
        names.add(name)
        assert pip_lock[name][0] == spec.version and pip_lock[name][1], (text, pip_lock.get(name))
    assert {"setuptools", "wheel"} <= names
    # A later install must not swap the backend: a package of several locks has one version.
    runtime, dev = _lock(LOCKS[0]), _lock(LOCKS[1])
    for name, (pinned, _) in pip_lock.items():
        for other in (runtime, dev):
            assert other.get(name, (pinned, []))[0] == pinned, name


def test_lock_refuses_a_build_requirement_that_is_not_an_exact_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = _lock_module()
    pyproject = lock._pyproject()
    assert lock.pip_versions()["setuptools"] == lock.build_versions()["setuptools"]  # the control
    for loose in ("setuptools>=68", "setuptools", "setuptools==1.0"):
        changed = {**pyproject, "build-system": {**pyproject["build-system"], "requires": [loose]}}
        monkeypatch.setattr(lock, "_pyproject", lambda changed=changed: changed)
        with pytest.raises(SystemExit, match="setuptools"):
            lock.build_versions()


def test_the_project_builds_offline_from_the_installed_backend(tmp_path: Path) -> None:
    """Makefile's project install, run with no index at all: it fetches nothing to build."""
    recipe = (PROJECT_ROOT / "Makefile").read_text().split("$(VENV)/.installed:", 1)[1]
    [command] = [line.strip() for line in recipe.splitlines() if "-e ." in line]
    # A new venv that sees only this venv's packages (installed from the hashed locks).
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    [site] = fresh.glob("lib/python*/site-packages")
    (site / "locked.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    argv = shlex.split(command.replace("$(PY)", str(fresh / "bin" / "python")))
    done = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(site.glob("maestro_dagster-*.dist-info")), "the project is not installed"


def _dagster_dev_output(cwd: Path, home: Path, until: str, timeout: float = 180) -> str:
    """What `dagster dev` prints from `cwd` until a line containing `until` (then stopped)."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-p",
        str(free_port()),
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if until in line or time.monotonic() > deadline:
                break
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return "".join(lines)


WARNING = "Found a dagster instance configuration value"


def test_dagster_dev_from_the_repository_root_does_not_warn_about_dagster_yaml(
    tmp_path: Path,
) -> None:
    output = _dagster_dev_output(PROJECT_ROOT, tmp_path / "home", "Serving dagster-webserver")
    assert "Serving dagster-webserver" in output, output[-3000:]
    assert WARNING not in output
    # The check sees the warning where a dagster.yaml does sit in the working directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", elsewhere / "dagster.yaml")
    assert WARNING in _dagster_dev_output(elsewhere, tmp_path / "home2", WARNING)
