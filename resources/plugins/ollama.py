"""`ollama.generate` / `ollama.chat`: local models through the official `ollama` client.

Before the call the plugin reads `/api/tags` and `/api/ps` and picks, from the step's model and
its `fallback_models`, the first that the server has and that fits the GPU budget (a loaded
model's `size_vram` vs `size`; an unloaded model's size vs `gpu_memory_mb`). `require_gpu`
refuses a model that would run on the CPU, entirely or in part. A model that fails or is
missing at call time gives way to the next. Tokens are written to the compute log (stdout) as
they arrive. Steps share the Dagster pool `ollama`, so an instance pool limit caps how many
run against the host at once.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from maestro_common.values import PrepareError, is_template
from resources.observability import tracing
from resources.ollama_resource import OllamaResource, ServerModel, ServerState, full_name
from resources.plugins.base import Plugin, PluginParams, StepContext, StepError
from resources.plugins.faults import describe
from resources.plugins.json_output import parse_json_output

RESOURCE_KEY = "ollama"
POOL = "ollama"
MIB = 1024 * 1024
Placement = Literal["gpu", "cpu", "split", "unknown"]
OllamaKind = Literal["generate", "chat"]


class OllamaParams(PluginParams):
    model: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    template: str | None = None
    system: str | None = None
    format: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    keep_alive: str | int | None = None
    stream: bool = True
    fallback_models: list[str] = Field(default_factory=list)
    require_gpu: bool = False


# ---------------------------------------------------------------- model choice


def placement_of(size: int, size_vram: int) -> Placement:
    if size_vram <= 0:
        return "cpu"
    return "gpu" if size_vram >= size else "split"


@dataclass(frozen=True)
class Choice:
    model: str
    placement: Placement
    fits: bool
    size: int


def gpu_budget_bytes(state: ServerState, gpu_memory_mb: int | None) -> int | None:
    """The configured VRAM, else what the server shows in use (a lower bound), else unknown."""
    if gpu_memory_mb is not None:
        return gpu_memory_mb * MIB
    in_use = state.vram_in_use
    return in_use or None


def _expected(model: ServerModel, budget: int | None) -> tuple[Placement, bool]:
    if model.loaded:
        placement = placement_of(model.size, model.size_vram or 0)
        return placement, placement == "gpu"
    if budget is None:
        return "unknown", False
    if budget == 0:
        return "cpu", False
    return ("gpu", True) if model.size <= budget else ("split", False)


def choose_models(
    candidates: list[str], state: ServerState, gpu_memory_mb: int | None, require_gpu: bool
) -> tuple[list[Choice], list[str]]:
    """The candidates to try, best first, and why the others were left out.

    Models that fit the GPU come first, in the step's order; with `require_gpu: false` the
    ones that would spill to the CPU follow, so a CPU-only host still answers.
    """
    budget = gpu_budget_bytes(state, gpu_memory_mb)
    fitting: list[Choice] = []
    spilling: list[Choice] = []
    skipped: list[str] = []
    for name in dict.fromkeys(candidates):
        model = state.models.get(full_name(name))
        if model is None:
            skipped.append(f"{name}: not on the server (ollama pull {name})")
            continue
        placement, fits = _expected(model, budget)
        choice = Choice(name, placement, fits, model.size)
        if fits:
            fitting.append(choice)
        elif require_gpu:
            why = (
                "cannot tell whether it fits on the GPU: set gpu_memory_mb on the ollama resource"
                if placement == "unknown"
                else f"would run on {placement} ({model.size // MIB} MiB"
                + (f", GPU budget {budget // MIB} MiB)" if budget is not None else ")")
            )
            skipped.append(f"{name}: {why}")
        else:
            spilling.append(choice)
    return fitting + spilling, skipped


# ---------------------------------------------------------------- compile time


def check_params(kind: OllamaKind, raw: dict[str, Any]) -> None:
    """Compile time: one prompt source that fits the endpoint, and a usable `format`."""
    given = [k for k in ("prompt", "messages") if raw.get(k) is not None]
    if len(given) != 1:
        field = given[1] if len(given) > 1 else "prompt"
        raise PrepareError(field, "give exactly one of prompt or messages")
    if kind == "generate" and "messages" in given:
        raise PrepareError("messages", "ollama.generate takes a prompt; use ollama.chat")
    if kind == "chat" and raw.get("template") is not None:
        raise PrepareError("template", "ollama.chat has no template; use ollama.generate")
    fmt = raw.get("format")
    if isinstance(fmt, str) and fmt not in ("json", "") and not is_template(fmt):
        raise PrepareError("format", "format is `json` or a JSON Schema")
    if isinstance(fmt, dict):
        import jsonschema  # here: the code location does not pay for it unless needed

        try:
            jsonschema.validators.validator_for(fmt).check_schema(fmt)
        except jsonschema.SchemaError as exc:
            raise PrepareError("format", f"not a valid JSON Schema: {exc.message}") from exc


# ---------------------------------------------------------------- the call


def _messages(params: OllamaParams) -> list[dict[str, Any]]:
    messages = [dict(m) for m in params.messages or []]
    if params.prompt is not None:
        messages.append({"role": "user", "content": params.prompt})
    if params.system is not None:
        messages.insert(0, {"role": "system", "content": params.system})
    return messages


def _request(client: Any, kind: str, model: str, params: OllamaParams) -> Any:
    common: dict[str, Any] = {
        "model": model,
        "stream": params.stream,
        "format": params.format,
        "options": params.options or None,
        "keep_alive": params.keep_alive,
    }
    if kind == "chat":
        return client.chat(messages=_messages(params), **common)
    return client.generate(
        prompt=params.prompt, system=params.system, template=params.template, **common
    )


def _piece(kind: str, chunk: Any) -> str:
    if kind == "chat":
        return (chunk.message.content if chunk.message else "") or ""
    return chunk.response or ""


def _generate(
    client: Any, kind: str, model: str, params: OllamaParams, ctx: StepContext
) -> tuple[str, Any, int]:
    """(text, the final response with counts and durations, chunks received)."""
    if not params.stream:
        response = _request(client, kind, model, params)
        _check_done(response, 1)
        return _piece(kind, response), response, 1
    parts: list[str] = []
    final: Any = None
    received = 0
    for final in _request(client, kind, model, params):
        received += 1
        if ctx.cancelled.is_set():
            raise StepError("cancelled while streaming", kind="timeout")
        piece = _piece(kind, final)
        if piece:
            parts.append(piece)
            sys.stdout.write(ctx.redact(piece))  # the compute log, token by token
            sys.stdout.flush()
    sys.stdout.write("\n")
    _check_done(final, received)
    return "".join(parts), final, len(parts)


class IncompleteAnswerError(Exception):
    """The server's answer ended without its final message (`done: true`)."""


