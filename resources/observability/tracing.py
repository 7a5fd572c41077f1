"""OpenTelemetry traces of runs: one trace per run, wherever its steps execute.

Configured only by the standard `OTEL_*` variables. With no OTLP endpoint (or
`OTEL_SDK_DISABLED=true`) nothing is installed and every helper here returns at its first test:
no span object is created. The SDK is imported only when tracing is on.

A run's trace id and its root span id are derived from the run id (or read from the run's
`maestro/traceparent` tag, which holds the same context), and each step attempt's span id from
run id, step key and attempt. Any process (a multiprocess child, a Kubernetes pod) can so parent
its spans without asking anyone, and the root span `workflow <name>` is recorded once, when the
run ends, by the process that sees it end (the threads executor, `maestro run`), or afterwards,
from the run's record, by the code location's `maestro_run_traces` sensor when no process of the
run did (multiprocess and k8s executors; docs/observability.md).
"""

from __future__ import annotations

import atexit
import contextvars
import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from resources.run_tags import COST_TAG, TRACEPARENT_TAG

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SCOPE = "maestro"
DEFAULT_SERVICE = "maestro"
_FLUSH_MILLIS = 5000

# GenAI semantic conventions (defined here: the semconv package marks them experimental).
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_PROMPT = "gen_ai.prompt"
"""Prompt text: only recorded with the step's `log_content: true`."""
# HTTP semantic conventions (client spans).
HTTP_METHOD = "http.request.method"
HTTP_STATUS = "http.response.status_code"
URL_FULL = "url.full"
SERVER_ADDRESS = "server.address"
ERROR_TYPE = "error.type"


class _State:
    provider: TracerProvider | None = None
    tracer: Any = None
    configured = False


_state = _State()
_lock = threading.Lock()
_next_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "maestro_next_span_ids", default=None
)
_ended_runs: set[str] = set()


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the `OTEL_*` variables ask for traces: an endpoint, and the SDK not disabled."""
    if _env_flag(environ.get("OTEL_SDK_DISABLED")):
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    """The OTLP exporter `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` names (default http/protobuf);
    it reads the endpoint, headers and timeout from the environment itself."""
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use 'http/protobuf' or 'grpc'"
    )


def configure(
    exporter: SpanExporter | None = None,
    *,
    batch: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Install this process's tracer provider: over `exporter` when given (tests, benchmarks),
    else over OTLP when the variables ask for it. Returns whether tracing is on."""
    with _lock:
        _shutdown_locked()
        _state.configured = True
        if exporter is None:
            if not tracing_wanted(environ):
                return False
            exporter = _otlp_exporter(environ)
        _install_locked(build_provider(exporter, batch=batch, environ=environ))
        return True


def build_provider(
    exporter: SpanExporter, *, batch: bool = True, environ: Mapping[str, str] = os.environ
) -> TracerProvider:
    """A tracer provider over `exporter` (batched), with Maestro's derived span ids."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    defaults = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE}
    resource = Resource.create({**defaults, "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource, id_generator=_derived_id_generator())
    provider.add_span_processor(
        BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    )
    return provider


def install(provider: TracerProvider | None) -> None:
    """Use `provider` (None: tracing off) without shutting the current one down: benchmarks
    switch between providers built once."""
    with _lock:
        _state.configured = True
        _ended_runs.clear()
        _install_locked(provider)


def _install_locked(provider: TracerProvider | None) -> None:
    _state.provider = provider
    _state.tracer = provider.get_tracer(SCOPE) if provider is not None else None


def disable() -> None:
    """Stop tracing in this process (flushing what was recorded)."""
    with _lock:
        _shutdown_locked()
        _state.configured = True


def _shutdown_locked() -> None:
    provider, _state.provider, _state.tracer = _state.provider, None, None
    _ended_runs.clear()
    if provider is not None:
        provider.shutdown()


def _tracer() -> Any:
    """This process's tracer, set up from the environment on first use; None when off."""
    if not _state.configured:
        configure()
    return _state.tracer


def enabled() -> bool:
    return _tracer() is not None


def flush() -> None:
    """Export what this process recorded (a step process that exits next)."""
    if _state.provider is not None:
        _state.provider.force_flush(_FLUSH_MILLIS)


