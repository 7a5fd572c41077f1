"""`maestro plan` output: the resolved DAG as text, JSON or a Mermaid flowchart.

Every format is built from `WorkflowPlan.to_dict()`, so all three show the same plan. Templates
appear as written: secrets are never rendered here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from maestro_common.durations import format_duration
from yaml_compiler.plan import WorkflowPlan

FORMATS = ("text", "json", "mermaid")


def render_plan(plan: WorkflowPlan, fmt: str) -> str:
    """The plan in one of FORMATS."""
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "text": format_text,
        "json": format_json,
        "mermaid": format_mermaid,
    }
    return renderers[fmt](plan.to_dict())


def format_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


# ---------------------------------------------------------------- text


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _plain(value: Any) -> str | None:
    """Strings as written, other values as JSON, None as absent."""
    if value is None or isinstance(value, str):
        return value
    return _compact(value)


def _retry_text(retry: Mapping[str, Any] | None) -> str | None:
    if not retry or retry["max_attempts"] <= 1:
        return None
    parts = [f"{retry['max_attempts']} attempts"]
    if retry.get("backoff") is not None:
        exponential = " exponential" if retry["exponential"] else ""
        parts.append(f"backoff {format_duration(retry['backoff'])}{exponential}")
    if retry.get("jitter"):
        parts.append(f"jitter {retry['jitter']}")
    if retry.get("retry_on"):
        parts.append("on " + ", ".join(retry["retry_on"]))
    return ", ".join(parts)


def _step_lines(step: Mapping[str, Any]) -> list[str]:
    head = f"  - {step['id']}  [{step['plugin']}]"
    if step["run"] != step["plugin"]:
        head += f" (as {step['run']})"
    if step.get("name"):
        head += f"  {step['name']}"
    details: list[tuple[str, Any]] = [
        ("with", _compact(step["with"]) if step["with"] else None),
        ("after", ", ".join(step["after"]) or None),
        ("depends_on", ", ".join(step["depends_on"]) or None),
        ("reads", ", ".join(step["data_refs"]) or None),
        ("when", _plain(step["when"])),
        ("for_each", _plain(step["for_each"])),
        ("retry", _retry_text(step["retry"])),
        ("timeout", step["timeout"]),
        ("pool", step["pool"]),
        ("compensation", _compensation_text(step["compensation"])),
        ("on_upstream_skip", "run" if step["on_upstream_skip"] == "run" else None),
    ]
    return [head] + [f"      {key}: {value}" for key, value in details if value is not None]


def _compensation_text(compensation: Mapping[str, Any] | None) -> str | None:
    if not compensation:
        return None
    params = compensation.get("with") or {}
    return compensation["run"] + (f" {_compact(params)}" if params else "")


def _param_lines(params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for name, param in params.items():
        if param["value"] is not None:
            value = _compact(param["value"])
        else:
            value = "(required, no value)" if param["required"] else "(unset)"
        line = f"  {name} ({param['type']}) = {value}"
        if param.get("description"):
            line += f"  # {param['description']}"
        lines.append(line)
    return lines


def _header_lines(data: Mapping[str, Any]) -> list[str]:
    lines = [f"workflow {data['workflow']} {data['version']}  (Dagster job {data['job']})"]
    lines.append(f"file: {data['file']}")
    if data["description"]:
        lines.append(f"description: {data['description']}")
    policy = [f"on_failure: {data['on_failure']}"]
    if data["timeout"]:
        policy.append(f"timeout: {data['timeout']}")
    if data["budget"]:
        policy.append("budget: " + _compact({k: v for k, v in data["budget"].items() if v}))
    policy.append(f"tenant: {data['tenant']}, environment: {data['environment']}")
    lines.append("  ".join(policy))
    if data["params"]:
        lines += ["params:", *_param_lines(data["params"])]
    if data["secrets"]:
        lines.append(
            "secrets (read from the environment at run time): " + ", ".join(data["secrets"])
        )
    for schedule in data["schedules"]:
        lines.append(
            f"schedule: {schedule['cron']}"
            + (f" ({schedule['timezone']})" if schedule["timezone"] else "")
        )
    return lines


def format_text(data: Mapping[str, Any]) -> str:
    """A readable listing: header, then each stage with its steps in execution order."""
    lines = _header_lines(data)
    steps = {s["id"]: s for s in data["steps"]}
    if data["stages"]:
        for stage in data["stages"]:
            kind = "parallel" if stage["kind"] == "parallel" else "in sequence"
            lines += ["", f"stage {stage['name']} ({kind})"]
            for step_id in stage["steps"]:
                lines += _step_lines(steps[step_id])
    else:
        lines += ["", "steps (in execution order; unrelated steps run in parallel)"]
        for step in data["steps"]:
            lines += _step_lines(step)
    lines += ["", f"{len(data['steps'])} steps, {len(data['edges'])} edges"]
    return "\n".join(lines)


# ---------------------------------------------------------------- mermaid


def _node_id(step_id: str) -> str:
    """Mermaid ids: word characters only, prefixed so ids like `end` are not keywords."""
    return "s_" + re.sub(r"\W", "_", step_id)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _node(step: Mapping[str, Any]) -> str:
    return f'{_node_id(step["id"])}["{_label(step["id"])}<br/><i>{_label(step["plugin"])}</i>"]'


def _edge_lines(edges: list[Mapping[str, Any]]) -> list[str]:
    """One arrow per pair: solid when it carries data or depends_on, dotted for order only."""
    kinds: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        pair_kinds = kinds.setdefault((edge["from"], edge["to"]), [])
        if edge["kind"] not in pair_kinds:
            pair_kinds.append(edge["kind"])
    lines = []
    for (source, target), pair_kinds in kinds.items():
        strong = [k for k in pair_kinds if k != "order"]
        arrow = f"-->|{' + '.join(strong)}|" if strong else "-.->"
        lines.append(f"  {_node_id(source)} {arrow} {_node_id(target)}")
    return lines


def format_mermaid(data: Mapping[str, Any]) -> str:
    """A `flowchart TD`: one subgraph per stage, one node per step."""
    lines = ["flowchart TD"]
    steps = {s["id"]: s for s in data["steps"]}
    if data["stages"]:
        for stage in data["stages"]:
            kind = "parallel" if stage["kind"] == "parallel" else "sequence"
            lines.append(
                f'  subgraph stage_{_node_id(stage["name"])}["{_label(stage["name"])} ({kind})"]'
            )
            lines += [f"    {_node(steps[step_id])}" for step_id in stage["steps"]]
            lines.append("  end")
    else:
        lines += [f"  {_node(step)}" for step in data["steps"]]
    lines += _edge_lines(data["edges"])
    return "\n".join(lines)
