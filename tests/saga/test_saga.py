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
    trace = tmp_path / "trace.txt"
    slow = {name: (f", sleep: 0.5, trace: '{trace}'", "") for name in ("a", "b", "c", "d")}
    workflow = _write(tmp_path, saga_workflow(journal, tmp_path / "never", slow))
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
    # b and c ran together, so their compensations run together: after d's, before a's.
    traced = lines(trace)
    assert traced[:2] == ["begin d", "end d"] and traced[-2:] == ["begin a", "end a"]
    assert sorted(traced[2:4]) == ["begin b", "begin c"]
    assert sorted(traced[4:6]) == ["end b", "end c"]
    failed, saga = _runs(observed_home)
    assert saga.job_name == SAGA and saga.tags[COMPENSATES_TAG] == failed.run_id
    assert saga.status == dg.DagsterRunStatus.SUCCESS
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        for _ in range(3):  # the sensor, evaluated again and again: nothing more to launch
            requests, _cursor = saga_requests(instance, {JOB: SAGA}, 0.0)
            assert requests == []
    status = run_maestro("status", failed.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert f"compensation: SUCCESS (saga run {saga.run_id})" in status.stdout


def test_a_compensation_that_fails_twice_succeeds_under_its_retry_policy(
    observed_home: Path, tmp_path: Path
) -> None:
    journal, counter = tmp_path / "journal.txt", tmp_path / "attempts.txt"
    flaky = (f", fail_times: 2, counter: '{counter}'", "{max_attempts: 3}")
    workflow = _write(tmp_path, saga_workflow(journal, tmp_path / "never", {"d": flaky}))
    result = run_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home)
    assert "compensated: saga run " in result.stdout, result.stdout + result.stderr
    assert lines(counter) == ["attempt"] * 3
    undone = [line.split()[1] for line in lines(journal) if line.startswith("undo")]
    assert undone[0] == "d" and sorted(undone[1:3]) == ["b", "c"] and undone[3:] == ["a"]
    _failed, saga = _runs(observed_home)
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        retries = instance.all_logs(saga.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retries] == ["d", "d"]


def test_a_compensation_that_always_fails_fails_the_saga_run_visibly(
    observed_home: Path, tmp_path: Path
) -> None:
    journal, counter = tmp_path / "journal.txt", tmp_path / "attempts.txt"
    fixed = tmp_path / "fixed"
    broken = (
        f", fail_times: -1, counter: '{counter}', fail_unless: '{fixed}'",
        "{max_attempts: 2}",
    )
    workflow = _write(tmp_path, saga_workflow(journal, tmp_path / "never", {"d": broken}))
    result = run_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home)
    assert result.returncode == 1
    assert "compensation failed: saga run " in result.stdout, result.stdout + result.stderr
    assert lines(counter) == ["attempt"] * 2
    # b, c and a are not undone before d is: the saga stops, and says why.
    assert not [line for line in lines(journal) if line.startswith("undo")]
    failed, saga = _runs(observed_home)
    assert saga.status == dg.DagsterRunStatus.FAILURE
    status = run_maestro("status", failed.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert f"run {failed.run_id}: FAILURE (compensation failed)" in status.stdout
    assert f"compensation: FAILURE (saga run {saga.run_id})" in status.stdout
    saga_status = run_maestro("status", saga.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert "compensation of step 'd' failed: RuntimeError: compensation of d failed" in (
        saga_status.stdout
    )
    assert "the compensation of 'd' (which completed later) failed" in saga_status.stdout

    # After a fix, the failed saga is resumed: d is undone, then b and c, then a; once each.
    fixed.write_text("fixed")
    resumed = run_maestro("resume", saga.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    undone = [line.split()[1] for line in lines(journal) if line.startswith("undo")]
    assert undone[0] == "d" and sorted(undone[1:3]) == ["b", "c"] and undone[3:] == ["a"]
    status = run_maestro("status", failed.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert f"run {failed.run_id}: FAILURE (compensated)" in status.stdout, status.stdout


def test_a_policy_denial_mid_run_triggers_the_compensation(
    observed_home: Path, tmp_path: Path
) -> None:
    from resources.policy.engine import PolicySet
    from tests.support.policy_data import policies_with_tenant

    tenant = dict(PolicySet.load().tenants["default"])
    tenant.pop("ssrf_allow", None)  # loopback addresses are refused at the step
    tenant["allowed_domains"] = ["example.com"]
    policies = policies_with_tenant(tmp_path, "guarded", tenant)
    journal = tmp_path / "journal.txt"
    text = saga_workflow(journal, tmp_path / "never").replace(
        f"name: {JOB}\n", f"name: {JOB}\ntenant: guarded\n"
    )
    denied = (
        "  - id: e\n    run: http.request\n    depends_on: [d]\n"
        "    with: {url: 'http://127.0.0.{{ 1 if steps.d.output.id else 2 }}:9/x'}\n"
    )
    start, end = text.index("  - id: e\n"), text.index("  - id: f\n")
    workflow = _write(tmp_path, text[:start] + denied + text[end:])
    result = run_maestro(
        "run",
        str(workflow),
        cwd=PROJECT_ROOT,
        home=observed_home,
        env={"MAESTRO_POLICY_DIR": str(policies)},
    )
    assert "compensated: saga run " in result.stdout, result.stdout + result.stderr
    assert "failed (policy)" in result.stdout, result.stdout
    undone = [line for line in lines(journal) if line.startswith("undo")]
    assert undone[0] == "undo d d-id e policy"
    assert sorted(undone[1:3]) == ["undo b b-id e policy", "undo c c-id e policy"]
    assert undone[3:] == ["undo a a-id e policy"]
