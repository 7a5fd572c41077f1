"""Tracing is configured by the standard OTEL_* variables only; off means no span at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from resources.observability import tracing

RUN_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    tracing.disable()


def _exporter() -> object:
    provider = tracing._state.provider
    assert provider is not None
    processor = provider._active_span_processor._span_processors[0]
    return processor._batch_processor._exporter  # type: ignore[attr-defined]


def test_without_an_endpoint_nothing_is_installed_and_no_span_is_made() -> None:
    assert tracing.configure(environ={"OTEL_SERVICE_NAME": "x"}) is False
    assert not tracing.enabled()
    with tracing.step_span(RUN_ID, "a", 0, None, {}) as span:
        assert span is None
    with tracing.child_span("store result") as child:
        assert child is None
    assert tracing.current_ids() is None


def test_sdk_disabled_wins_over_an_endpoint() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert tracing.configure(environ=environ) is False


@pytest.mark.parametrize(
    ("protocol", "kind"),
    [(None, OTLPSpanExporter), ("http/protobuf", OTLPSpanExporter), ("grpc", GrpcExporter)],
)
def test_the_protocol_variable_picks_the_exporter(protocol: str | None, kind: type) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    if protocol is not None:
        environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    assert tracing.configure(environ=environ) is True
    assert isinstance(_exporter(), kind)


def test_an_unknown_protocol_is_an_error_naming_the_variable() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    }
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        tracing.configure(environ=environ)


def test_service_name_and_sampler_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "maestro-prod")
    tracing.configure(exporter, batch=False)
    with tracing.step_span(RUN_ID, "a", 0, None, {"maestro.step.id": "a"}):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "maestro-prod"
    assert f"{span.context.trace_id:032x}" == RUN_ID.replace("-", "")

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    dropped = InMemorySpanExporter()
    tracing.configure(dropped, batch=False)
    with tracing.step_span(RUN_ID, "a", 0, None, {}) as off:
        assert off is not None and not off.is_recording()
    assert tracing.record_run(RUN_ID, None, "w", 1, 2, {}) is True
    assert dropped.get_finished_spans() == ()


def test_the_traceparent_tag_wins_over_the_derived_context() -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.step_span(RUN_ID, "a", 0, given, {}):
        pass
    assert tracing.record_run(RUN_ID, given, "w", 1, 2, {}) is True
    assert tracing.record_run(RUN_ID, given, "w", 1, 2, {}) is False  # once per run
    step, root = exporter.get_finished_spans()
    assert f"{root.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert f"{root.context.span_id:016x}" == "00f067aa0ba902b7"
    assert step.parent is not None and step.parent.span_id == root.context.span_id


def test_urls_lose_credentials_and_query() -> None:
    assert tracing.safe_url("https://u:p@api.example:8443/v1/x?key=s#f") == (
        "https://api.example:8443/v1/x"
    )
