"""Deploying Maestro: the instance file, pool limits, the local stack, the Helm values.

Plain functions under `maestro deploy` (maestro_cli/deploy.py). The instance file and the Helm
values are the shipped ones (deploy/dagster.yaml, helm-values.yaml) with what must agree with the
policy data regenerated from it (the per-tenant run queue), so the two cannot drift.
"""

from __future__ import annotations

import copy
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from maestro_defs.workflows import PROJECT_ROOT
from resources.dagster_private import PINNED_DAGSTER_VERSION
from resources.policy.concurrency import run_coordinator_config
from resources.policy.engine import PolicySet
from yaml_compiler.backend.deployment import SCHEDULES_ENV

DEPLOY_DIR = PROJECT_ROOT / "deploy"
INSTANCE_TEMPLATE = DEPLOY_DIR / "dagster.yaml"
POOLS_FILE = DEPLOY_DIR / "pools.yaml"
HELM_VALUES = PROJECT_ROOT / "helm-values.yaml"
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
DEFAULT_HOME = Path(".maestro") / "deploy"
WRITTEN_MARK = "# Written by `maestro deploy local`"
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
PG_PORT_VAR = "DAGSTER_PG_PORT"
COMPUTE_LOGS_BUCKET_ENV = "MAESTRO_COMPUTE_LOGS_S3_BUCKET"
COMPUTE_LOGS_PREFIX_ENV = "MAESTRO_COMPUTE_LOGS_S3_PREFIX"
S3_ENDPOINT_ENV = "MAESTRO_S3_ENDPOINT_URL"
HELM_CHART = "dagster/dagster"
HELM_CHART_VERSION = PINNED_DAGSTER_VERSION
"""The chart is released with Dagster: the same version as the pinned Dagster set."""


class DeployError(Exception):
    """A deployment that cannot start; each line says what to fix."""

    def __init__(self, *lines: str):
        super().__init__("\n".join(lines))
        self.lines = lines


# ---------------------------------------------------------------- the instance


def postgres_env(url: str) -> dict[str, str]:
    """DAGSTER_PG_* from `postgresql://user:password@host:port/db`."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
        raise DeployError(
            f"--postgres-url: give postgresql://user[:password]@host[:port]/db, not {url!r}"
        )
    return {
        "DAGSTER_PG_HOST": parts.hostname,
        "DAGSTER_PG_USER": unquote(parts.username or "postgres"),
        "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_DB": unquote(database),
        PG_PORT_VAR: str(parts.port or 5432),
    }


def missing_postgres_env(environ: Mapping[str, str]) -> list[str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads that are not set (an empty password
    is a value: trust or peer authentication)."""
    return [name for name in (*PG_VARS, PG_PORT_VAR) if name not in environ]