def flush_if_child_process() -> None:
    """A multiprocessing child ends with `os._exit` (no atexit): flush after its step."""
    if _state.provider is not None and multiprocessing.parent_process() is not None:
        flush()


@atexit.register
def _at_exit() -> None:
    if _state.provider is not None:
        _state.provider.shutdown()


def _derived_id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class DerivedIds(RandomIdGenerator):
        """Random ids, except for spans whose ids are derived (`_with_ids`)."""

        def generate_span_id(self) -> int:
            wanted = _next_ids.get()
            return wanted[1] if wanted is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            wanted = _next_ids.get()
            return wanted[0] if wanted is not None else super().generate_trace_id()

    return DerivedIds()


@contextmanager
def _with_ids(trace_id: int, span_id: int) -> Iterator[None]:
    token = _next_ids.set((trace_id, span_id))
    try:
        yield
    finally:
        _next_ids.reset(token)


# ------------------------------------------------------------------ derived contexts


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") or 1


def run_trace_id(run_id: str) -> int:
    """The run id's 128 bits (Dagster run ids are UUIDs), so a log line's run id is its trace."""
    try:
        value = int(run_id.replace("-", ""), 16)
    except ValueError:
        value = 0
    if value <= 0 or value >= 1 << 128:
        value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")
    return value


def traceparent_for_run(run_id: str) -> str:
    """The W3C traceparent of a run's root span (what the `maestro/traceparent` tag holds)."""
    return f"00-{run_trace_id(run_id):032x}-{_hash64(run_id):016x}-01"


def parse_traceparent(value: str) -> tuple[int, int] | None:
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None
    return (trace_id, span_id) if trace_id and span_id else None


def _root_ids(run_id: str, traceparent: str | None) -> tuple[int, int]:
    parsed = parse_traceparent(traceparent) if traceparent else None
    return parsed or (run_trace_id(run_id), _hash64(run_id))


def _sampled(trace_id: int) -> bool:
    """The sampler's decision for a run's root: children follow it (parent-based)."""
    provider = _state.provider
    if provider is None:
        return False
    result = provider.sampler.should_sample(None, trace_id, "workflow")
    return bool(result.decision.is_sampled())


def _context(trace_id: int, span_id: int) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if _sampled(trace_id) else TraceFlags.DEFAULT)
    span_context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def step_span_id(run_id: str, step_key: str, attempt: int) -> int:
    return _hash64(f"{run_id}/{step_key}/{attempt}")


def step_parent_context(run_id: str, step_key: str, attempt: int, traceparent: str | None) -> Any:
    """The context of a step attempt's span, for spans opened outside it (input loading)."""
    trace_id, _ = _root_ids(run_id, traceparent)
    return _context(trace_id, step_span_id(run_id, step_key, attempt))


# ------------------------------------------------------------------ spans


def _clean(attributes: Mapping[str, Any], redact: Any = None) -> dict[str, Any]:
    """Attribute values OTel accepts; strings through the step's redactor (secrets never)."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, str):
            out[key] = redact(value) if redact is not None else value
        elif isinstance(value, (bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [redact(str(v)) if redact is not None else str(v) for v in value]
        else:
            out[key] = redact(str(value)) if redact is not None else str(value)
    return out


@contextmanager
def step_span(
    run_id: str,
    step_key: str,
    attempt: int,
    traceparent: str | None,
    attributes: Mapping[str, Any],
) -> Iterator[Span | None]:
    """`step <id>` for one attempt (span id derived), current while the step runs; a retry
    links to the attempt before. An exception is recorded and the status set to ERROR."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    trace_id, root_span = _root_ids(run_id, traceparent)
    parent = _context(trace_id, root_span)
    links = []
    if attempt > 0:
        from opentelemetry.trace import Link

        previous = SpanContext(
            trace_id, step_span_id(run_id, step_key, attempt - 1), is_remote=True
        )
        links.append(Link(previous, {"maestro.link": "previous_attempt"}))
    name = f"step {attributes.get('maestro.step.id', step_key)}"
    if attributes.get("maestro.step.part"):  # a for_each step's fan-out or collect op
        name += f" ({attributes['maestro.step.part']})"
    started = time.monotonic()
    with _with_ids(trace_id, step_span_id(run_id, step_key, attempt)):
        span = tracer.start_span(name, context=parent, attributes=_clean(attributes), links=links)
    try:
        with trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield span
    except GeneratorExit:  # the op's generator closed early: not a failure of the step
        raise
    except BaseException as exc:
        _fail(span, exc)
        raise
    finally:
        span.set_attribute("maestro.step.duration_ms", (time.monotonic() - started) * 1000.0)
        if span.is_recording() and not _has_status(span):
            span.set_attribute("maestro.step.status", "succeeded")
        span.end()
        flush_if_child_process()


