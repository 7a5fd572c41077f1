"""The `maestro` command, run for real in a subprocess, plus unit tests of its pieces."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from maestro_cli.params import ParamError, parse_params
from maestro_cli.progress import StepPart, step_part
from maestro_cli.render import format_mermaid
from maestro_cli.runner import DEFAULT_INSTANCE_YAML, instance_home
from maestro_cli.scaffold import ScaffoldError, get_template, init_project, list_templates
from resources.plugins import default_registry
from tests.support.cli import run_maestro
from tests.support.compiling import bound_resources, compile_text, plan_text
from tests.support.http_server import serve_http
from tests.support.paths import PROJECT_ROOT
from yaml_compiler.backend import build_job
from yaml_compiler.schema import workflow_json_schema
from yaml_compiler.spec import ParamSpec

SECRET_VALUE = "tok-3f9a61c2e7d8"

SMOKE = """
name: cli-smoke
params:
  greeting: {type: string, default: hello}
  times: {type: integer, default: 1}
stages:
  - name: first
    parallel:
      - id: say
        run: shell
        with: {command: "echo {{ params.greeting }}-{{ params.times * 2 }}"}
      - id: note
        run: echo
        with: {text: fixed}
  - name: second
    steps:
      - id: done
        run: shell
        with: {command: ["echo", "said {{ steps.say.output.stdout | trim }}"]}
"""

FAILING = """
name: cli-failing
steps:
  - id: ok_step
    run: echo
    with: {a: 1}
  - id: broken_step
    run: shell
    depends_on: ok_step
    with: {command: ["sh", "-c", "echo kaput-detail >&2; exit 7"]}
  - id: after_step
    run: echo
    depends_on: broken_step
"""

WITH_SECRET = """
name: cli-plan
params:
  region: {type: string, default: eu}
secrets: [MAESTRO_CLI_TEST_TOKEN]
stages:
  - name: fetch
    parallel:
      - id: call
        run: http.request
        with:
          url: "https://api.example.invalid/{{ params.region }}"
          headers: {Authorization: "Bearer {{ secrets.MAESTRO_CLI_TEST_TOKEN }}"}
        retry: {max_attempts: 3, backoff: 1s}
        timeout: 30s
      - id: local
        run: echo
        with: {x: 1}
  - name: report
    steps:
      - id: summary
        run: echo
        depends_on: [local]
        with: {status: "{{ steps.call.output.status }}"}
"""

SPEC_ERRORS = """\
name: spec-errors
colour: blue
steps:
  - id: fetch
    run: echo
    retry: {max_attempts: "x"}
"""

PLAN_ERRORS = """\
name: plan-errors
stages:
  - name: one
    steps:
      - id: build
        run: shel
        with: {command: "make"}
      - id: notify
        run: echo
        depends_on: [biuld]
        with: {text: "{{ params.channel }}"}
"""

INTELGRAPH_SEED = """\
name: intelgraph-build
version: 1.0.0
stages:
  - name: analyze
    steps:
      - run: litellm.generate
        with:
          model: gpt-4o-mini
          prompt_template: code_review

  - name: test
    parallel:
      - run: shell
        with: { command: "npm test" }
      - run: shell
        with: { command: "npm run typecheck" }
"""

SCRAPE_SITE_SEED = """\
name: scrape-site
stages:
  - name: scrape
    steps:
      - run: web_scraper
        with:
          url: https://example.com
          extract:
            type: html
"""

Maestro = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "dagster_home"


@pytest.fixture
def maestro(tmp_path: Path, home: Path) -> Maestro:
    """Run `python -m maestro_cli ...` in tmp_path with DAGSTER_HOME in tmp_path."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_maestro(*args, cwd=tmp_path, home=home, env=env)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write_(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write_


# ---------------------------------------------------------------- help, version


def test_help_lists_every_command_and_version_prints(maestro: Maestro) -> None:
    result = maestro("--help")
    assert result.returncode == 0, result.stderr
    for command in ("validate", "plan", "run", "init", "templates", "schema"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, re.MULTILINE), command
    version = maestro("--version")
    assert version.returncode == 0
    assert re.fullmatch(r"maestro, version \d+\.\d+\.\d+\S*\n", version.stdout)


# ---------------------------------------------------------------- validate