def compute_logs_config(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """dagster-aws's S3ComputeLogManager when MAESTRO_COMPUTE_LOGS_S3_BUCKET is set, else None
    (the template's local default: files under DAGSTER_HOME/storage)."""
    bucket = environ.get(COMPUTE_LOGS_BUCKET_ENV, "").strip()
    if not bucket:
        return None
    config: dict[str, Any] = {
        "bucket": bucket,
        "prefix": environ.get(COMPUTE_LOGS_PREFIX_ENV, "").strip() or "compute-logs",
        "upload_interval": 30,
    }
    endpoint = environ.get(S3_ENDPOINT_ENV, "").strip()
    if endpoint:
        config["endpoint_url"] = endpoint
        config["use_ssl"] = endpoint.startswith("https://")
    return {
        "module": "dagster_aws.s3.compute_log_manager",
        "class": "S3ComputeLogManager",
        "config": config,
    }


def instance_config(
    environ: Mapping[str, str] = os.environ, policy_dir: Path | None = None
) -> dict[str, Any]:
    """deploy/dagster.yaml with the run queue's limits from the policy data in use (and its
    S3 compute log manager when configured)."""
    config = yaml.safe_load(INSTANCE_TEMPLATE.read_text(encoding="utf-8"))
    queue = config["run_coordinator"]["config"]
    queue.update(run_coordinator_config(PolicySet.load(policy_dir)))
    compute_logs = compute_logs_config(environ)
    if compute_logs is not None:
        config["compute_logs"] = compute_logs
    return config


def instance_text(config: Mapping[str, Any]) -> str:
    header = (
        f"{WRITTEN_MARK} from deploy/dagster.yaml and the policy data; rewritten at every\n"
        "# start. Edit deploy/dagster.yaml (or remove this line to keep your own edits).\n"
    )
    return header + yaml.safe_dump(dict(config), sort_keys=False)


def write_instance(home: Path, text: str, force: bool = False) -> Path:
    """DAGSTER_HOME/dagster.yaml; a file this command did not write is kept unless `force`."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if target.exists() and not force:
        current = target.read_text(encoding="utf-8")
        if current != text and not current.startswith(WRITTEN_MARK):
            raise DeployError(
                f"{target} exists and was not written by `maestro deploy local`; "
                "move it away or pass --force to replace it"
            )
    target.write_text(text, encoding="utf-8")
    return target


def load_pool_limits(path: Path = POOLS_FILE) -> dict[str, int]:
    """`pools: {name: limit}` of a pools file; every problem names the file and the pool."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"{path}: {exc}") from None
    pools = document.get("pools") if isinstance(document, dict) else None
    if not isinstance(pools, dict):
        raise DeployError(f"{path}: pools: give a mapping of pool name to limit")
    problems = [
        f"{path}: pools.{name}: the limit must be a whole number >= 0, not {limit!r}"
        for name, limit in pools.items()
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
    ]
    if problems:
        raise DeployError(*problems)
    return {str(name): int(limit) for name, limit in pools.items()}


def apply_pool_limits(instance: Any, limits: Mapping[str, int]) -> None:
    """Set each pool's limit in the instance's storage (`dagster instance concurrency set`)."""
    for pool, limit in sorted(limits.items()):
        instance.event_log_storage.set_concurrency_slots(pool, limit)


def migrate_instance(home: Path, environ: Mapping[str, str]) -> str:
    """`dagster instance migrate` on DAGSTER_HOME: creates or upgrades the schema (a no-op on a
    current one). Returns what it printed; raises with its output when it fails."""
    done = subprocess.run(
        [_bin("dagster"), "instance", "migrate"],
        env={**environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise DeployError("dagster instance migrate failed:", done.stdout + done.stderr)
    return done.stdout


def _bin(name: str) -> str:
    """A console script of this environment (the venv the maestro command runs from)."""
    return str(Path(sys.executable).with_name(name))


# ---------------------------------------------------------------- the local stack


def stack_commands(host: str, port: int, workspace: Path = WORKSPACE) -> dict[str, list[str]]:
    return {
        "dagster-webserver": [
            _bin("dagster-webserver"),
            "-w",
            str(workspace),
            "-h",
            host,
            "-p",
            str(port),
        ],
        "dagster-daemon": [_bin("dagster-daemon"), "run", "-w", str(workspace)],
    }


def stack_environment(
    home: Path, environ: Mapping[str, str], policy_dir: Path | None
) -> dict[str, str]:
    """The processes' environment: this one, DAGSTER_HOME, schedules running unless the caller
    set MAESTRO_DEFAULT_SCHEDULE_STATUS, the policy folder when one was given."""
    env = {**environ, "DAGSTER_HOME": str(home)}
    env.setdefault(SCHEDULES_ENV, "running")
    if policy_dir is not None:
        env["MAESTRO_POLICY_DIR"] = str(policy_dir)
    return env


@dataclass
class LocalStack:
    """dagster-webserver and dagster-daemon as child processes, each in its own process group
    (so the code servers and run workers they start stop with them)."""

    commands: Mapping[str, Sequence[str]]
    env: Mapping[str, str]
    cwd: Path = PROJECT_ROOT
    stdout: Any = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        for name, command in self.commands.items():
            self.processes[name] = subprocess.Popen(
                list(command),
                cwd=self.cwd,
                env=dict(self.env),
                stdout=self.stdout,
                stderr=subprocess.STDOUT if self.stdout is not None else None,
                start_new_session=True,
            )

    def exited(self) -> dict[str, int]:
        """Processes that have stopped, with their exit codes."""
        return {
            name: code
            for name, process in self.processes.items()
            if (code := process.poll()) is not None
        }

    def wait_ready(self, url: str, timeout: float = 180) -> None:
        """Until the webserver has loaded the code location (GraphQL says LOADED)."""
        import httpx

        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        deadline = time.monotonic() + timeout
        while True:
            if self.exited():
                raise DeployError(f"the stack stopped while starting: {self.exited()}")
            try:
                reply = httpx.post(f"{url}/graphql", json={"query": query}, timeout=5).json()
                entries = reply["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise DeployError(f"the webserver at {url} did not load the code location")
            time.sleep(0.5)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM each process (they stop their code servers), then its group, then SIGKILL."""
        running = [p for p in self.processes.values() if p.poll() is None]
        for process in running:
            process.terminate()
        _wait_all(running, grace)
        for process in self.processes.values():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.5 if sig == signal.SIGTERM else 0)
        _wait_all(list(self.processes.values()), grace)


def _wait_all(processes: Iterable[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- Kubernetes (Helm)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def helm_queue_values(policies: PolicySet) -> dict[str, Any]:
    """The daemon's run queue in the chart's terms (camelCase), from the policy data."""
    config = run_coordinator_config(policies)
    return {
        "dagsterDaemon": {
            "runCoordinator": {
                "enabled": True,
                "type": "QueuedRunCoordinator",
                "config": {"queuedRunCoordinator": {_camel(k): v for k, v in config.items()}},
            }
        }
    }


def load_values(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"{path}: {exc}") from None
    if not isinstance(values, dict):
        raise DeployError(f"{path}: a values file is a mapping at the top level")
    return values


def merged_helm_values(
    extra: Sequence[Path] = (), image_tag: str | None = None, policy_dir: Path | None = None
) -> dict[str, Any]:
    """helm-values.yaml, the run queue from the policy data, then each extra file in order, then
    the image tag (of every user deployment) when given."""
    values = deep_merge(load_values(HELM_VALUES), helm_queue_values(PolicySet.load(policy_dir)))
    for path in extra:
        values = deep_merge(values, load_values(path))
    if image_tag:
        for deployment in values.get("dagster-user-deployments", {}).get("deployments", []):
            deployment.setdefault("image", {})["tag"] = image_tag
    return values


def helm_command(release: str, namespace: str, values_file: str) -> list[str]:
    return [
        "helm",
        "upgrade",
        "--install",
        release,
        HELM_CHART,
        "--version",
        HELM_CHART_VERSION,
        "--namespace",
        namespace,
        "--create-namespace",
        "--values",
        values_file,
    ]


def shell_line(command: Sequence[str]) -> str:
    return shlex.join(command)