def _check_done(final: Any, received: int) -> None:
    """A stream cut at a message boundary ends without error: without the `done` message the
    text is partial and the counts (and so the cost) are missing, so it is a failure."""
    if final is None or not getattr(final, "done", False):
        raise IncompleteAnswerError(
            f"the answer ended before its final message (done: true) after {received} "
            "message(s): the server or the connection stopped mid-answer"
        )


def _ms(nanoseconds: int | None) -> float | None:
    return None if nanoseconds is None else round(nanoseconds / 1e6, 3)


def _trace_call(
    kind: str,
    model: str,
    started_ns: int,
    output: dict[str, Any] | None,
    error: BaseException | None,
    ctx: StepContext,
) -> None:
    """The call's GenAI span (`chat <model>` / `text_completion <model>`), with GPU time."""
    if not tracing.enabled():
        return
    operation = "chat" if kind == "chat" else "text_completion"
    out = output or {}
    attributes = {
        tracing.GEN_AI_OPERATION: operation,
        tracing.GEN_AI_PROVIDER: "ollama",
        tracing.GEN_AI_REQUEST_MODEL: model,
        tracing.GEN_AI_RESPONSE_MODEL: out.get("model"),
        tracing.GEN_AI_INPUT_TOKENS: out.get("prompt_eval_count"),
        tracing.GEN_AI_OUTPUT_TOKENS: out.get("eval_count"),
        "maestro.ollama.placement": out.get("placement"),
        "maestro.ollama.total_duration_ms": out.get("total_duration_ms"),
        "maestro.cost_usd": out.get("cost_usd"),
    }
    name = tracing.gen_ai_span_name(operation, model)
    tracing.past_span(name, started_ns, attributes, error=error, redact=ctx.redact)


