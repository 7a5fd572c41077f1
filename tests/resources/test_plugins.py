"""Built-in plugins, called directly (plain functions of params and a StepContext) and through
real runs: shell quoting and failures, HTTP against a loopback server, echo, python, reserved."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.plugins import (
    BUILTIN_PLUGINS,
    Plugin,
    PluginNotInstalledError,
    RunInfo,
    StepContext,
    StepError,
    StepTimeoutError,
    default_registry,
)
from resources.plugins.echo import ECHO, EchoParams
from resources.plugins.http import HTTP_REQUEST, HttpParams
from resources.plugins.python_call import PYTHON, PythonParams, resolve_callable
from resources.plugins.reserved import RESERVED
from resources.plugins.shell import SHELL, ShellParams, prepare_shell, split_command
from resources.policy.engine import PolicyEngineResource
from tests.support.compiling import compile_file
from tests.support.http_server import serve_http
from tests.support.paths import PROJECT_ROOT
from tests.support.reserved_plugin import GEOCODE, registry_with_reserved
from tests.support.runs import failure as failure_of
from tests.support.runs import ran
from yaml_compiler.backend.runtime.execute import call_plugin

Runner = Callable[..., dg.ExecuteInProcessResult]
INJECTION = "a b; echo pwned $(echo subshell) 'single' \"double\" `tick` | cat > x"


def context(deadline: float | None = None) -> StepContext:
    """Tenant `default`, whose policy data allows loopback addresses (`ssrf_allow`)."""
    return StepContext(
        step_id="probe",
        run=RunInfo("run-1", "wf", "default", "dev", ""),
        log=logging.getLogger("maestro.test"),
        deadline=deadline,
        resources={"policy": PolicyEngineResource()},
    )


# ---------------------------------------------------------------- shell: argv and quoting


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("printf '%s\\n' {{ params.v }}", ["printf", "%s\\n", "{{ params.v }}"]),
        ('echo "x {{ params.v }} y" z', ["echo", "x {{ params.v }} y", "z"]),
        (
            "echo {{ params.v | upper }}{{ params.w }}",
            ["echo", "{{ params.v | upper }}{{ params.w }}"],
        ),
        ("ls {% if params.all %}-a{% endif %} /", ["ls", "{% if params.all %}-a{% endif %}", "/"]),
    ],
)
def test_split_command_keeps_templates_whole(command: str, argv: list[str]) -> None:
    assert split_command(command) == argv


def test_prepare_leaves_shell_true_commands_as_strings() -> None:
    raw = {"command": "echo {{ params.v }} | wc -c", "shell": True}
    assert prepare_shell(raw) == raw
    assert prepare_shell({"command": "echo a  b"}) == {"command": ["echo", "a", "b"]}


QUOTING = """
    name: quoting
    params:
      value: {type: string, required: true}
    steps:
      - id: argv
        run: shell
        with:
          command: printf '%s\\n' {{ params.value }}
          cwd: "{cwd}"
      - id: through_sh
        run: shell
        with:
          shell: true
          command: printf '%s\\n' {{ params.value }} && echo done
          cwd: "{cwd}"
    """


def test_templated_values_stay_one_literal_argument(run_yaml: Runner, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_yaml(QUOTING.replace("{cwd}", str(workdir)), {"value": INJECTION})
    assert result.success
    assert result.output_for_node("argv")["stdout"] == INJECTION + "\n"
    assert result.output_for_node("through_sh")["stdout"] == INJECTION + "\ndone\n"
    assert list(workdir.iterdir()) == []  # `> x` was text, not a redirection


def test_shell_argv_runs_no_shell_at_all() -> None:
    output = SHELL.run(ShellParams(command=["echo", "$HOME", "*", "a;b"]), context())
    assert output == {"exit_code": 0, "stdout": "$HOME * a;b\n", "stderr": ""}


def test_shell_true_runs_a_pipeline() -> None:
    output = SHELL.run(ShellParams(command="printf 'a\\nb\\nc\\n' | wc -l", shell=True), context())
    assert output["stdout"].strip() == "3"


def test_shell_true_needs_a_string_command() -> None:
    with pytest.raises(ValueError, match="shell: true takes command as a string"):
        ShellParams(command=["ls"], shell=True)


# ---------------------------------------------------------------- shell: results and failures


def test_non_zero_exit_fails_with_code_and_stderr_tail() -> None:
    script = "echo out; for i in 1 2 3 4 5; do echo err$i >&2; done; exit 7"
    with pytest.raises(StepError) as caught:
        SHELL.run(ShellParams(command=["sh", "-c", script]), context())
    error = caught.value
    assert str(error) == "command exited with code 7: err3 | err4 | err5"
    assert (error.kind, error.metadata) == ("exit_code", {"exit_code": 7})


def test_non_zero_exit_without_stderr_uses_stdout() -> None:
    with pytest.raises(StepError, match=r"^command exited with code 1: last words$"):
        SHELL.run(ShellParams(command=["sh", "-c", "echo last words; exit 1"]), context())


def test_output_keeps_only_the_tails() -> None:
    script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"
    output = SHELL.run(ShellParams(command=["sh", "-c", script], tail_lines=2), context())
    assert output == {"exit_code": 0, "stdout": "out4\nout5\n", "stderr": "err4\nerr5\n"}
    output = SHELL.run(ShellParams(command=["sh", "-c", script], tail_lines=0), context())
    assert output == {"exit_code": 0, "stdout": "", "stderr": ""}


def test_env_is_added_to_the_environment_and_cwd_is_used(tmp_path: Path) -> None:
    params = ShellParams(
        command=["sh", "-c", 'echo "$GREETING $USER_SET"; pwd; test -n "$PATH" && echo path'],
        env={"GREETING": "hello", "USER_SET": "a b"},
        cwd=str(tmp_path),
    )
    assert SHELL.run(params, context())["stdout"] == f"hello a b\n{tmp_path}\npath\n"


def test_env_values_may_be_numbers_and_booleans() -> None:
    params = ShellParams.model_validate(
        {
            "command": ["sh", "-c", "echo $PORT $RATIO $DEBUG"],
            "env": {"PORT": 8080, "RATIO": 0.5, "DEBUG": True},
        }
    )
    assert params.env == {"PORT": "8080", "RATIO": "0.5", "DEBUG": "true"}
    assert SHELL.run(params, context())["stdout"] == "8080 0.5 true\n"


def test_env_from_an_integer_param_through_a_run(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: env_param
        params:
          port: 8080
        steps:
          - id: serve
            run: shell
            with:
              command: ["sh", "-c", "echo port=$PORT"]
              env: {PORT: "{{ params.port }}"}
        """
    )
    assert result.output_for_node("serve")["stdout"] == "port=8080\n"


