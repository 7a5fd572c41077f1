"""Names that must stay unique across every workflow file a code location loads together.

Op definitions are unique per workflow by construction (`<job>__<node>`), so two files may both
have a step called `summary`. What stays shared is checked here: job names, op definition
names (`a` + step `b__c` meets `a__b` + step `c`), schedule and sensor names, and asset keys.
`maestro validate` of several files and the code location run this same check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from yaml_compiler.diagnostics import Diagnostic, FieldPath
from yaml_compiler.names import FOR_EACH_SUFFIXES, op_definition_name
from yaml_compiler.plan import WorkflowPlan, schedule_names, schedule_path


@dataclass(frozen=True)
class _Claim:
    namespace: str  # Dagster's: jobs, ops, instigators (schedules and sensors), assets
    kind: str
    name: str
    path: FieldPath


def _claims(plan: WorkflowPlan) -> Iterator[_Claim]:
    yield _Claim("job", "job", plan.job_name, ("name",))
    for step in plan.steps:
        suffixes = ("", *FOR_EACH_SUFFIXES) if step.for_each is not None else ("",)
        for suffix in suffixes:
            name = op_definition_name(plan.job_name, step.node_name + suffix)
            yield _Claim("op", "op definition", name, (*step.path, "id"))
        for index, output in enumerate(step.outputs):
            assert output.asset_key is not None
            yield _Claim("asset", "asset", output.asset_key, (*step.path, "outputs", index))
    document = plan.document.value if plan.document is not None else None
    for index, name in enumerate(schedule_names(plan.spec)):
        yield _Claim("instigator", "schedule", name, schedule_path(document, index))


def _position(plan: WorkflowPlan, path: FieldPath) -> str:
    line = plan.document.position(path)[0] if plan.document is not None else 1
    return f"{plan.source_file}:{line}"


def unique_names(
    plans: Sequence[WorkflowPlan], reserved: Mapping[str, str] | None = None
) -> tuple[list[WorkflowPlan], list[Diagnostic]]:
    """The plans whose names clash with no earlier plan, and one diagnostic per clash.

    `reserved`: instigator names already taken (the policy gate sensor), name -> what it is.
    The first file (in the order given) keeps a name; the later one is reported at its own
    line, naming the first file and line.
    """
    owners: dict[tuple[str, str], tuple[WorkflowPlan, FieldPath] | str] = {
        ("instigator", name): what for name, what in (reserved or {}).items()
    }
    accepted: list[WorkflowPlan] = []
    problems: list[Diagnostic] = []
    for plan in plans:
        clashes = []
        for claim in _claims(plan):
            owner = owners.get((claim.namespace, claim.name))
            if owner is None:
                continue
            if isinstance(owner, str):
                first = owner
            else:
                first_plan, first_path = owner
                first = f"{_position(first_plan, first_path)} ({first_plan.spec.name})"
            clashes.append(
                plan.diagnostic(
                    claim.path, f"{claim.kind} {claim.name!r} is already defined by {first}"
                )
            )
        if clashes:
            problems += clashes
            continue
        for claim in _claims(plan):
            owners[(claim.namespace, claim.name)] = (plan, claim.path)
        accepted.append(plan)
    return accepted, problems
