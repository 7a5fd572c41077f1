"""Fuzzing the front door: generated and mutated workflows, `--param` values and templates.

Every case compiles or gets positioned diagnostics (tests/support/fuzzing.py says how a case
is judged); none may raise anything else, hang past its time cap, or make memory grow. A few
hundred cases here, derandomised so CI is repeatable; `bench/fuzz.py` runs 10,000 at random.
"""

from __future__ import annotations

import resource
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import fuzzing
from tests.support.fuzzing import (
    PARAM_WORKFLOW,
    TEMPLATE_SCOPE,
    Outcome,
    judge_compile,
    judge_render,
    template_workflow,
)

OUTCOMES: Counter[str] = Counter()


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _check(outcome: Outcome, case: object) -> None:
    OUTCOMES[outcome.kind] += 1
    assert outcome.kind != "failed", f"{outcome.detail}\n--- case ---\n{case!r}"[:5000]


@_fuzz(60)
@given(fuzzing.random_structures())
def test_random_structures(text: str) -> None:
    _check(judge_compile(text), text)


@_fuzz(80)
@given(fuzzing.broken_documents())
def test_valid_documents_with_one_field_broken(text: str) -> None:
    _check(judge_compile(text), text)


@_fuzz(60)
@given(fuzzing.text_mutations())
def test_text_mutations_tabs_and_duplicate_keys(text: str) -> None:
    _check(judge_compile(text), text)


@_fuzz(40)
@given(fuzzing.binary_junk())
def test_binary_junk_and_bytes_that_are_not_utf8(data: bytes) -> None:
    _check(judge_compile(data), data)


@_fuzz(25)
@given(fuzzing.deep_nesting())
def test_deep_nesting(text: str) -> None:
    _check(judge_compile(text), text[:300])


@_fuzz(25)
@given(fuzzing.alias_bombs())
def test_alias_bombs(text: str) -> None:
    outcome = judge_compile(text)
    _check(outcome, text)


@_fuzz(10)
@given(fuzzing.huge_documents())
def test_huge_documents(text: str) -> None:
    _check(judge_compile(text), text[:300])


@_fuzz(40)
@given(fuzzing.param_assignments)
def test_param_values(assignments: list[str]) -> None:
    _check(judge_compile(PARAM_WORKFLOW, ["r=x", *assignments]), assignments)


@_fuzz(60)
@given(fuzzing.templates())
def test_templates_compile_or_are_positioned_and_render_or_fail_cleanly(template: str) -> None:
    compiled = judge_compile(template_workflow(template))
    _check(compiled, template)
    if compiled.kind == "compiled":
        _check(judge_render({"message": template}, TEMPLATE_SCOPE, seconds=2.0), template)


def test_memory_stays_flat_over_a_mixed_batch() -> None:
    """After a warm-up, a further batch of every kind grows the peak RSS by less than 150 MB
    (an unbounded alias bomb alone took over 1 GB)."""
    strategy = st.one_of(
        fuzzing.alias_bombs(),
        fuzzing.deep_nesting(),
        fuzzing.huge_documents(),
        fuzzing.templates().map(template_workflow),
    )

    @_fuzz(15)
    @given(strategy)
    def batch(text: str) -> None:
        _check(judge_compile(text), text[:300])

    batch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    batch()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150, grown_mb
    assert OUTCOMES["failed"] == 0