def test_command_not_found() -> None:
    with pytest.raises(StepError) as caught:
        SHELL.run(ShellParams(command=["maestro-no-such-command", "x"]), context())
    assert (str(caught.value), caught.value.kind) == (
        "command not found: maestro-no-such-command",
        "exit_code",
    )


def test_missing_cwd_is_not_reported_as_a_missing_command(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StepError, match=r"^cwd does not exist: "):
        SHELL.run(ShellParams(command=["ls"], cwd=str(missing)), context())
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(StepError, match=r"^cwd is not a directory: "):
        SHELL.run(ShellParams(command=["ls"], cwd=str(a_file)), context())


def running(pid: int) -> bool:
    """Alive and not a zombie: an orphan killed here is reaped by init, which may be slow."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_deadline_stops_the_process_group(tmp_path: Path) -> None:
    """The shell and the child it forked both go: the whole process group is stopped."""
    pids = tmp_path / "pids"
    script = f"sleep 5 & echo $! > {pids}; echo $$ >> {pids}; wait"
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match="command timed out and was stopped: sh"):
        SHELL.run(ShellParams(command=["sh", "-c", script]), context(time.monotonic() + 0.3))
    assert time.monotonic() - started < 5
    children = [int(pid) for pid in pids.read_text().split()]
    settle = time.monotonic() + 2.0  # SIGTERM is delivered at once, dying takes a moment
    while any(running(pid) for pid in children) and time.monotonic() < settle:
        time.sleep(0.02)
    assert [running(pid) for pid in children] == [False, False]


def test_shell_failure_through_a_run(run_yaml: Runner, tmp_path: Path) -> None:
    result = run_yaml(
        """
        name: failing_shell
        steps:
          - id: broken
            run: shell
            with: {command: "sh -c 'echo nope >&2; exit 2'"}
        """
    )
    assert not result.success
    message, metadata = failure_of(result, "broken")
    assert message == (
        "step 'broken' failed (exit_code): command exited with code 2: nope "
        f"(at {tmp_path / 'workflow.yaml'}:3)"
    )
    assert (metadata["error_kind"], metadata["exit_code"]) == ("exit_code", 2)


# ---------------------------------------------------------------- http.request


class _Handler(BaseHTTPRequestHandler):
    """A tiny API: /json, /text, /status/<code>, /slow, and POST echoing its JSON body."""

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = json.dumps(body).encode() if content_type == "application/json" else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/json"):
            self._send(200, {"path": self.path, "token": self.headers.get("X-Token")})
        elif self.path == "/text":
            self._send(200, "plain words", "text/plain")
        elif self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            self._send(status, f"status {status} body", "text/plain")
        elif self.path == "/slow":
            time.sleep(1.0)
            self._send(200, {"late": True})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(
            201,
            {"received": json.loads(body), "content_type": self.headers.get("Content-Type")},
        )

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with serve_http(_Handler) as url:
        yield url


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_http_get_json_with_query_and_headers(http_server: str) -> None:
    params = HttpParams.model_validate(
        {"url": f"{http_server}/json", "params": {"q": "a b"}, "headers": {"X-Token": "t1"}}
    )
    output = HTTP_REQUEST.run(params, context())
    assert output["status"] == 200
    assert output["json"] == {"path": "/json?q=a+b", "token": "t1"}
    assert output["url"] == f"{http_server}/json?q=a+b"
    assert output["headers"]["content-type"] == "application/json"


def test_http_text_body(http_server: str) -> None:
    output = HTTP_REQUEST.run(HttpParams(url=f"{http_server}/text"), context())
    assert (output["status"], output["text"]) == (200, "plain words")
    assert "json" not in output


def test_http_post_json_body(http_server: str) -> None:
    params = HttpParams.model_validate(
        {"url": f"{http_server}/items", "method": "post", "json": {"name": "x", "n": [1, 2]}}
    )
    output = HTTP_REQUEST.run(params, context())
    assert output["status"] == 201
    assert output["json"] == {
        "received": {"name": "x", "n": [1, 2]},
        "content_type": "application/json",
    }


def test_http_expected_status(http_server: str) -> None:
    accepted = HttpParams(url=f"{http_server}/status/404", expected_status=[404])
    assert HTTP_REQUEST.run(accepted, context())["text"] == "status 404 body"
    refused = HttpParams(url=f"{http_server}/json", expected_status=[201])
    with pytest.raises(StepError) as caught:
        HTTP_REQUEST.run(refused, context())
    assert caught.value.kind == "http_status"


def test_http_server_error(http_server: str) -> None:
    with pytest.raises(StepError) as caught:
        HTTP_REQUEST.run(HttpParams(url=f"{http_server}/status/500"), context())
    error = caught.value
    assert str(error) == f"HTTP GET {http_server}/status/500 returned 500: status 500 body"
    assert (error.kind, error.metadata) == ("http_status", {"status": 500})


def test_http_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(StepError) as caught:
        HTTP_REQUEST.run(HttpParams(url=url), context())
    assert caught.value.kind == "connection"
    assert str(caught.value).startswith(f"HTTP GET {url} failed: ")


def test_http_timeout_and_step_deadline(http_server: str) -> None:
    with pytest.raises(StepTimeoutError, match="timed out"):
        HTTP_REQUEST.run(
            HttpParams.model_validate({"url": f"{http_server}/slow", "timeout": "200ms"}), context()
        )
    started = time.monotonic()
    with pytest.raises(StepTimeoutError):
        HTTP_REQUEST.run(HttpParams(url=f"{http_server}/slow"), context(time.monotonic() + 0.2))
    assert time.monotonic() - started < 1.0


def test_http_through_a_run(run_yaml: Runner, http_server: str, tmp_path: Path) -> None:
    result = run_yaml(
        f"""
        name: api
        on_failure: continue
        params:
          base: {{type: string, default: "{http_server}"}}
          name: widget
          codes: [201]
          wait: 5s
        steps:
          - id: fetch
            run: http.request
            with:
              url: "{{{{ params.base }}}}/json"
              params: {{name: "{{{{ params.name }}}}"}}
          - id: create
            run: api.request
            with:
              url: "{{{{ params.base }}}}/items"
              method: POST
              timeout: "{{{{ params.wait }}}}"
              expected_status: "{{{{ params.codes }}}}"
              json:
                name: "{{{{ params.name }}}}"
                seen: "{{{{ steps.fetch.output.json.path }}}}"
          - id: broken
            run: http.request
            retry: {{max_attempts: 3, backoff: 100ms, retry_on: [connection]}}
            with: {{url: "{{{{ params.base }}}}/status/500"}}
          - id: refused
            run: http.request
            with: {{url: "http://127.0.0.1:{closed_port()}/"}}
        """
    )
    assert result.output_for_node("fetch")["json"] == {"path": "/json?name=widget", "token": None}
    assert result.output_for_node("create")["json"]["received"] == {
        "name": "widget",
        "seen": "/json?name=widget",
    }
    message, metadata = failure_of(result, "broken")
    assert message == (
        f"step 'broken' failed (http_status): HTTP GET {http_server}/status/500 returned 500: "
        f"status 500 body (at {tmp_path / 'workflow.yaml'}:24)"
    )
    assert metadata == {
        "error_kind": "http_status",
        "step_id": "broken",
        "plugin": "http.request",
        "retryable": False,
        "source": f"{tmp_path / 'workflow.yaml'}:24",
        "status": 500,
    }
    assert failure_of(result, "refused")[1]["error_kind"] == "connection"


# ---------------------------------------------------------------- echo


def test_echo_returns_its_params() -> None:
    params = EchoParams.model_validate({"a": 1, "b": [True, None], "c": {"d": "e"}})
    assert ECHO.run(params, context()) == {"a": 1, "b": [True, None], "c": {"d": "e"}}


def test_echo_through_a_run_renders_templates(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: echoed
        params:
          who: world
        steps:
          - id: hello
            run: echo
            with:
              greeting: "hello {{ params.who }}"
              workflow: "{{ run.workflow }}"
              run_id: "{{ run.id }}"
              started: "{{ run.started_at }}"
              literal: 3
        """
    )
    output = result.output_for_node("hello")
    started = datetime.fromisoformat(output.pop("started"))
    assert output == {
        "greeting": "hello world",
        "workflow": "echoed",
        "run_id": result.run_id,
        "literal": 3,
    }
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - started) < timedelta(minutes=5)


