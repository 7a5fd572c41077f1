"""A step's output on its way out: JSON only, and its files (declared, or handed over by its
plugin) streamed into the store."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from maestro_common.template_sandbox import render_limits
from resources.plugins import StepError
from resources.plugins.base import PluginFile
from yaml_compiler.backend.runtime.redaction import Redactor
from yaml_compiler.backend.runtime.scope import StepConfigError, describe_error
from yaml_compiler.backend.runtime.step import StepRuntime
from yaml_compiler.spec import OUTSIDE_HINT, output_path_problem
from yaml_compiler.templating import render_string


def check_json(value: Any, step_id: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StepError(f"step {step_id!r} returned a value that is not JSON: {exc}") from exc


def resolve_output_path(rendered: str, params: Any, allow_outside: bool = False) -> Path:
    """A file output's path, normalised (`sub/../report.txt` is `report.txt`): relative ones
    resolve against the step's `cwd` (shell), else the worker's working directory, i.e. where
    the command wrote them. Unless the output has `allow_outside: true`, the path must stay in
    that folder, also once symlinks are followed (StepConfigError otherwise)."""
    cwd = getattr(params, "cwd", None)
    base = Path(cwd) if cwd else Path.cwd()
    if allow_outside:
        path = Path(posixpath.normpath(rendered)).expanduser()
        return path if path.is_absolute() else Path(posixpath.normpath(base / path))
    problem = output_path_problem(rendered)
    if problem is not None:
        raise StepConfigError(f"{problem}: {OUTSIDE_HINT}")
    path = base / posixpath.normpath(rendered)
    real, folder = path.resolve(), base.resolve()
    if real != folder and folder not in real.parents:
        raise StepConfigError(
            f"path {rendered!r} leads out of the step's working folder {str(folder)!r} "
            f"(through a symlink, to {str(real)!r}): {OUTSIDE_HINT}"
        )
    return path


def _content_store(context: dg.OpExecutionContext, step_id: str, what: str) -> Any:
    writer = getattr(context.resources, "io_manager", None)
    if not callable(getattr(writer, "store_file_output", None)):
        raise StepConfigError(
            f"step {step_id!r} {what}: they need the content store "
            "(io_manager = resources.artifacts.ArtifactsIOManager)"
        )
    return writer


def file_metadata(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`<name>_sha256`, `<name>_size`, `<name>_uri` of each stored file, for the output event."""
    metadata: dict[str, Any] = {}
    for name, info in stored.items():
        for key in ("sha256", "size", "uri"):
            metadata[f"{name}_{key}"] = info[key]
    return metadata


def store_file_outputs(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    scope: Mapping[str, Any],
    params: Any,
    output: Any,
    plugin_files: Mapping[str, PluginFile] | None = None,
    redact: Redactor | None = None,
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Stream the files a step declared (`outputs: [{name, path}]`) and the files its plugin
    handed over (`StepContext.add_file`) into the content store. The step's output gains
    `{name: {sha256, size, uri, media_type, serializer, path}}`; returns it and those entries.
    Paths are shown (log line, metadata, `path`) through `redact`: a secret may name a file.
    A file that holds a declared secret's value is refused, not stored: rewriting its bytes
    would corrupt what the step wrote (a zip, a signed file) and its hash would not be the
    file's; the step fails and names the output."""
    files = [o for o in runtime.step.outputs if o.path is not None]
    plugin_files = dict(plugin_files or {})
    if not files and not plugin_files:
        return output, {}
    step_id = runtime.step.id
    if not isinstance(output, dict):
        raise StepError(
            f"step {step_id!r} declares file outputs but its plugin returned "
            f"{type(output).__name__}, not a mapping to add them to",
            kind="invalid_output",
        )
    what = "declares file outputs" if files else f"writes file outputs ({', '.join(plugin_files)})"
    writer = _content_store(context, step_id, what)
    assets = {o.name: o.asset_key for o in runtime.step.outputs if o.path is None}
    stored = dict(output)
    found: list[tuple[str, str | None, Path, str | None]] = []
    for spec in files:
        assert spec.path is not None and spec.asset_key is not None
        if spec.name in stored or spec.name in plugin_files:
            raise StepError(
                f"output {spec.name!r}: the plugin's output already has a key {spec.name!r}",
                kind="invalid_output",
            )
        try:
            with render_limits(runtime.step.timeout):
                rendered = render_string(spec.path, scope)
        except Exception as exc:
            raise StepConfigError(
                f"output {spec.name!r}: template error in path: {describe_error(exc)}"
            ) from exc
        if not isinstance(rendered, str) or not rendered.strip():
            raise StepConfigError(f"output {spec.name!r}: path rendered to {rendered!r}")
        try:
            path = resolve_output_path(rendered, params, spec.allow_outside)
        except StepConfigError as exc:
            raise StepConfigError(f"output {spec.name!r}: {exc}") from None
        _check_file(step_id, spec.name, path, rendered)
        found.append((spec.name, spec.asset_key, path, None))
    for name, handed in plugin_files.items():
        if name in stored:
            raise StepError(
                f"output {name!r}: the plugin's output already has a key {name!r}",
                kind="invalid_output",
            )
        _check_file(step_id, name, handed.path, str(handed.path))
        found.append((name, assets.get(name), handed.path, handed.media_type))
    redact = redact or Redactor(())
    for name, _, path, _ in found:  # checked before any is stored: none half-stored
        if redact.found_in_file(path):
            raise StepError(
                f"output {name!r}: the file {redact(str(path))} holds a declared secret's value, "
                "so it is not stored (write the file without it; a secret is read where it is "
                "needed, from secrets.<NAME>)",
                kind="invalid_output",
                output=name,
            )
    entries: dict[str, dict[str, Any]] = {}
    for name, asset_key, path, media_type in found:  # every file is there: none half-stored
        shown = redact(str(path))
        try:
            entry = writer.store_file_output(
                context, name, asset_key, path, media_type, shown_path=shown
            )
        except (StepError, StepConfigError, dg.Failure):
            raise
        except Exception as exc:  # the store is down or cut the upload: say so
            raise StepError(
                f"output {name!r}: could not store {shown} in the artifact store: "
                f"{type(exc).__name__}: {redact(str(exc))} (nothing is kept under its "
                "content key until the upload completes)",
                kind="connection" if _unreachable(exc) else "plugin_error",
                output=name,
            ) from exc
        context.log.info(f"stored file output {name!r}: {shown} ({entry['size']} bytes)")
        if name in plugin_files:
            entry.pop("path", None)  # the plugin's scratch file: gone once the step finishes
        entries[name] = entry
    stored.update(entries)
    return stored, entries


def _unreachable(error: BaseException) -> bool:
    """A transport failure (refused, reset, timed out), as boto3 and the OS name them."""
    names = {type(e).__name__ for e in (error, error.__cause__, error.__context__) if e}
    return isinstance(error, (ConnectionError, TimeoutError)) or any(
        "Connection" in n or "Timeout" in n for n in names
    )


def _check_file(step_id: str, name: str, path: Path, written: str) -> None:
    if not path.is_file():
        state = "is not a regular file" if path.exists() else "does not exist"
        raise StepError(
            f"output {name!r}: step {step_id!r} succeeded but its file {written!r} "
            f"({path}) {state}",
            kind="invalid_output",
            output=name,
            path=str(path),
        )