def test_validate_ok_for_files_and_folders(
    maestro: Maestro, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    (tmp_path / "flows").mkdir()
    write("flows/smoke.yaml", SMOKE)
    write("failing.yaml", FAILING)
    result = maestro("validate", "flows", "failing.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: flows/smoke.yaml (workflow cli-smoke, 3 steps)",
        "ok: failing.yaml (workflow cli-failing, 3 steps)",
    ]
    assert result.stderr == ""


def test_validate_reports_every_error_of_every_file(
    maestro: Maestro, write: Callable[[str, str], Path]
) -> None:
    write("spec_errors.yaml", SPEC_ERRORS)
    write("plan_errors.yaml", PLAN_ERRORS)
    write("smoke.yaml", SMOKE)
    result = maestro(
        "validate", "spec_errors.yaml", "missing.yaml", "plan_errors.yaml", "smoke.yaml"
    )
    assert result.returncode == 1
    assert result.stdout == "ok: smoke.yaml (workflow cli-smoke, 3 steps)\n"
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "spec_errors.yaml:2:1: colour: unknown field",
        "spec_errors.yaml:6:13: steps[0].retry.max_attempts: "
        "Input should be a valid integer, unable to parse string as an integer",
        "missing.yaml:1:1: <root>: [Errno 2] No such file or directory: 'missing.yaml'",
    ]
    assert lines[3].startswith(
        "plan_errors.yaml:6:9: stages[0].steps[0].run: unknown plugin 'shel'; known plugins: "
    )
    assert lines[4:] == [
        "plan_errors.yaml:10:22: stages[0].steps[1].depends_on[0]: "
        "unknown step 'biuld' (did you mean 'build'?)",
        "plan_errors.yaml:11:16: stages[0].steps[1].with.text: unknown param 'channel'",
    ]


# ---------------------------------------------------------------- plan


def test_plan_json_has_steps_edges_and_params(
    maestro: Maestro, write: Callable[[str, str], Path]
) -> None:
    write("plan.yaml", WITH_SECRET)
    result = maestro(
        "plan",
        "plan.yaml",
        "--format",
        "json",
        "--param",
        "region=us",
        env={"MAESTRO_CLI_TEST_TOKEN": SECRET_VALUE},
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [s["id"] for s in plan["steps"]] == ["call", "local", "summary"]
    assert {(e["from"], e["to"], e["kind"]) for e in plan["edges"]} == {
        ("call", "summary", "order"),
        ("local", "summary", "order"),
        ("local", "summary", "depends_on"),
        ("call", "summary", "data"),
    }
    assert plan["params"]["region"]["value"] == "us"
    call = plan["steps"][0]
    assert call["retry"]["max_attempts"] == 3 and call["timeout"] == "30s"
    assert call["with"]["headers"]["Authorization"] == "Bearer {{ secrets.MAESTRO_CLI_TEST_TOKEN }}"
    assert SECRET_VALUE not in result.stdout + result.stderr


def test_plan_text_and_mermaid_never_show_secret_values(
    maestro: Maestro, write: Callable[[str, str], Path]
) -> None:
    write("plan.yaml", WITH_SECRET)
    env = {"MAESTRO_CLI_TEST_TOKEN": SECRET_VALUE}
    text = maestro("plan", "plan.yaml", env=env)
    assert text.returncode == 0, text.stderr
    assert "stage fetch (parallel)" in text.stdout
    assert "  - call  [http.request]" in text.stdout
    assert "retry: 3 attempts, backoff 1s" in text.stdout
    assert "depends_on: local" in text.stdout
    assert 'region (string) = "eu"' in text.stdout
    mermaid = maestro("plan", "plan.yaml", "--format", "mermaid", env=env)
    assert mermaid.returncode == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert '  subgraph stage_s_fetch["fetch (parallel)"]' in lines
    assert '    s_call["call<br/><i>http.request</i>"]' in lines
    assert "  s_call -->|data| s_summary" in lines
    assert "  s_local -->|depends_on| s_summary" in lines
    for output in (text, mermaid):
        assert SECRET_VALUE not in output.stdout + output.stderr


def test_plan_rejects_unknown_and_badly_typed_params(
    maestro: Maestro, write: Callable[[str, str], Path]
) -> None:
    write("smoke.yaml", SMOKE)
    unknown = maestro("plan", "smoke.yaml", "--param", "greting=hi")
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "error: --param greting: unknown param (declared params: greeting, times)\n"
    )
    bad = maestro("plan", "smoke.yaml", "-p", "times=2.5")
    assert bad.returncode == 1
    assert bad.stderr == "error: --param times: expected an integer, got '2.5'\n"