def _has_status(span: Any) -> bool:
    attributes = getattr(span, "attributes", None) or {}
    return "maestro.step.status" in attributes


def _fail(span: Span, exc: BaseException, status: str = "failed") -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    span.set_attribute(ERROR_TYPE, type(exc).__name__)
    if not _has_status(span):
        span.set_attribute("maestro.step.status", status)


@contextmanager
def child_span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Any = None,
    redact: Any = None,
) -> Iterator[Span | None]:
    """A span under the current one (or `parent`, a context): plugin calls, artifacts IO,
    policy decisions. String attributes go through `redact`; failures are recorded."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    span = tracer.start_span(
        name, context=parent, kind=kind, attributes=_clean(attributes or {}, redact)
    )
    try:
        with trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield span
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.set_attribute(ERROR_TYPE, type(exc).__name__)
        raise
    finally:
        span.end()


def past_span(
    name: str,
    started_ns: int,
    attributes: Mapping[str, Any],
    *,
    kind: SpanKind = SpanKind.CLIENT,
    error: BaseException | None = None,
    error_type: str | None = None,
    redact: Any = None,
) -> None:
    """A span under the current one for a call that already happened (from `started_ns` to
    now): plugin calls record theirs once they know the answer's model and token counts."""
    tracer = _tracer()
    if tracer is None:
        return
    span = tracer.start_span(
        name, kind=kind, attributes=_clean(attributes, redact), start_time=started_ns
    )
    if error is not None and error_type is None:
        error_type = type(error).__name__
    if error_type is not None:
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()


def set_attributes(span: Span | None, attributes: Mapping[str, Any], redact: Any = None) -> None:
    if span is not None:
        span.set_attributes(_clean(attributes, redact))