# ---------------------------------------------------------------- python


def takes_context(value: int, *, scale: int = 1, maestro_context: StepContext) -> dict[str, Any]:
    return {"value": value * scale, "step": maestro_context.step_id}


@pytest.mark.parametrize("path", ["os.path.join", "os.path:join", "os:path.join"])
def test_python_dotted_paths_resolve(path: str) -> None:
    assert resolve_callable(path) is os.path.join


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("maestro_no_such_module.fn", "cannot import module 'maestro_no_such_module': "),
        ("os.path.nope", "module 'os.path' has no attribute 'nope'"),
        ("os:path.nope", "module 'os' has no attribute 'path.nope'"),
        ("os.sep", "'os.sep' is not callable"),
    ],
)
def test_python_resolution_errors(path: str, message: str) -> None:
    with pytest.raises(StepError) as caught:
        resolve_callable(path)
    assert str(caught.value).startswith(message)


def test_python_passes_args_kwargs_and_the_context() -> None:
    params = PythonParams(
        callable="tests.resources.test_plugins:takes_context", args=[4], kwargs={"scale": 3}
    )
    assert PYTHON.run(params, context()) == {"value": 12, "step": "probe"}


def test_python_resolution_error_through_a_run(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: bad_python
        steps:
          - id: call
            run: python
            with: {callable: "maestro_no_such_module:run"}
        """
    )
    message, metadata = failure_of(result, "call")
    assert message.startswith(
        "step 'call' failed (plugin_error): StepError: cannot import module "
        "'maestro_no_such_module'"
    )
    assert metadata["error_kind"] == "plugin_error"


# ---------------------------------------------------------------- reserved names and registry


def test_no_built_in_name_is_reserved_any_more() -> None:
    assert RESERVED == ()
    assert all(plugin.reserved_for is None for plugin in BUILTIN_PLUGINS)


def test_a_reserved_plugin_is_not_installed_yet() -> None:
    with pytest.raises(PluginNotInstalledError) as caught:
        call_plugin(GEOCODE, None, context())
    assert str(caught.value) == (
        "plugin 'acme.geocode' is not installed yet (the acme geocoding package provides it)"
    )


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("litellm", "litellm.generate"),
        ("llm.generate", "litellm.generate"),
        ("ollama", "ollama.generate"),
        ("ollama.chat", "ollama.chat"),
        ("scrape", "web_scraper"),
        ("scrapy.crawl", "web_scraper"),
        ("api.request", "http.request"),
    ],
)
def test_registry_aliases(name: str, canonical: str) -> None:
    plugin = default_registry().get(name)
    assert plugin is not None and plugin.name == canonical


def test_an_installed_plugin_replaces_a_reserved_name() -> None:
    class RealGeocode(Plugin[EchoParams]):
        name = "acme.geocode"
        description = "a real implementation"
        params_model = EchoParams

        def run(self, params: EchoParams, ctx: StepContext) -> str:
            return "generated"

    real = RealGeocode()
    registry = registry_with_reserved()
    assert registry.get("geocode") is GEOCODE
    registry.register(real)
    assert registry.get("acme.geocode") is real
    assert call_plugin(real, EchoParams(), context()) == "generated"
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(real)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type(default_registry().get("web_scraper"))())  # shipped, not reserved


def test_reserved_step_through_a_run(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    path = tmp_path / "workflow.yaml"
    path.write_text(
        "name: geocoding\nsteps:\n  - id: locate\n    run: geocode\n"
        "    with: {address: 1 Main St}\n"
    )
    job = compile_file(path, registry=registry_with_reserved()).job
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not ran(result, "locate")
    assert failure_of(result, "locate")[0] == (
        "step 'locate' failed (plugin_error): PluginNotInstalledError: plugin 'acme.geocode' is "
        f"not installed yet (the acme geocoding package provides it) (at {path}:3)"
    )


def test_plugins_import_on_their_own() -> None:
    """`resources.plugins` must not depend on yaml_compiler having been imported first."""
    completed = subprocess.run(
        [sys.executable, "-c", "import resources.plugins as p; print(len(p.BUILTIN_PLUGINS))"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (completed.returncode, completed.stdout) == (0, f"{len(BUILTIN_PLUGINS)}\n"), (
        completed.stderr
    )


def test_header_values_written_as_numbers_are_sent_as_text() -> None:
    from resources.plugins.http import HttpParams

    params = HttpParams.model_validate(
        {"url": "http://127.0.0.1:1/", "headers": {"X-Retries": 3, "X-Debug": True}}
    )
    assert params.headers == {"X-Retries": "3", "X-Debug": "true"}
