"""The saga of `on_failure: compensate`, as pure data: which steps have a compensation, and in
which order the compensations of a failed run's completed steps run. No Dagster here.

Order: a step is compensated after every completed step that *started after it ended* (those
completed later, and ran strictly after it); steps whose runs overlapped completed
concurrently, and are compensated concurrently. Dependent steps always ran one after the other,
so a step is always undone after everything built on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from yaml_compiler.plan import PlannedStep, WorkflowPlan

SAGA_SUFFIX = "__compensate"


def saga_job_name(job_name: str) -> str:
    """The saga's Dagster job: `<job>__compensate`."""
    return job_name + SAGA_SUFFIX


def compensable_steps(plan: WorkflowPlan) -> tuple[PlannedStep, ...]:
    """Steps with a compensation, when the workflow says `on_failure: compensate`."""
    if plan.spec.on_failure != "compensate":
        return ()
    return tuple(step for step in plan.steps if step.compensation is not None)


@dataclass(frozen=True)
class Completion:
    """One step of the failed run that is to be compensated: when it started and ended."""

    step_id: str
    started: float
    ended: float
    failed: bool = False
    """It failed (compensated because it says compensate_self)."""


def compensate_after(completions: Sequence[Completion]) -> dict[str, tuple[str, ...]]:
    """Step id -> the steps whose compensation must have finished before its own starts."""
    return {
        mine.step_id: tuple(
            other.step_id
            for other in completions
            if other.step_id != mine.step_id and other.started >= mine.ended
        )
        for mine in completions
    }


def reverse_waves(completions: Sequence[Completion]) -> list[list[str]]:
    """The compensations as waves (each runs at once, after the previous one): for docs,
    `maestro plan`-like views and tests."""
    after = compensate_after(completions)
    done: set[str] = set()
    waves: list[list[str]] = []
    pending = {c.step_id for c in completions}
    while pending:
        wave = sorted(s for s in pending if set(after[s]) <= done)
        if not wave:  # cannot happen: `started >= ended` is acyclic for positive durations
            wave = sorted(pending)
        waves.append(wave)
        done |= set(wave)
        pending -= set(wave)
    return waves


@dataclass(frozen=True)
class FailureInfo:
    """What the compensations see as `failure`."""

    step: str | None
    kind: str
    message: str

    def as_scope(self) -> Mapping[str, str | None]:
        return {"step": self.step, "kind": self.kind, "message": self.message}