def annotate_current(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (the step's, seen from its IO manager calls)."""
    if _state.tracer is not None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(_clean(attributes))


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, for log lines; None outside one."""
    if _state.tracer is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def log_suffix() -> str:
    ids = current_ids()
    return "" if ids is None else f" [trace_id={ids[0]} span_id={ids[1]}]"


def record_run(
    run_id: str,
    traceparent: str | None,
    name: str,
    started_ns: int,
    ended_ns: int,
    attributes: Mapping[str, Any],
    failed: bool = False,
) -> bool:
    """The root span `workflow <name>` of a run that ended, once per run in this process.
    Its ids are the run's derived ones, so the steps' spans (exported earlier) hang under it."""
    tracer = _tracer()
    if tracer is None:
        return False
    with _lock:
        if run_id in _ended_runs:
            return False
        _ended_runs.add(run_id)
    trace_id, span_id = _root_ids(run_id, traceparent)
    with _with_ids(trace_id, span_id):
        span = tracer.start_span(
            f"workflow {name}",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes=_clean({"maestro.run_id": run_id, **attributes}),
            start_time=started_ns,
        )
    if failed:
        span.set_status(Status(StatusCode.ERROR, str(attributes.get("maestro.run.status", ""))))
    span.end(end_time=ended_ns)
    return True


def run_attributes(
    run_id: str,
    tags: Mapping[str, str],
    job_metadata: Mapping[str, Any],
    status: str,
    cost_usd: float,
) -> dict[str, Any]:
    """The root span's attributes from what any process can read: run tags, job metadata."""

    def meta(key: str) -> Any:
        value = job_metadata.get(key)
        return getattr(value, "value", value)

    return {
        "maestro.run_id": run_id,
        "maestro.workflow.name": tags.get("maestro/workflow"),
        "maestro.workflow.version": meta("maestro/version"),
        "maestro.tenant": tags.get("maestro/tenant", "default"),
        "maestro.environment": meta("maestro/environment"),
        "maestro.run.status": status,
        "maestro.cost_usd": cost_usd,
    }


class RunOutcome:
    """What a run's executor saw: whether a step failed for good."""

    def __init__(self) -> None:
        self.failed_steps = 0

    def see(self, event: Any) -> None:
        if getattr(event, "is_step_failure", False):
            self.failed_steps += 1


@contextmanager
def run_span_on_exit(instance: Any, dagster_run: Any, job_metadata: Mapping[str, Any]) -> Any:
    """Around an executor's whole run: tag the run with its traceparent, and record the root
    span when the executor is done (status from what it saw, cost from the run's tag)."""
    outcome = RunOutcome()
    if not enabled():
        yield outcome
        return
    run_id = dagster_run.run_id
    traceparent = dagster_run.tags.get(TRACEPARENT_TAG)
    if traceparent is None:
        traceparent = traceparent_for_run(run_id)
        with suppress(Exception):  # the derived context is the same: the tag only shows it
            instance.add_run_tags(run_id, {TRACEPARENT_TAG: traceparent})
    started = time.time_ns()
    status = "SUCCESS"
    try:
        yield outcome
        if outcome.failed_steps:
            status = "FAILURE"
    except BaseException as exc:
        interrupted = type(exc).__name__ in {
            "DagsterExecutionInterruptedError",
            "KeyboardInterrupt",
        }
        status = "CANCELED" if interrupted else "FAILURE"
        raise
    finally:
        end_run(instance, run_id, traceparent, status, job_metadata, started)


def traced_run(
    instance: Any, dagster_run: Any, job_metadata: Mapping[str, Any], events: Iterable[Any]
) -> Iterator[Any]:
    """An executor's events, passed through inside `run_span_on_exit`."""
    with run_span_on_exit(instance, dagster_run, job_metadata) as outcome:
        for event in events:
            outcome.see(event)
            yield event


def end_run(
    instance: Any,
    run_id: str,
    traceparent: str | None,
    status: str,
    job_metadata: Mapping[str, Any],
    started_ns: int | None = None,
) -> bool:
    """Record the run's root span from the instance's view of it (tags, cost, start time)."""
    if not enabled() or run_id in _ended_runs:
        return False
    tags: Mapping[str, str] = {}
    record = None
    try:
        record = instance.get_run_record_by_id(run_id)
        tags = record.dagster_run.tags if record is not None else {}
    except Exception:
        pass
    if started_ns is None:
        start = getattr(record, "start_time", None) or time.time()
        started_ns = int(start * 1e9)
    if traceparent:
        tags = {**tags, TRACEPARENT_TAG: traceparent}
    return record_ended_run(run_id, tags, status, job_metadata, started_ns, time.time_ns())


def record_ended_run(
    run_id: str,
    tags: Mapping[str, str],
    status: str,
    job_metadata: Mapping[str, Any],
    started_ns: int,
    ended_ns: int,
) -> bool:
    """The root span of a run from what its record holds: tags (workflow, tenant, cost,
    traceparent), final status and times. Also for a run whose own process recorded none
    (the multiprocess and k8s executors), afterwards: see maestro_defs/traces.py."""
    cost = 0.0
    with suppress(ValueError):
        cost = float(tags.get(COST_TAG, 0.0))
    attributes = run_attributes(run_id, tags, job_metadata, status, cost)
    name = str(attributes.get("maestro.workflow.name") or "run")
    return record_run(
        run_id,
        tags.get(TRACEPARENT_TAG),
        name,
        started_ns,
        ended_ns,
        attributes,
        failed=status != "SUCCESS",
    )


def gen_ai_span_name(operation: str, model: str) -> str:
    return f"{operation} {model}"


def safe_url(url: str) -> str:
    """`url.full` without credentials or query string (they may carry secrets)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def hashes(values: Sequence[str]) -> list[str]:
    return [v for v in values if v]
