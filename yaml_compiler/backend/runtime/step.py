"""What an op needs at run time, fixed when the job is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resources.plugins import Plugin
from resources.policy.enforce import WorkflowRef
from yaml_compiler.plan import PlannedStep
from yaml_compiler.spec import WorkflowSpec


@dataclass(frozen=True)
class StepRuntime:
    step: PlannedStep
    plugin: Plugin[Any]
    workflow: WorkflowSpec
    source_file: str
    data_inputs: Mapping[str, str]  # `from_<node>` input -> upstream step id (outputs read)
    gate_inputs: Mapping[str, str]  # `needs_<node>` input -> depends_on step id (skip check)
    workflow_summary: Mapping[str, Any] = field(default_factory=dict)
    """What `maestro.workflow` is asked about this workflow (plugins, models, secrets...)."""

    @property
    def ref(self) -> WorkflowRef:
        spec = self.workflow
        return WorkflowRef(spec.name, spec.tenant, spec.environment)

    @property
    def where(self) -> str:
        """`file:line` of the step in its workflow file."""
        return f"{self.source_file}:{self.step.line}"

    @property
    def retryable_kinds(self) -> frozenset[str] | None:
        """Error kinds `retry_on` retries (None: all); empty when the step has no retry."""
        retry = self.step.retry
        if retry is None:
            return frozenset()
        return None if retry.retry_on is None else frozenset(retry.retry_on)
