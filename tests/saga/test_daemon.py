"""The saga through the real stack (`maestro deploy local`: webserver + daemon, PostgreSQL): a
run launched through GraphQL fails, the daemon evaluates the `maestro_saga` sensor (every
second) and launches `<job>__compensate` once; the compensations run in reverse order."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from resources.run_tags import COMPENSATES_TAG
from tests.support.stack import running_stack


def _chain(journal: Path, steps: int) -> str:
    lines = ["name: daemon_saga", "on_failure: compensate", "steps:"]
    for i in range(steps):
        lines += [
            f"  - id: s{i}",
            "    run: shell",
            *([f"    depends_on: [s{i - 1}]"] if i else []),
            "    with: {command: " + ("'exit 1'" if i == steps - 1 else "'true'") + "}",
            "    compensation:",
            "      run: shell",
            "      retry: {max_attempts: 2}",
            f"      with: {{command: 'echo undo s{i} {{{{ failure.kind }}}} >> {journal}',"
            " shell: true}",
        ]
    return "\n".join(lines) + "\n"


def test_the_daemon_launches_one_saga_for_a_failed_run(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`postgres_url` marks the test `services`; the stack gets a database of its own."""
    from maestro_cli.deployment import postgres_env
    from tests.support.postgres import fresh_database

    journal = tmp_path / "journal.txt"
    monkeypatch.setenv("MAESTRO_SAGA_INTERVAL_S", "1")
    with fresh_database() as url:
        for name, value in postgres_env(url).items():  # for this process's instance
            monkeypatch.setenv(name, value)
        with (
            running_stack(tmp_path / "stack", url, {"saga.yaml": _chain(journal, 4)}) as stack,
            stack.instance() as instance,
        ):
            client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)
            run_id = client.submit_job_execution("daemon_saga", "maestro")
            deadline = time.monotonic() + 300
            while True:
                sagas = instance.get_run_records(
                    filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id})
                )
                if sagas and sagas[0].dagster_run.is_finished:
                    break
                assert time.monotonic() < deadline, stack.log_tail()
                time.sleep(0.5)
            time.sleep(6)  # more sensor ticks: still one saga run
            sagas = instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id}))
            assert [s.dagster_run.status for s in sagas] == [dg.DagsterRunStatus.SUCCESS]
            assert sagas[0].dagster_run.job_name == "daemon_saga__compensate"
            failed = instance.get_run_by_id(run_id)
            assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    assert journal.read_text().splitlines() == [
        "undo s2 exit_code",
        "undo s1 exit_code",
        "undo s0 exit_code",
    ]


def _ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and run.is_finished


def _sagas(instance: dg.DagsterInstance, run_id: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id})))


def test_a_run_that_failed_while_the_daemon_was_away_is_compensated_once_after_restart(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first stack's sensor ticks once at start, then not for an hour: the run fails, the
    stack stops, and a new stack (same database, same artifact store) compensates it, once."""
    from maestro_cli.deployment import postgres_env
    from tests.support.postgres import fresh_database

    journal = tmp_path / "journal.txt"
    monkeypatch.setenv("MAESTRO_ARTIFACTS", str(tmp_path / "artifacts"))
    workflows = {"saga.yaml": _chain(journal, 3)}
    with fresh_database() as url:
        for name, value in postgres_env(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MAESTRO_SAGA_INTERVAL_S", "3600")
        with running_stack(tmp_path / "first", url, workflows) as stack, stack.instance() as db:
            time.sleep(8)  # the sensor's one tick of this hour
            client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)
            run_id = client.submit_job_execution("daemon_saga", "maestro")
            deadline = time.monotonic() + 300
            while not _ended(db, run_id):
                assert time.monotonic() < deadline, stack.log_tail()
                time.sleep(0.5)
            assert _sagas(db, run_id) == []
        monkeypatch.setenv("MAESTRO_SAGA_INTERVAL_S", "1")
        with running_stack(tmp_path / "second", url, workflows) as stack, stack.instance() as db:
            deadline = time.monotonic() + 300
            while not (_sagas(db, run_id) and _sagas(db, run_id)[0].dagster_run.is_finished):
                assert time.monotonic() < deadline, stack.log_tail()
                time.sleep(0.5)
            time.sleep(6)
            assert [s.dagster_run.status for s in _sagas(db, run_id)] == [
                dg.DagsterRunStatus.SUCCESS
            ]
    assert journal.read_text().splitlines() == ["undo s1 exit_code", "undo s0 exit_code"]
