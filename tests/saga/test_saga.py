"""The saga of `on_failure: compensate`, in real runs on a real instance (SQLite and
PostgreSQL): compensations of the completed steps in reverse order of completion, exactly once,
with their own retries; a failing compensation fails the saga run visibly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from maestro_defs.saga import saga_requests
from resources.run_tags import COMPENSATES_TAG
from tests.support.cli import run_maestro
from tests.support.journal import lines
from tests.support.paths import PROJECT_ROOT

STEP = "tests.support.journal:step"
UNDO = "tests.support.journal:undo"
JOB, SAGA = "saga_demo", "saga_demo__compensate"


def _undo(journal: Path, name: str, extra: str = "", retry: str = "") -> str:
    detail = "{{ step.output.id }} {{ failure.step }} {{ failure.kind }}"
    retry_line = f"\n      retry: {retry}" if retry else ""
    return (
        f"    compensation:\n      run: python{retry_line}\n"
        f"      with: {{callable: '{UNDO}', kwargs: {{journal: '{journal}', name: {name},"
        f' detail: "{detail}"{extra}}}}}\n'
    )


def _step(journal: Path, name: str, needs: str, kwargs: str = "", undo: str = "") -> str:
    depends = f"\n    depends_on: [{needs}]" if needs else ""
    args = f"journal: '{journal}', name: {name}{kwargs}"
    return (
        f"  - id: {name}\n    run: python{depends}\n"
        f"    with: {{callable: '{STEP}', kwargs: {{{args}}}}}\n" + undo
    )


def saga_workflow(
    journal: Path, marker: Path, undo: Mapping[str, tuple[str, str]] | None = None
) -> str:
    """A diamond plus a tail: a -> (b, c) -> d -> e -> f. e fails (after a retry) until
    `marker` exists; every step has a compensation; `undo`: step -> (extra kwargs, retry)."""
    undo = undo or {}

    def comp(name: str) -> str:
        extra, retry = undo.get(name, ("", ""))
        return _undo(journal, name, extra, retry)

    overlap = ", sleep: 0.5"  # b and c run at the same time
    return (
        f"name: {JOB}\non_failure: compensate\nsteps:\n"
        + _step(journal, "a", "", undo=comp("a"))
        + _step(journal, "b", "a", overlap, comp("b"))
        + _step(journal, "c", "a", overlap, comp("c"))
        + _step(journal, "d", "b, c", undo=comp("d"))
        + _step(journal, "e", "d", f", fail_unless: '{marker}'", comp("e"))
        + "    retry: {max_attempts: 2}\n"
        + _step(journal, "f", "e", undo=comp("f"))
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "saga_demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r.dagster_run for r in reversed(instance.get_run_records())]


def test_a_failed_run_compensates_its_completed_steps_in_reverse_order_once(
    observed_home: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    workflow = _write(tmp_path, saga_workflow(journal, tmp_path / "never"))
    result = run_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "compensated: saga run " in result.stdout
    written = lines(journal)
    runs = written[: written.index("run e") + 2]
    assert runs[:1] == ["run a"] and sorted(runs[1:3]) == ["run b", "run c"]
    assert runs[3:] == ["run d", "run e", "run e"]
    undone = written[len(runs) :]
    # d completed last, b and c together (compensated together), a first; e failed without
    # compensate_self and f never ran: neither is compensated.
    assert undone[0] == "undo d d-id e plugin_error"
    assert sorted(undone[1:3]) == ["undo b b-id e plugin_error", "undo c c-id e plugin_error"]
    assert undone[3:] == ["undo a a-id e plugin_error"]
    failed, saga = _runs(observed_home)
    assert saga.job_name == SAGA and saga.tags[COMPENSATES_TAG] == failed.run_id
    assert saga.status == dg.DagsterRunStatus.SUCCESS
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        for _ in range(3):  # the sensor, evaluated again and again: nothing more to launch
            requests, _cursor = saga_requests(instance, {JOB: SAGA}, 0.0)
            assert requests == []
    status = run_maestro("status", failed.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert f"compensation: SUCCESS (saga run {saga.run_id})" in status.stdout
