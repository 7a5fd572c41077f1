"""`shell`: run a command as argv (no shell) unless `shell: true` asks for `/bin/sh -c`.

A command string is split into argv before templates are rendered, so each templated value
lands inside exactly one argument; with `shell: true`, each templated value is held in a shell
variable and referenced the way the place it lands needs (maestro_common/shell_script.py).
Output lines stream to Dagster's compute logs as they come: the pumps run in the step's
context, so under the threads executor they land in this step's own log. The command runs in
its own process group, stopped as a whole on timeout, cancellation or an interrupt.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from maestro_common.shell_script import ShellScriptError, check_source
from maestro_common.values import PrepareError, TextMap, scalar_text
from resources.liveness import child_group
from resources.plugins.base import (
    Plugin,
    PluginParams,
    Renderer,
    StepCancelledError,
    StepContext,
    StepError,
    StepTimeoutError,
)

_TEMPLATE_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_PLACEHOLDER = re.compile("\x00maestro(\\d+)\x00")
_KILL_GRACE_SECONDS = 2.0


def _argv_texts(value: Any) -> Any:
    return [scalar_text(item) for item in value] if isinstance(value, list) else value


class ShellParams(PluginParams):
    command: str | Annotated[list[str], BeforeValidator(_argv_texts)] = Field(
        description="argv list, or a string split with shlex."
    )
    shell: bool = Field(False, description="Run the string through /bin/sh -c.")
    env: TextMap = Field(default_factory=dict, description="Extra environment variables.")
    cwd: str | None = None
    tail_lines: int = Field(40, ge=0, le=10_000, description="Lines of stdout/stderr kept.")

    @model_validator(mode="after")
    def _shape(self) -> ShellParams:
        if isinstance(self.command, list) and self.shell:
            raise ValueError("shell: true takes command as a string")
        if not self.command:
            raise ValueError("command is empty")
        return self


def split_command(command: str) -> list[str]:
    """shlex-split a command string while keeping every `{{ ... }}` inside one argument."""
    spans: list[str] = []

    def protect(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00maestro{len(spans) - 1}\x00"

    argv = shlex.split(_TEMPLATE_SPAN.sub(protect, command))
    return [_PLACEHOLDER.sub(lambda m: spans[int(m.group(1))], arg) for arg in argv]


def check_shell_script(command: str) -> None:
    """For `shell: true`: refuse `{{ }}` where no value can be placed safely (comments,
    backticks, `$(( ))`, heredoc delimiters) or a script that cannot be read."""
    try:
        check_source(command)
    except ShellScriptError as exc:
        raise PrepareError("command", f"with shell: true, {exc}") from exc


def prepare_shell(raw: dict[str, Any], workflow_dir: Path | None = None) -> dict[str, Any]:
    """Compile time: split a command string into argv before any template is rendered."""
    shell = raw.get("shell", False)
    if not isinstance(shell, bool):
        raise PrepareError("shell", "must be true or false, written out (not a template)")
    command = raw.get("command")
    if not isinstance(command, str):
        return raw
    if shell:
        check_shell_script(command)
        return raw
    if "{%" in command:
        raise PrepareError(
            "command",
            "{% %} blocks cannot be split into arguments: give command as a list, "
            "or set shell: true",
        )
    try:
        return {**raw, "command": split_command(command)}
    except ValueError as exc:
        raise PrepareError("command", f"cannot split into arguments: {exc}") from exc


def render_shell(raw: Mapping[str, Any], render: Renderer) -> dict[str, Any]:
    rendered = {key: render(value) for key, value in raw.items() if key != "command"}
    command = raw.get("command")
    if rendered.get("shell") is True and isinstance(command, str):
        rendered["command"] = render(command, shell_quoted=True)
    elif isinstance(command, list):
        rendered["command"] = [str(scalar_text(render(arg))) for arg in command]
    else:
        rendered["command"] = render(command)
    return rendered


def _pump(stream: IO[str], sink: IO[str], tail: deque[str], redact: Callable[[str], str]) -> None:
    for line in stream:
        clean = redact(line)
        tail.append(clean)
        sink.write(clean)
        sink.flush()


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM the whole process group, give it a grace period, then SIGKILL what is left
    (members that ignore SIGTERM stay alive after the leader has gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _pump_thread(
    stream: IO[str] | None, sink: IO[str], tail: deque[str], redact: Callable[[str], str]
) -> threading.Thread:
    """A daemon thread copying `stream` to `sink` line by line, in the caller's context (the
    step it runs for), so a per-step `sys.stdout` sends the lines to that step's log."""
    assert stream is not None
    context = contextvars.copy_context()
    pump = threading.Thread(
        target=context.run, args=(_pump, stream, sink, tail, redact), daemon=True
    )
    pump.start()
    return pump


