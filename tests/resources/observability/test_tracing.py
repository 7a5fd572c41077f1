"""Traces of real runs (`maestro run`'s path, the threads executor) into an in-memory exporter:
the tree, its names and attributes, retries, errors, concurrency, and no secret anywhere."""

from __future__ import annotations

import http.server
import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from maestro_cli import runner
from resources.litellm_resource import LiteLLMResource
from resources.observability import tracing
from resources.plugins import default_registry
from resources.run_tags import TRACEPARENT_TAG
from tests.support.cli import run_maestro
from tests.support.compiling import compile_file
from tests.support.http_server import serve_http
from tests.support.llm_servers import OpenAIServer, deployment
from tests.support.observed import sqlite_home
from tests.support.otlp_receiver import otlp_receiver
from yaml_compiler import load_plan

CANARY = "canary-8f3a1c-do-not-leak"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.disable()


def run_file(tmp_path: Path, text: str) -> tuple[runner.RunOutcome, dg.DagsterInstance]:
    """Run a workflow as `maestro run` does (its job's executor, in this process)."""
    path = tmp_path / "workflow.yaml"
    path.write_text(textwrap.dedent(text))
    home = sqlite_home(tmp_path / "home")
    plan = load_plan(path, default_registry())
    job = runner.reconstructable_workflow_job(plan, home, None)
    instance = dg.DagsterInstance.from_config(str(home))
    return runner.execute(plan, job, instance, io.StringIO()), instance