def run_ollama(kind: OllamaKind, params: OllamaParams, ctx: StepContext) -> dict[str, Any]:
    """Pick a model that the server has and that fits, call it, fall back on failure."""
    resource: OllamaResource = ctx.resource(RESOURCE_KEY, "ollama")
    timeout = ctx.remaining()
    client = resource.client(timeout=min(timeout, resource.timeout) if timeout else None)
    try:
        state = resource.state(client)
    except Exception as exc:
        raise StepError(
            f"Ollama at {resource.base_url()} does not answer: {exc}", kind="connection"
        ) from None
    candidates = [params.model, *params.fallback_models]
    choices, skipped = choose_models(candidates, state, resource.gpu_memory_mb, params.require_gpu)
    for reason in skipped:
        ctx.log.info(f"ollama: skipping {reason}")
    if not choices:
        kind_ = "gpu_unavailable" if params.require_gpu else "model_not_found"
        raise StepError(
            f"no usable Ollama model among {', '.join(candidates)}: " + "; ".join(skipped),
            kind=kind_,
        )
    errors: list[str] = []
    wire_kinds: set[str | None] = set()
    for choice in choices:
        ctx.log.info(f"ollama: {kind} with {choice.model} (expected placement: {choice.placement})")
        called = time.time_ns()
        try:
            text, final, chunks = _generate(client, kind, choice.model, params, ctx)
        except StepError as exc:
            _trace_call(kind, choice.model, called, None, exc, ctx)
            raise
        except Exception as exc:  # ResponseError (missing, 500), connection errors
            _trace_call(kind, choice.model, called, None, exc, ctx)
            wire_kind, described = describe(exc, str(exc))
            wire_kinds.add(wire_kind)
            errors.append(f"{choice.model}: {described}")
            ctx.log.warning(f"ollama: {choice.model} failed: {described}")
            continue
        output = _output(resource, client, choice, candidates, params, text, final, chunks, ctx)
        _trace_call(kind, choice.model, called, output, None, ctx)
        return output
    (only,) = wire_kinds if len(wire_kinds) == 1 else (None,)
    raise StepError(
        "every Ollama model failed: " + "; ".join(errors + skipped),
        kind="connection" if only == "connection" else "server_error",
    )


def _output(
    resource: OllamaResource,
    client: Any,
    choice: Choice,
    candidates: list[str],
    params: OllamaParams,
    text: str,
    final: Any,
    chunks: int,
    ctx: StepContext,
) -> dict[str, Any]:
    placement: Placement = choice.placement
    size_vram: int | None = None
    try:  # where the model really sits now that it has answered
        loaded = resource.state(client).models.get(full_name(choice.model))
        if loaded is not None and loaded.loaded:
            size_vram = loaded.size_vram
            placement = placement_of(loaded.size, loaded.size_vram or 0)
    except Exception as exc:
        ctx.log.warning(f"ollama: could not read /api/ps after the call: {exc}")
    total_ns = getattr(final, "total_duration", None)
    cost = 0.0
    if resource.price_per_gpu_hour is not None and total_ns:
        cost = resource.price_per_gpu_hour * total_ns / 3.6e12
        ctx.add_cost(cost)
    output: dict[str, Any] = {
        "text": text,
        "model": choice.model,
        "eval_count": getattr(final, "eval_count", None),
        "prompt_eval_count": getattr(final, "prompt_eval_count", None),
        "total_duration_ms": _ms(total_ns),
        "load_duration_ms": _ms(getattr(final, "load_duration", None)),
        "prompt_eval_duration_ms": _ms(getattr(final, "prompt_eval_duration", None)),
        "eval_duration_ms": _ms(getattr(final, "eval_duration", None)),
        "placement": placement,
        "size": choice.size,
        "size_vram": size_vram,
        "fallback_used": choice.model != candidates[0],
        "cost_usd": cost,
        "chunks": chunks,
        "done_reason": getattr(final, "done_reason", None),
    }
    if params.format:
        schema = params.format if isinstance(params.format, dict) else None
        output["json"] = parse_json_output(text, schema, "format")
    ctx.log.info(
        f"ollama: {choice.model} ({placement}) answered: {output['eval_count']} tokens in "
        f"{output['total_duration_ms']} ms" + (f", ${cost:.6f}" if cost else "")
    )
    if params.require_gpu and placement != "gpu":
        raise StepError(
            f"{choice.model} ran on {placement}, not entirely on the GPU (require_gpu)",
            kind="gpu_unavailable",
        )
    return output


class _Ollama(Plugin[OllamaParams]):
    """The two Ollama endpoints differ only in `kind`."""

    kind: ClassVar[OllamaKind]
    params_model = OllamaParams
    resource_keys = frozenset({RESOURCE_KEY})
    default_pool = POOL

    def prepare(self, raw: dict[str, Any], workflow_dir: Path | None) -> dict[str, Any]:
        check_params(self.kind, raw)
        return raw

    def run(self, params: OllamaParams, ctx: StepContext) -> dict[str, Any]:
        return run_ollama(self.kind, params, ctx)


class OllamaGenerate(_Ollama):
    name = "ollama.generate"
    aliases = ("ollama",)
    description = "Generate text with a local Ollama model (GPU-aware, fallback models)."
    kind = "generate"


class OllamaChat(_Ollama):
    name = "ollama.chat"
    description = "Chat with a local Ollama model (GPU-aware, fallback models)."
    kind = "chat"


OLLAMA_GENERATE = OllamaGenerate()
OLLAMA_CHAT = OllamaChat()