# ---------------------------------------------------------------- run


def _run_id(stdout: str) -> str:
    match = re.search(r"^run ([0-9a-f-]{36}): ", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def test_run_success_shows_progress_and_is_stored_in_the_instance(
    maestro: Maestro, write: Callable[[str, str], Path], home: Path
) -> None:
    write("smoke.yaml", SMOKE)
    result = maestro("run", "smoke.yaml", "--param", "greeting=bonjour", "--param", "times=21")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("say", "note", "done"):
        assert re.search(rf"^\[ *\d+\.\d\ds\] started +{step}$", out, re.MULTILINE), step
        assert re.search(rf"^\[ *\d+\.\d\ds\] succeeded +{step} \(", out, re.MULTILINE), step
    assert out.index("started    say") < out.index("bonjour-42") < out.index("succeeded  say")
    assert "said bonjour-42" in out  # the integer param was coerced: 21 * 2
    run_id = _run_id(out)
    assert f"run {run_id}: SUCCESS in " in out
    assert "steps: 3 succeeded\n" in out
    assert f"DAGSTER_HOME={home} " in out and "dagster dev" in out
    assert " - DEBUG - " not in out + result.stderr  # Dagster's console log is silenced
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.job_name == "cli_smoke"
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.run_config["params"] == {"greeting": "bonjour", "times": 21}
        # Run tags keep what users filter runs by; the source file is job metadata.
        assert {k for k in run.tags if k.startswith("maestro/")} == {
            "maestro/workflow",
            "maestro/tenant",
        }
        assert [r.run_id for r in instance.get_runs()] == [run_id]


def test_run_failure_names_the_step_and_uses_the_default_home(
    maestro: Maestro, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("failing.yaml", FAILING)
    result = maestro("run", "failing.yaml", env={"DAGSTER_HOME": "<unset>"})
    assert result.returncode == 1
    out = result.stdout
    assert re.search(r"^\[ *\d+\.\d\ds\] succeeded +ok_step ", out, re.MULTILINE)
    failed = re.search(r"^\[ *\d+\.\d\ds\] FAILED +broken_step: (.*)$", out, re.MULTILINE)
    assert failed, out
    assert "command exited with code 7: kaput-detail" in failed.group(1)
    run_id = _run_id(out)
    assert f"run {run_id}: FAILURE in " in out
    assert "steps: 1 succeeded, 1 failed, 1 not run (after_step)" in out
    assert f"failed steps:\n  broken_step: {failed.group(1)}\n" in out
    default_home = tmp_path / ".dagster_home"
    assert (default_home / "dagster.yaml").read_text() == DEFAULT_INSTANCE_YAML
    with dg.DagsterInstance.from_config(str(default_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.job_name == "cli_failing"
        assert run.status == dg.DagsterRunStatus.FAILURE


def test_run_compile_and_param_errors_exit_1(
    maestro: Maestro, write: Callable[[str, str], Path], home: Path
) -> None:
    write("spec_errors.yaml", SPEC_ERRORS)
    broken = maestro("run", "spec_errors.yaml")
    assert broken.returncode == 1
    assert broken.stderr.startswith("spec_errors.yaml:2:1: colour: unknown field\n")
    write("required.yaml", "name: needs\nparams: {who: {required: true}}\nsteps: [{run: echo}]\n")
    missing = maestro("run", "required.yaml")
    assert missing.returncode == 1
    assert missing.stderr == "error: --param: required param 'who' has no value\n"
    assert not (home / "storage").exists()  # nothing ran


# ---------------------------------------------------------------- templates, init, schema


def test_templates_lists_every_built_in_template(maestro: Maestro) -> None:
    result = maestro("templates")
    assert result.returncode == 0, result.stderr
    for template in list_templates():
        assert re.search(
            rf"^{re.escape(template.name)} +{re.escape(template.description)}$",
            result.stdout,
            re.MULTILINE,
        )


def test_init_scaffolds_refuses_to_overwrite_then_forces(maestro: Maestro, tmp_path: Path) -> None:
    first = maestro("init", "--template", "scrape-site", "project")
    assert first.returncode == 0, first.stderr
    target = tmp_path / "project" / "workflows" / "scrape-site.yaml"
    assert target.read_text() == next(t.text for t in list_templates() if t.name == "scrape-site")
    assert first.stdout.splitlines() == [
        "wrote project/workflows/scrape-site.yaml",
        "next:",
        "  maestro validate project/workflows/scrape-site.yaml",
        "  maestro plan project/workflows/scrape-site.yaml",
        "  maestro run project/workflows/scrape-site.yaml",
    ]
    target.write_text("# edited\n")
    again = maestro("init", "--template", "scrape-site", "project")
    assert again.returncode == 1
    assert "already exists (use --force to overwrite it)" in again.stderr
    assert target.read_text() == "# edited\n"
    forced = maestro("init", "-t", "scrape-site", "--force", "project")
    assert forced.returncode == 0, forced.stderr
    assert target.read_text().startswith("# Scrape")


def test_schema_command_prints_the_schema(maestro: Maestro) -> None:
    result = maestro("schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == workflow_json_schema(default_registry())
    assert result.stdout.startswith(
        '{\n  "$schema": "https://json-schema.org/draft/2020-12/schema"'
    )


# ---------------------------------------------------------------- units: params


PARAMS = {
    "name": ParamSpec(type="string"),
    "count": ParamSpec(type="integer"),
    "ratio": ParamSpec(type="number"),
    "dry_run": ParamSpec(type="boolean"),
    "teams": ParamSpec(type="list"),
    "limits": ParamSpec(type="object"),
}


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("name=007", "007"),
        ("name=a=b", "a=b"),
        ("name=", ""),
        ("count=42", 42),
        ("count=-3", -3),
        ("ratio=2", 2),
        ("ratio=0.25", 0.25),
        ("ratio=1e3", 1000.0),
        ("dry_run=true", True),
        ("dry_run=No", False),
        ("dry_run=1", True),
        ("teams=[a, b]", ["a", "b"]),
        ('teams=["x", 1]', ["x", 1]),
        ("teams=[]", []),
        ("limits={cpu: 2, tags: [a]}", {"cpu": 2, "tags": ["a"]}),
        ('limits={"k": null}', {"k": None}),
    ],
)
def test_param_values_are_coerced_by_declared_type(assignment: str, expected: Any) -> None:
    name = assignment.split("=", 1)[0]
    value = parse_params([assignment], PARAMS)[name]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("count=4.5", "--param count: expected an integer, got '4.5'"),
        ("count=", "--param count: expected an integer, got ''"),
        ("ratio=fast", "--param ratio: expected a number, got 'fast'"),
        ("ratio=nan", "--param ratio: expected a finite number, got 'nan'"),
        ("dry_run=maybe", "--param dry_run: expected true or false, got 'maybe'"),
        ("teams=a", "--param teams: expected a list such as [a, b] in YAML or JSON, got 'a'"),
        ("limits=[1]", "--param limits: expected an object such as {key: value}"),
        ("limits={a: [", "--param limits: expected an object such as {key: value} in YAML"),
        ("nope=1", "--param nope: unknown param (declared params: count, dry_run, limits,"),
        ("count", "--param 'count': expected NAME=VALUE"),
        ("=3", "--param '=3': expected NAME=VALUE"),
    ],
)
def test_bad_param_values_name_the_param(assignment: str, message: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_params([assignment], PARAMS)
    assert str(caught.value).startswith(message)


def test_a_param_given_twice_is_an_error() -> None:
    with pytest.raises(ParamError, match="--param count: given more than once"):
        parse_params(["count=1", "count=2"], PARAMS)


# ---------------------------------------------------------------- units: scaffold, render, run


def test_templates_compile_and_match_their_sources() -> None:
    templates = {t.name: t for t in list_templates()}
    assert {"intelgraph-build", "scrape-site", "llm-review", "api-ingest", "demo"} <= set(templates)
    for template in templates.values():
        assert template.description and not template.description.startswith("#")
        compile_text(template.text, f"{template.name}.yaml")
    assert templates["demo"].text == (PROJECT_ROOT / "workflows" / "demo.yaml").read_text()
    assert templates["intelgraph-build"].text.split("\n", 1)[1] == INTELGRAPH_SEED
    assert templates["scrape-site"].text.split("\n", 1)[1] == SCRAPE_SITE_SEED
    llm = plan_text(templates["llm-review"].text)
    assert [s.plugin for s in llm.steps] == ["litellm.generate", "shell"]
    assert llm.steps[0].params["prompt_template"] == "code_review" and llm.steps[0].uses_params
    api = plan_text(templates["api-ingest"].text)
    assert api.steps[0].plugin == "http.request"
    assert all("fetch" in s.data_refs or "record" in s.data_refs for s in api.steps[1:])


class _RepoApi(BaseHTTPRequestHandler):
    """A stand-in for the GitHub API: one repository document."""

    def do_GET(self) -> None:
        if self.path != "/repos/acme/widgets":
            self.send_error(404)
            return
        body = json.dumps({"full_name": "acme/widgets", "stargazers_count": 5, "topics": ["x"]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def repo_api() -> Iterator[str]:
    with serve_http(_RepoApi) as url:
        yield url


def test_api_ingest_template_shapes_the_response(
    repo_api: str, instance: dg.DagsterInstance
) -> None:
    template = next(t for t in list_templates() if t.name == "api-ingest")
    job = compile_text(template.text, "api-ingest.yaml").job
    result = job.execute_in_process(
        run_config={"params": {"base_url": repo_api, "repo": "acme/widgets"}}, instance=instance
    )
    assert result.success
    record = {
        "fetched_in_run": result.run_id,
        "name": "acme/widgets",
        "source": f"{repo_api}/repos/acme/widgets",
        "stars": 5,
        "status": 200,
        "topics": ["x"],
    }
    assert result.output_for_node("record") == record
    assert result.output_for_node("payload") == json.dumps(record, sort_keys=True)


def test_init_project_refuses_unknown_templates(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="unknown template 'nope'; built-in templates: "):
        init_project(tmp_path, "nope")
    assert not (tmp_path / "workflows").exists()


def test_step_keys_map_to_step_ids() -> None:
    ops = {"fetch_data": "fetch.data", "greet": "greet"}
    assert step_part("fetch_data", ops) == StepPart("fetch.data")
    assert step_part("greet__items", ops) == StepPart("greet", "items", False)
    assert step_part("greet[2]", ops) == StepPart("greet", "item 2", False)
    assert step_part("greet__collect", ops) == StepPart("greet", "collect", True)
    assert step_part("greet[2]", ops).label == "greet[2]"
    assert step_part("greet__collect", ops).label == "greet (collect)"


def test_mermaid_ids_are_safe_for_keyword_and_dotted_step_ids() -> None:
    plan = plan_text(
        "name: m\nsteps:\n  - {id: end, run: echo}\n"
        "  - {id: a.b, run: echo, depends_on: end, with: {q: 'say \"hi\"'}}\n"
    )
    lines = format_mermaid(plan.to_dict()).splitlines()
    assert lines == [
        "flowchart TD",
        '  s_end["end<br/><i>echo</i>"]',
        '  s_a_b["a.b<br/><i>echo</i>"]',
        "  s_end -->|depends_on| s_a_b",
    ]


def test_instance_home_leaves_a_chosen_dagster_home_alone(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    assert instance_home({"DAGSTER_HOME": str(chosen)}, cwd=tmp_path) == chosen.resolve()
    assert chosen.is_dir() and not (chosen / "dagster.yaml").exists()
    default = instance_home({}, cwd=tmp_path)
    assert default == (tmp_path / ".dagster_home").resolve()
    assert yaml.safe_load((default / "dagster.yaml").read_text()) == {
        "telemetry": {"enabled": False}
    }


def test_a_quiet_console_keeps_every_event_in_the_event_log(
    instance: dg.DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = plan_text(SMOKE)
    job = build_job(plan, console_log_level="CRITICAL")
    assert job.tags == compile_text(SMOKE).job.tags
    result = job.execute_in_process(
        run_config={"params": {"greeting": "hey", "times": 2}},
        instance=instance,
        resources=bound_resources(),
    )
    assert result.success
    assert result.output_for_node("say")["stdout"] == "hey-4\n"
    assert "STEP_START" not in capfd.readouterr().err
    starts = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.STEP_START
    ).records
    assert len(starts) == 3


# ---------------------------------------------------------------- artifacts

ARTIFACTS_FLOW = """
name: cli-artifacts
steps:
  - id: make
    run: echo
    with: {message: kept}
  - id: use
    run: echo
    with: {message: "{{ steps.make.output.message }}!"}
"""


def test_run_stores_artifacts_and_gc_removes_only_deleted_runs_content(
    maestro: Maestro, write: Callable[[str, str], Path], home: Path
) -> None:
    write("flow.yaml", ARTIFACTS_FLOW)
    first = _run_id(maestro("run", "flow.yaml").stdout)
    write("flow.yaml", ARTIFACTS_FLOW.replace("kept", "gone"))
    second = _run_id(maestro("run", "flow.yaml").stdout)
    root = home / "artifacts" / "tenants" / "default"
    assert {p.name for p in (root / "runs").iterdir()} == {first, second}
    objects = sorted(p.name for p in (root / "cas").rglob("*") if p.is_file())
    assert len(objects) == 4  # make and use, per run: no value shared

    listed = maestro("artifacts", "ls", first)
    assert listed.returncode == 0 and listed.stdout.count(f"/runs/{first}/") == 2

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.delete_run(second)
    dry = maestro("artifacts", "gc", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 pointer(s) of deleted runs and 2 unreferenced object(s)" in dry.stdout
    assert {p.name for p in (root / "runs").iterdir()} == {first, second}  # nothing deleted
    young = maestro("artifacts", "gc")  # default --older-than 30d: everything is too young
    assert "deleted 0 pointer(s)" in young.stdout
    done = maestro("artifacts", "gc", "--older-than", "0s")
    assert "deleted 2 pointer(s) of deleted runs and 2 unreferenced object(s)" in done.stdout
    assert {p.name for p in (root / "runs").iterdir()} == {first}
    assert maestro("artifacts", "verify").returncode == 0

    stored = next(p for p in (root / "cas").rglob("*") if p.is_file())
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    broken = maestro("artifacts", "verify")
    assert broken.returncode == 1 and stored.name in broken.stderr and "corrupted" in broken.stderr
    bad = maestro("artifacts", "gc", "--older-than", "soon")
    assert bad.returncode == 2 and "invalid duration" in bad.stderr


def test_validate_a_folder_checks_names_across_files_like_the_code_location(
    maestro: Maestro, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """Two files may share step ids (`summary`), not job or schedule names."""
    write("flows/a.yaml", "name: report\nsteps:\n  - {id: summary, run: echo}\n")
    write("flows/b.yaml", "name: other\nsteps:\n  - {id: summary, run: echo}\n")
    assert maestro("validate", "flows").returncode == 0
    write("flows/c.yaml", "# a copy\nname: report\nsteps:\n  - {id: s, run: echo}\n")
    result = maestro("validate", "flows")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "flows/c.yaml:2:1: name: job 'report' is already defined by flows/a.yaml:1 (report)"
    ]
    assert "ok: flows/a.yaml" in result.stdout and "flows/c.yaml" not in result.stdout


@pytest.mark.parametrize(
    "sensor", ["maestro_policy_gate", "maestro_dead_runs", "maestro_saga", "maestro_run_traces"]
)
def test_validate_refuses_a_schedule_named_like_one_of_the_code_locations_sensors(
    maestro: Maestro, write: Callable[[str, str], Path], sensor: str
) -> None:
    """Schedules and sensors share one namespace in Dagster."""
    write(
        "flows/a.yaml",
        f"name: a\nschedule:\n  - {{name: {sensor}, cron: '0 3 * * *'}}\n"
        "steps:\n  - {id: s, run: echo}\n",
    )
    result = maestro("validate", "flows")
    assert result.returncode == 1
    assert f"flows/a.yaml:3:5: schedule[0]: schedule '{sensor}' is already defined by the" in (
        result.stderr
    )


def test_init_into_the_code_locations_workflows_folder(maestro: Maestro, tmp_path: Path) -> None:
    folder = tmp_path / "location"
    result = maestro(
        "init", "--template", "demo", "--code-location", env={"MAESTRO_WORKFLOWS_DIR": str(folder)}
    )
    assert result.returncode == 0, result.stderr
    assert (folder / "demo.yaml").read_text() == get_template("demo").text
    assert maestro("validate", str(folder)).returncode == 0
