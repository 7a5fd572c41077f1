"""The Dagster names a workflow gets: jobs, graph nodes, op definitions, schedules.

Dagster names allow `[A-Za-z0-9_]` and no Python keyword or Dagster reserved word. The rule is
restated here so the language core needs no Dagster import; tests/yaml_compiler/test_names.py
checks it against Dagster's own (`resources.dagster_private.DAGSTER_RESERVED_NAMES`).

A step keeps its id as its node name in the job graph (what the UI, the logs and step keys
show), while its op *definition* is named `<job>__<node>`: unique across every workflow of a
code location, so two files may each have a step called `summary`.
"""

from __future__ import annotations

import keyword
import re

RESERVED_NAMES = frozenset(
    {
        "context",
        "conf",
        "config",
        "meta",
        "arg_dict",
        "dict",
        "input_arg_dict",
        "output_arg_dict",
        "int",
        "str",
        "float",
        "bool",
        "input",
        "output",
        "type",
        *keyword.kwlist,
    }
)
_VALID_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_]")
SEPARATOR = "__"
FOR_EACH_SUFFIXES = ("__items", "__collect")
"""A for_each step owns three nodes: `<node>__items` (fan-out), `<node>`, `<node>__collect`."""


def is_valid_name(name: str) -> bool:
    return name not in RESERVED_NAMES and bool(_VALID_NAME.match(name))


def _sanitised(text: str, suffix: str) -> str:
    name = _INVALID_CHARS.sub("_", text)
    return name if is_valid_name(name) else f"{name}_{suffix}"


def node_name_for(step_id: str) -> str:
    """The step's node in the job graph: its id, with other characters made `_`."""
    return _sanitised(step_id, "step")


def job_name_for(workflow_name: str) -> str:
    return _sanitised(workflow_name, "job")


def op_definition_name(job_name: str, node_name: str) -> str:
    """Unique per code location: job names are unique, node names unique within a job."""
    return f"{job_name}{SEPARATOR}{node_name}"