def by_name(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def every_text(spans: list[ReadableSpan]) -> str:
    """Every attribute, event and status text of every span, as one string."""
    parts: list[Any] = []
    for span in spans:
        parts += [span.name, dict(span.attributes or {}), span.status.description]
        parts += [(e.name, dict(e.attributes or {})) for e in span.events]
        parts += [dict(span.resource.attributes)]
    return json.dumps(parts, default=str)


THREE_STEPS = """\
    name: traced
    version: 2.1.0
    tenant: default
    environment: dev
    secrets: [TRACE_CANARY]
    stages:
      - name: main
        steps:
          - id: first
            run: echo
            with: {greeting: hello}
          - id: flaky
            run: shell
            retry: {max_attempts: 2, backoff: 100ms}
            with:
              command:
                - sh
                - -c
                - >-
                  test -f MARKER ||
                  { touch MARKER; echo "token {{ secrets.TRACE_CANARY }}" >&2; exit 3; };
                  echo ok
          - id: last
            run: echo
            with: {previous: "{{ steps.flaky.output }}"}
"""


def test_a_run_is_one_trace_with_a_root_step_attempts_and_io_spans(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_CANARY", CANARY)
    outcome, instance = run_file(tmp_path, THREE_STEPS.replace("MARKER", str(tmp_path / "m")))
    assert outcome.success, outcome
    finished = list(spans.get_finished_spans())
    named = by_name(finished)

    (root,) = named["workflow traced"]
    assert root.parent is None
    run_id = outcome.run_id
    assert f"{root.context.trace_id:032x}" == run_id.replace("-", "")  # run id = trace id
    assert root.attributes is not None
    assert root.attributes["maestro.run_id"] == run_id
    assert root.attributes["maestro.workflow.name"] == "traced"
    assert root.attributes["maestro.workflow.version"] == "2.1.0"
    assert root.attributes["maestro.tenant"] == "default"
    assert root.attributes["maestro.environment"] == "dev"
    assert root.attributes["maestro.run.status"] == "SUCCESS"
    assert "maestro.cost_usd" in root.attributes
    run = instance.get_run_by_id(run_id)
    assert run is not None
    assert run.tags[TRACEPARENT_TAG] == tracing.traceparent_for_run(run_id)
    assert run.tags[TRACEPARENT_TAG].split("-")[2] == f"{root.context.span_id:016x}"

    assert {s.context.trace_id for s in finished} == {root.context.trace_id}  # one trace
    steps = {n: s for n, s in named.items() if n.startswith("step ")}
    assert sorted(steps) == ["step first", "step flaky", "step last"]
    for group in steps.values():
        for span in group:
            assert span.parent is not None and span.parent.span_id == root.context.span_id
    failed, retried = sorted(steps["step flaky"], key=lambda s: s.start_time or 0)
    assert failed.attributes is not None and retried.attributes is not None
    assert failed.attributes["maestro.step.attempt"] == 1
    assert failed.attributes["maestro.step.status"] == "failed"
    assert failed.attributes["maestro.step.plugin"] == "shell"
    assert failed.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in failed.events)
    assert retried.attributes["maestro.step.attempt"] == 2
    assert retried.attributes["maestro.step.status"] == "succeeded"
    assert retried.status.status_code is not StatusCode.ERROR
    assert float(retried.attributes["maestro.step.duration_ms"]) > 0  # type: ignore[arg-type]
    assert [link.context.span_id for link in retried.links] == [failed.context.span_id]

    (first,) = steps["step first"]
    stores = [
        s for s in named["store result"] if s.parent and s.parent.span_id == first.context.span_id
    ]
    assert len(stores) == 1 and stores[0].attributes is not None
    digest = stores[0].attributes["maestro.artifact.sha256"]
    assert len(str(digest)) == 64 and int(stores[0].attributes["maestro.artifact.size"]) > 0  # type: ignore[arg-type]
    assert first.attributes is not None and first.attributes["maestro.step.result.sha256"] == digest
    (last,) = steps["step last"]
    loads = [s for s in named.get("load from_flaky", []) if s.parent]
    assert loads and loads[0].parent is not None
    assert loads[0].parent.span_id == last.context.span_id
    assert (
        loads[0].attributes is not None
        and len(str(loads[0].attributes["maestro.artifact.sha256"])) == 64
    )

    # the step's own log lines carry its trace and span ids
    messages = [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None]
    span_hex = f"{failed.context.span_id:016x}"
    assert any(f"trace_id={run_id.replace('-', '')} span_id=" in m for m in messages), messages

    assert CANARY not in every_text(finished)
    del span_hex


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_llm_http_and_policy_spans_follow_the_conventions_and_hold_no_secret_or_prompt(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_CANARY", CANARY)
    res = LiteLLMResource(
        model_list=[deployment("gpt", server := OpenAIServer("a").start())],
        num_retries=0,
        cache_dir=str(tmp_path / "llm-cache"),
    )
    try:
        with serve_http(_Ok) as base:
            text = f"""\
                name: traced-calls
                version: 1.0.0
                secrets: [TRACE_CANARY]
                stages:
                  - name: main
                    steps:
                      - id: ask
                        run: litellm.generate
                        with:
                          model: gpt
                          prompt: "private prompt words {{{{ secrets.TRACE_CANARY }}}}"
                      - id: fetch
                        run: http.request
                        with:
                          url: "{base}/data?token={{{{ secrets.TRACE_CANARY }}}}"
            """
            path = tmp_path / "calls.yaml"
            path.write_text(textwrap.dedent(text))
            with dg.instance_for_test() as instance:
                result = compile_file(path).job.execute_in_process(
                    instance=instance, resources={"litellm": res}, raise_on_error=False
                )
    finally:
        server.stop()
    assert result.success
    finished = list(spans.get_finished_spans())
    named = by_name(finished)
    (ask,) = named["step ask"]
    (chat,) = named["chat gpt"]
    assert chat.parent is not None and chat.parent.span_id == ask.context.span_id
    assert chat.kind is SpanKind.CLIENT
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt"
    assert attributes["gen_ai.response.model"]
    assert int(attributes["gen_ai.usage.input_tokens"]) > 0  # type: ignore[arg-type]
    assert int(attributes["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
    assert "gen_ai.prompt" not in attributes  # no log_content: true

    (fetch,) = named["step fetch"]
    (get,) = named["GET"]
    assert get.parent is not None and get.parent.span_id == fetch.context.span_id
    http_attributes = dict(get.attributes or {})
    assert http_attributes["http.request.method"] == "GET"
    assert http_attributes["http.response.status_code"] == 200
    assert http_attributes["url.full"] == f"{base}/data"  # no query: it may carry secrets

    policies = [s for s in named["policy maestro.step"] if s.parent]
    assert {s.parent.span_id for s in policies if s.parent} == {
        ask.context.span_id,
        fetch.context.span_id,
    }
    assert {dict(s.attributes or {})["maestro.policy.decision"] for s in policies} == {"allow"}
    assert named["policy maestro.workflow"]

    everything = every_text(finished)
    assert CANARY not in everything
    assert "private prompt words" not in everything


def test_concurrent_steps_in_threads_each_parent_their_own_spans(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    steps = "\n".join(
        f"""\
          - id: p{i}
            run: shell
            with: {{command: "sleep 0.4"}}"""
        for i in range(4)
    )
    text = f"""\
name: traced-parallel
version: 1.0.0
stages:
  - name: fan
    parallel:
{textwrap.indent(textwrap.dedent(steps), "      ")}
"""
    outcome, _ = run_file(tmp_path, text)
    assert outcome.success
    finished = list(spans.get_finished_spans())
    named = by_name(finished)
    step_spans = {
        s.context.span_id: s for n, group in named.items() if n.startswith("step ") for s in group
    }
    assert len(step_spans) == 4
    ordered = sorted(step_spans.values(), key=lambda s: s.start_time or 0)
    assert (ordered[-1].start_time or 0) < (ordered[0].end_time or 0)  # they ran at once
    for kind in ("policy maestro.step", "store result"):
        parents = [s.parent.span_id for s in named[kind] if s.parent]
        assert sorted(parents) == sorted(step_spans), kind  # one each, under its own step


FOR_EACH = """\
    name: traced-items
    steps:
      - id: fan
        for_each: [north, south]
        run: echo
        with: {region: "{{ item }}"}
"""


def test_a_for_each_step_has_spans_for_its_fan_out_each_item_and_its_collect(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    outcome, _ = run_file(tmp_path, FOR_EACH)
    assert outcome.success, outcome
    finished = list(spans.get_finished_spans())
    named = by_name(finished)
    (root,) = named["workflow traced-items"]
    step_names = sorted(n for n in named if n.startswith("step "))
    assert step_names == ["step fan (collect)", "step fan (items)", "step fan[0]", "step fan[1]"]
    for name in step_names:
        (span,) = named[name]
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.attributes is not None and span.attributes["maestro.step.status"] == "succeeded"
    (fan_out,) = named["step fan (items)"]
    assert fan_out.attributes is not None and fan_out.attributes["maestro.step.part"] == "items"
    (collect,) = named["step fan (collect)"]
    (last_item,) = named["step fan[1]"]
    assert (collect.start_time or 0) >= (last_item.end_time or 0)  # after every item


MULTIPROCESS = """\
    name: traced-processes
    version: 1.0.0
    executor: multiprocess
    stages:
      - name: fan
        parallel:
          - id: left
            run: echo
            with: {side: left}
          - id: right
            run: echo
            with: {side: right}
"""


def test_steps_in_other_processes_join_the_runs_trace(tmp_path: Path) -> None:
    (tmp_path / "workflow.yaml").write_text(textwrap.dedent(MULTIPROCESS))
    home = sqlite_home(tmp_path / "home")
    with otlp_receiver() as (endpoint, received):
        done = run_maestro(
            "run",
            "workflow.yaml",
            cwd=tmp_path,
            home=home,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "maestro-test",
            },
            timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
        got = list(received.spans)
    (root,) = [s for s in got if s.name == "workflow traced-processes"]
    assert root.parent_span_id == "" and root.trace_id == run.run_id.replace("-", "")
    assert run.tags[TRACEPARENT_TAG] == f"00-{root.trace_id}-{root.span_id}-01"
    steps = [s for s in got if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == ["step left", "step right"]
    pids = {s.resource["process.pid"] for s in steps}
    assert len(pids) == 2 and root.resource["process.pid"] not in pids  # a process per step
    for span in steps:
        assert span.trace_id == root.trace_id and span.parent_span_id == root.span_id
        assert span.resource["service.name"] == "maestro-test"
    stores = [s for s in got if s.name == "store result"]
    assert {s.parent_span_id for s in stores} == {s.span_id for s in steps}


def test_a_crawl_is_a_client_span_of_its_step_with_the_url_stripped(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    from tests.resources.scraper.test_web_scraper_step import run_workflow as run_crawl_workflow
    from tests.support.scrape_site import ScrapeSite

    with ScrapeSite() as site, dg.instance_for_test() as instance:
        url = site.url("/page/2")
        text = f"""
            name: traced-crawl
            tenant: crawler
            steps:
              - id: crawl
                run: web_scraper
                with: {{url: "{url}#session={CANARY}"}}
        """
        result = run_crawl_workflow(text, instance, tmp_path)
    assert result.success
    named = by_name(list(spans.get_finished_spans()))
    (step,) = named["step crawl"]
    (crawl,) = named["crawl 127.0.0.1"]
    assert crawl.parent is not None and crawl.parent.span_id == step.context.span_id
    assert crawl.kind is SpanKind.CLIENT
    attributes = dict(crawl.attributes or {})
    assert attributes["url.full"] == url and attributes["maestro.scrape.pages"] == 1
    assert CANARY not in every_text(list(spans.get_finished_spans()))


def test_prompt_text_is_recorded_only_with_log_content(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    from resources.plugins.litellm_generate import LITELLM_GENERATE, LiteLLMParams
    from tests.resources.test_litellm_plugin import resource, step_context

    with OpenAIServer("a") as server:
        res = resource(tmp_path, deployment("gpt", server))
        assert LITELLM_GENERATE.run is not None
        LITELLM_GENERATE.run(LiteLLMParams(model="gpt", prompt="quiet words"), step_context(res))
        LITELLM_GENERATE.run(
            LiteLLMParams(model="gpt", prompt="loud words", log_content=True), step_context(res)
        )
    quiet, loud = spans.get_finished_spans()
    assert "quiet words" not in every_text([quiet])
    assert "loud words" in str(dict(loud.attributes or {})["gen_ai.prompt"])


def test_ollama_calls_are_gen_ai_spans(spans: InMemorySpanExporter) -> None:
    from resources.ollama_resource import OllamaResource
    from tests.resources.test_ollama_plugin import GIB, call
    from tests.support.llm_servers import OllamaModel, OllamaServer

    with OllamaServer([OllamaModel("small:3b", 2 * GIB)]) as server:
        resource = OllamaResource(host=server.url, gpu_memory_mb=8 * 1024)
        call(resource, model="small:3b", prompt="hidden words")
        call(resource, chat=True, model="small:3b", prompt="hidden words")
    generate, chat = spans.get_finished_spans()
    assert (generate.name, chat.name) == ("text_completion small:3b", "chat small:3b")
    for span in (generate, chat):
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.provider.name"] == "ollama"
        assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"]
        assert int(attributes["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
        assert attributes["maestro.ollama.placement"] == "gpu"
    assert "hidden words" not in every_text([generate, chat])
