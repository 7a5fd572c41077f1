"""The threads executor: every ready step of a run, at once, in the run's own process.

Dagster's own pieces decide and do the work: `ActiveExecution` says which steps may start
(dependencies, skips, dynamic mapping, retries and their delays, run-scoped tag limits,
instance pool claims, the known state of a re-execution), and `dagster_event_sequence_for_step`
runs one step, so the events in the event log are the ones the in-process executor writes.
This module adds the loop that hands ready steps to a bounded pool of worker threads, per-step
compute logs (logs.py), termination, and process isolation for steps that ask for it.

Only the run's main thread touches ActiveExecution and the pool claims (neither is
thread-safe); worker threads run steps and put their events on a queue the main thread reads.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import itertools
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from resources.dagster_private import (
    ActiveExecution,
    ChildProcessCrashException,
    EngineEventData,
    ExecuteRunWithPlanIterable,
    ExecutionPlan,
    ExecutionStep,
    InstanceConcurrencyContext,
    KnownExecutionState,
    PlanExecutionContext,
    PlanExecutionContextManager,
    PlanOrchestrationContext,
    RetryMode,
    StepDependencyConfig,
    create_compute_log_file_key,
    dagster_event_sequence_for_step,
    execute_step_out_of_process,
    interrupted_step_failure,
    next_pool_claim_check,
    next_retry_due,
    retry_pool_claims_now,
    serializable_error_info_from_exc_info,
    step_context_on_loop,
    trigger_hooks,
)
from resources.executor.logs import run_capture_event, std_streams_routed_by_step, step_log_files
from resources.executor.running import RunningStep, running
from resources.executor.workers import WorkerPool, raise_in_thread
from resources.liveness import run_heartbeat
from resources.observability import tracing

ISOLATION_TAG = "maestro/isolation"
"""Op tag: `process` runs that op in a process of its own (CPU-bound work, native crashes)."""
_MAX_IDLE_WAIT = 1.0
_MIN_WAIT = 0.01
_BUSY_WAIT = 0.5
_STOPPING_WAIT = 0.1


class _Reports:
    """What the workers report, in order. The main thread is woken only by what can change
    which steps may start (a step's end, its outcome, a pool slot); the other events wait for
    it, so a step's few events cost it one wake-up, not one each (and fewer GIL hand-offs)."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple[int, Any]] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._wakes = 0

    def put(self, token: int, item: Any) -> None:
        with self._ready:
            self._items.append((token, item))
            if not isinstance(item, dg.DagsterEvent) or _is_terminal(item):
                self._wakes += 1
                self._ready.notify()

    def take(self, timeout: float) -> list[tuple[int, Any]]:
        """Everything reported so far, after a wake-up or `timeout` seconds."""
        with self._ready:
            self._ready.wait_for(lambda: self._wakes > 0, timeout)
            items = list(self._items)
            self._items.clear()
            self._wakes = 0
            return items


@dataclass
class _Attempt:
    """One attempt of one step, handed to a worker thread."""

    token: int
    step: ExecutionStep
    running: RunningStep
    isolated: bool
    thread_id: int | None = None
    finished: bool = False
    cancelled_at: float | None = None
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_DONE = object()
_DEFAULT_DEPENDENCIES = StepDependencyConfig.default()


class ThreadsExecutor(dg.Executor):
    """Runs the ready steps of a run concurrently on up to `max_concurrent` worker threads."""

    def __init__(
        self,
        retries: RetryMode,
        max_concurrent: int,
        tag_concurrency_limits: Sequence[Mapping[str, Any]] = (),
        cancel_grace_seconds: float = 10.0,
        per_step_logs: bool = True,
        step_dependency_config: StepDependencyConfig = _DEFAULT_DEPENDENCIES,
    ) -> None:
        self._retries = retries
        self._max_concurrent = max_concurrent
        self._tag_concurrency_limits = [dict(limit) for limit in tag_concurrency_limits]
        self._cancel_grace = cancel_grace_seconds
        self._per_step_logs = per_step_logs
        self._step_dependency_config = step_dependency_config
        self._orchestration: PlanOrchestrationContext | None = None

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._step_dependency_config

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        pid = os.getpid()
        keys = execution_plan.step_keys_to_execute
        yield dg.DagsterEvent.engine_event(
            plan_context,
            f"Executing steps with the threads executor ({self._max_concurrent} worker "
            f"threads, pid: {pid})",
            event_specific_data=EngineEventData.in_process(pid, keys),
        )
        self._orchestration = plan_context  # isolated steps need its reconstructable job
        started = time.monotonic()
        with run_heartbeat(plan_context.instance, plan_context.dagster_run):  # liveness.py
            yield from tracing.traced_run(  # the run's root span, recorded when its steps are done
                plan_context.instance,
                plan_context.dagster_run,
                _job_metadata(plan_context),
                self._execute_plan(plan_context),
            )
        yield dg.DagsterEvent.engine_event(
            plan_context,
            f"The threads executor finished its steps in {time.monotonic() - started:.2f}s "
            f"(pid: {pid})",
            event_specific_data=EngineEventData.in_process(pid, keys),
        )

    def _execute_plan(self, plan_context: PlanOrchestrationContext) -> Iterator[dg.DagsterEvent]:
        yield from ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=self._run_plan,
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job,
                retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run,
                instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error,
                output_capture=plan_context.output_capture,
                step_dependency_config=self._step_dependency_config,
            ),
        )

    # ---------------------------------------------------------------- the run's main thread

    def _run_plan(
        self, job_context: PlanExecutionContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        events = _Reports()
        attempts: dict[int, _Attempt] = {}
        latest: dict[str, int] = {}  # step key -> token of its newest attempt
        tokens = itertools.count()
        errors: list[BaseException] = []
        stopping = False
        workers = WorkerPool(self._max_concurrent)
        manager = job_context.instance.compute_log_manager
        with ExitStack() as stack:
            claims = stack.enter_context(
                InstanceConcurrencyContext(job_context.instance, job_context.dagster_run)
            )
            active = stack.enter_context(
                ActiveExecution(
                    execution_plan,
                    retry_mode=job_context.retry_mode,
                    max_concurrent=self._max_concurrent,
                    tag_concurrency_limits=self._tag_concurrency_limits,
                    instance_concurrency_context=claims,
                    step_dependency_config=self._step_dependency_config,
                )
            )
            stack.callback(workers.shutdown)
            # Output no step thread wrote (file descriptors, stray threads): one run-level file.
            run_log_key = manager.build_log_key_for_run(
                job_context.run_id, create_compute_log_file_key()
            )
            run_log = stack.enter_context(manager.capture_logs(run_log_key))
            yield run_capture_event(job_context, run_log_key, run_log)
            stack.enter_context(std_streams_routed_by_step())

            while (not stopping and not errors and not active.is_complete) or attempts:
                if not stopping and active.check_for_interrupts():
                    stopping = True
                    active.mark_interrupted()
                    yield dg.DagsterEvent.engine_event(
                        job_context,
                        "The threads executor received a termination request: no new step "
                        "starts, running steps are cancelled",
                        EngineEventData.interrupted([a.step.key for a in attempts.values()]),
                    )
                if stopping:
                    yield from self._escalate(job_context, active, attempts)
                elif not errors:
                    launched = self._launch(
                        job_context, active, attempts, latest, tokens, workers, events
                    )
                    yield from active.concurrency_event_iterator(job_context)
                    if not launched and not attempts:
                        yield from active.plan_events_iterator(job_context)  # skips, abandons
                        launched = self._launch(
                            job_context, active, attempts, latest, tokens, workers, events
                        )
                        if not launched and self._stuck(active, claims):
                            break  # ActiveExecution's exit names the steps left over

                wait = self._wait(active, claims, attempts, stopping)
                for token, item in events.take(wait):
                    attempt = attempts.get(token)
                    if attempt is None:
                        continue  # a step given up on after termination: its thread lingers
                    if isinstance(item, dg.DagsterEvent):
                        yield item
                        if item.step_key is not None and not item.is_step_skipped:
                            active.handle_event(item)
                            self._wake_pool_waiters(active, claims, item)
                        continue
                    del attempts[token]
                    if isinstance(item, BaseException) and not isinstance(
                        item, (dg.DagsterExecutionInterruptedError, KeyboardInterrupt)
                    ):
                        errors.append(item)  # raise_on_error, or a framework error
                    if latest.get(attempt.step.key) == token:
                        active.verify_complete(job_context, attempt.step.key)
                    yield from active.plan_events_iterator(job_context)

            if errors:
                raise errors[0]
            if stopping:
                raise dg.DagsterExecutionInterruptedError(
                    "The run was terminated; every running step has stopped"
                )

    def _launch(
        self,
        job_context: PlanExecutionContext,
        active: ActiveExecution,
        attempts: dict[int, _Attempt],
        latest: dict[str, int],
        tokens: Iterator[int],
        workers: WorkerPool,
        events: _Reports,
    ) -> int:
        """Hand every step ActiveExecution says may start to a worker; how many started."""
        free = self._max_concurrent - len(attempts)
        if free <= 0:
            return 0
        steps = active.get_steps_to_execute(limit=free)
        for step in steps:
            attempt = _Attempt(
                token=next(tokens),
                step=step,
                running=RunningStep(step.key),
                isolated=step.tags.get(ISOLATION_TAG) == "process",
            )
            attempts[attempt.token] = attempt
            latest[step.key] = attempt.token
            known_state = active.get_known_state()
            work = functools.partial(self._run_attempt, job_context, attempt, known_state, events)
            # The run's context (its trace's current span, ...) goes with the step to its thread.
            workers.submit(functools.partial(contextvars.copy_context().run, work))
        return len(steps)

    @staticmethod
    def _wait(
        active: ActiveExecution,
        claims: InstanceConcurrencyContext,
        attempts: Mapping[int, _Attempt],
        stopping: bool,
    ) -> float:
        """How long the loop may sleep: until a worker reports, a retry delay ends or a blocked
        pool claim is due again, never spinning (Dagster's own claim interval is never > 0)."""
        if stopping:
            return _STOPPING_WAIT
        due = [t for t in (next_pool_claim_check(claims), next_retry_due(active)) if t is not None]
        ceiling = _BUSY_WAIT if attempts else _MAX_IDLE_WAIT
        return max(_MIN_WAIT, min([ceiling, *due]))

    @staticmethod
    def _stuck(active: ActiveExecution, claims: InstanceConcurrencyContext) -> bool:
        """Nothing runs, waits out a retry or a pool claim, or can start, yet steps are left."""
        return (
            not active.is_complete
            and not active.has_in_flight_steps
            and next_retry_due(active) is None
            and not claims.has_pending_claims()
        )

    @staticmethod
    def _wake_pool_waiters(
        active: ActiveExecution, claims: InstanceConcurrencyContext, event: dg.DagsterEvent
    ) -> None:
        """A step of this run gave its pool slot back: this run's blocked steps in the same
        pool ask again now, not after Dagster's back-off of up to 15 s."""
        if not (event.is_step_success or event.is_step_failure or event.is_step_up_for_retry):
            return
        pool = _pool_of(active.get_step_by_key(event.step_key or ""))
        if pool is None:
            return
        waiting = [
            key
            for key in claims.pending_claim_steps()
            if _pool_of(active.get_step_by_key(key)) == pool
        ]
        retry_pool_claims_now(claims, waiting)

    def _escalate(
        self,
        job_context: PlanExecutionContext,
        active: ActiveExecution,
        attempts: dict[int, _Attempt],
    ) -> Iterator[dg.DagsterEvent]:
        """Termination: every running step is told to stop (shell steps kill their process
        group). A step still running after the grace period gets an interrupt raised inside it;
        after twice the grace period it is given up on: failed, its pool slot freed, its thread
        left to die with the process."""
        now = time.monotonic()
        for token, attempt in list(attempts.items()):
            if attempt.cancelled_at is None:
                attempt.running.cancel.set()
                attempt.cancelled_at = now
            waited = now - attempt.cancelled_at
            if waited >= self._cancel_grace and not attempt.interrupted and not attempt.isolated:
                with attempt.lock:
                    if not attempt.finished and attempt.thread_id is not None:
                        raise_in_thread(attempt.thread_id, dg.DagsterExecutionInterruptedError)
                        attempt.interrupted = True
            if waited >= 2 * self._cancel_grace:
                del attempts[token]
                failure = interrupted_step_failure(
                    job_context.for_step(attempt.step),
                    f"step {attempt.step.key} did not stop within {2 * self._cancel_grace:g}s "
                    "of the termination request; its thread was left behind",
                )
                yield failure
                active.handle_event(failure)

    # ---------------------------------------------------------------- worker threads

    def _run_attempt(
        self,
        job_context: PlanExecutionContext,
        attempt: _Attempt,
        known_state: KnownExecutionState,
        events: _Reports,
        loop: Any,
    ) -> None:
        def report(item: Any) -> None:
            events.put(attempt.token, item)

        attempt.thread_id = threading.get_ident()
        try:
            with running(attempt.running):
                step_context = step_context_on_loop(job_context, attempt.step, known_state, loop)
                if attempt.isolated:
                    self._run_in_process(job_context, attempt, step_context, known_state, report)
                else:
                    self._run_in_thread(job_context, attempt, step_context, report)
            self._finish(attempt)
            report(_DONE)
        except BaseException as exc:  # forwarded to the main thread, which decides
            self._finish(attempt)
            report(exc)

    @staticmethod
    def _finish(attempt: _Attempt) -> None:
        with attempt.lock:
            attempt.finished = True
            if attempt.interrupted and attempt.thread_id is not None:
                raise_in_thread(attempt.thread_id, None)  # not delivered yet: withdrawn

    def _run_in_thread(
        self,
        job_context: PlanExecutionContext,
        attempt: _Attempt,
        step_context: dg.StepExecutionContext,
        report: Any,
    ) -> None:
        logs = (
            step_log_files(job_context, attempt.running, report)
            if self._per_step_logs
            else contextlib.nullcontext()
        )
        with logs:
            step_events: list[dg.DagsterEvent] = []
            for event in dagster_event_sequence_for_step(step_context):
                step_events.append(event)
                report(event)
            for event in trigger_hooks(step_context, step_events):  # as in_process: after it
                report(event)

    def _run_in_process(
        self,
        job_context: PlanExecutionContext,
        attempt: _Attempt,
        step_context: dg.StepExecutionContext,
        known_state: KnownExecutionState,
        report: Any,
    ) -> None:
        """The step in a spawned process of its own, as the multiprocess executor runs each
        step: the child re-creates the plan for this one step, writes its own compute logs and
        sends its events back. Termination sets the child's termination event."""
        assert self._orchestration is not None
        context = multiprocessing.get_context("spawn")
        key = attempt.step.key
        term_events: dict[str, Any] = {key: context.Event()}
        errors: dict[int, Any] = {}
        terminal = False
        try:
            for event in execute_step_out_of_process(
                context,
                self._orchestration.reconstructable_job,
                step_context,
                attempt.step,
                errors,
                {},
                term_events,
                self._retries,
                known_state,
                job_context.execution_plan.repository_load_data,
            ):
                if attempt.running.cancel.is_set():
                    term_events[key].set()
                if event is None:
                    continue
                report(event)
                terminal = terminal or _is_terminal(event)
                if event.is_resource_init_failure and event.engine_event_data.error:
                    error = event.engine_event_data.error
                    report(
                        self.log_failure_or_retry_event_after_error(
                            step_context, error, known_state
                        )
                    )
                    terminal = True
        except ChildProcessCrashException as crash:
            error = serializable_error_info_from_exc_info(sys.exc_info())
            report(
                dg.DagsterEvent.engine_event(
                    step_context,
                    f"The process of step {key} exited with code {crash.exit_code} "
                    "before the step finished",
                    EngineEventData.engine_error(error),
                )
            )
            if not terminal:
                report(
                    self.log_failure_or_retry_event_after_error(step_context, error, known_state)
                )
            return
        if not terminal and errors:  # the child failed outside the step (e.g. loading the job)
            error = next(iter(errors.values()))
            report(self.log_failure_or_retry_event_after_error(step_context, error, known_state))


def _job_metadata(plan_context: PlanOrchestrationContext) -> Mapping[str, Any]:
    """The job's metadata (version, environment) for the run's span; empty if unreadable."""
    if not tracing.enabled():
        return {}
    try:
        return plan_context.job.get_definition().metadata
    except Exception:
        return {}


def _is_terminal(event: dg.DagsterEvent) -> bool:
    return event.is_step_success or event.is_step_failure or event.is_step_up_for_retry


def _pool_of(step: ExecutionStep) -> str | None:
    return step.pool or step.tags.get("dagster/concurrency_key")