def _wait_or_stop(process: subprocess.Popen[str], ctx: StepContext, program: str) -> None:
    """Wait for the command; past the deadline, or when the step is cancelled, stop its group."""
    while True:
        try:
            process.wait(timeout=0.05)
            return
        except subprocess.TimeoutExpired:
            remaining = ctx.remaining()
            if remaining is not None and remaining <= 0:
                _stop(process)
                raise StepTimeoutError(f"command timed out and was stopped: {program}") from None
            if ctx.cancelled.is_set():
                _stop(process)
                raise StepCancelledError(
                    f"command stopped, the step was cancelled: {program}"
                ) from None


def run_shell(params: ShellParams, ctx: StepContext) -> dict[str, Any]:
    command = params.command
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    env = {**os.environ, **params.env}
    ctx.log.info(f"$ {shlex.join(ctx.redact(arg) for arg in argv)}")
    try:
        process = subprocess.Popen(
            argv,
            cwd=params.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if params.cwd is not None and exc.filename == params.cwd:  # not the command's fault
            raise StepError(f"cwd does not exist: {params.cwd}") from exc
        raise StepError(f"command not found: {argv[0]}", kind="exit_code") from exc
    except NotADirectoryError as exc:
        raise StepError(f"cwd is not a directory: {params.cwd}") from exc
    out_tail: deque[str] = deque(maxlen=params.tail_lines)
    err_tail: deque[str] = deque(maxlen=params.tail_lines)
    pumps = [
        _pump_thread(process.stdout, sys.stdout, out_tail, ctx.redact),
        _pump_thread(process.stderr, sys.stderr, err_tail, ctx.redact),
    ]
    try:
        with child_group(process.pid):  # stopped by the dead-run detector if we are killed
            _wait_or_stop(process, ctx, argv[0])
    except BaseException:  # an interrupt (run termination under in_process) stops it too
        if process.poll() is None:
            _stop(process)
        raise
    for pump in pumps:
        pump.join(timeout=5)
    stdout = "".join(out_tail) if params.tail_lines else ""
    stderr = "".join(err_tail) if params.tail_lines else ""
    result = {"exit_code": process.returncode, "stdout": stdout, "stderr": stderr}
    if process.returncode != 0:
        last = (stderr or stdout).strip().splitlines()[-3:]
        detail = (": " + " | ".join(last)) if last else ""
        raise StepError(
            f"command exited with code {process.returncode}{detail}",
            kind="exit_code",
            exit_code=process.returncode,
        )
    return result


class Shell(Plugin[ShellParams]):
    name = "shell"
    description = "Run a command; non-zero exit fails the step."
    params_model = ShellParams

    def prepare(self, raw: dict[str, Any], workflow_dir: Path | None) -> dict[str, Any]:
        return prepare_shell(raw, workflow_dir)

    def render(self, raw: Mapping[str, Any], render: Renderer) -> dict[str, Any]:
        return render_shell(raw, render)

    def run(self, params: ShellParams, ctx: StepContext) -> dict[str, Any]:
        return run_shell(params, ctx)


SHELL = Shell()
