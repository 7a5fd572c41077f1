"""`litellm.generate`: one LLM call through the LiteLLM Router of the `litellm` resource.

Routing, retries, cooldowns and group fallbacks are LiteLLM's; this module adds what a workflow
step needs around them: prompt templates checked at compile time, a budget estimate before the
call, the cost and tokens in the output, JSON output parsed and validated, a local response
cache, and errors whose kind `retry_on` can name (rate_limit, server_error, timeout, ...), with
API keys redacted. litellm is imported on the first call, never at import time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from maestro_common.durations import parse_duration
from maestro_common.values import PrepareError, is_template
from resources.litellm_resource import DEFAULT_OUTPUT_TOKENS, LiteLLMClient, Price
from resources.observability import tracing
from resources.plugins.base import (
    BudgetExceededError,
    Plugin,
    PluginParams,
    StepContext,
    StepError,
)
from resources.plugins.faults import describe
from resources.plugins.json_output import parse_json_output
from resources.plugins.prompts import (
    BUILTIN_DIR,
    PromptTemplate,
    PromptTemplateError,
    find_template,
    load_template_file,
)
from resources.response_cache import cache_key

RESOURCE_KEY = "litellm"
_ERROR_KINDS = {
    "BudgetExceededError": "budget",
    "ContextWindowExceededError": "context_window",
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "NotFoundError": "model_not_found",
    "ContentPolicyViolationError": "bad_request",
    "BadRequestError": "bad_request",
    "APIConnectionError": "connection",
    "InternalServerError": "server_error",
    "ServiceUnavailableError": "server_error",
    "BadGatewayError": "server_error",
    "APIError": "server_error",
}


class LiteLLMParams(PluginParams):
    model: str
    prompt: str | None = None
    prompt_template: str | None = None
    template_variables: dict[str, Any] = Field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = None
    stop: str | list[str] | None = None
    response_format: Any = None
    tools: list[dict[str, Any]] | None = None
    fallbacks: list[str] = Field(default_factory=list)
    timeout: float | str | None = None
    cache: bool = False
    log_content: bool = False
    prompt_template_file: SkipJsonSchema[str | None] = None
    """Set by the compiler for a template from the workflow's `prompts/` folder: its path
    relative to the workflow file's folder (`prompts/<name>.j2`), resolved when the step runs."""


# ---------------------------------------------------------------- compile time


def prepare_generate(raw: dict[str, Any], workflow_dir: Path | None = None) -> dict[str, Any]:
    """Exactly one prompt source; a static template must exist and get its variables."""
    given = [k for k in ("prompt", "prompt_template", "messages") if raw.get(k) is not None]
    if len(given) != 1:
        field = given[1] if len(given) > 1 else "prompt"
        problem = "only one of" if given else "one of"
        raise PrepareError(field, f"give {problem} prompt, prompt_template or messages")
    timeout = raw.get("timeout")
    if timeout is not None and not is_template(timeout):
        try:
            parse_duration(timeout)
        except ValueError as exc:
            raise PrepareError("timeout", str(exc)) from exc
    response_format = raw.get("response_format")
    if response_format is not None and not is_template(response_format):
        try:
            litellm_response_format(response_format)
        except ValueError as exc:
            raise PrepareError("response_format", str(exc)) from exc
    name = raw.get("prompt_template")
    if name is None or is_template(name):
        return raw
    try:
        template = find_template(str(name), workflow_dir)
    except PromptTemplateError as exc:
        raise PrepareError("prompt_template", str(exc)) from exc
    variables = raw.get("template_variables", {})
    if isinstance(variables, dict):
        missing = template.missing(variables)
        if missing:
            field = "template_variables" if "template_variables" in raw else "prompt_template"
            raise PrepareError(
                field, f"prompt template {name!r} needs template_variables: {', '.join(missing)}"
            )
    if template.path.parent != BUILTIN_DIR and workflow_dir is not None:
        # relative: the compiled job (and `maestro plan`) is the same in every checkout
        relative = template.path.relative_to(workflow_dir).as_posix()
        return {**raw, "prompt_template_file": relative}
    return raw


# ---------------------------------------------------------------- request


def litellm_response_format(value: Any) -> dict[str, Any] | None:
    """`json`, `{type: json_object}`, a JSON Schema, or OpenAI's `{type: json_schema, ...}`."""
    import jsonschema  # here: the code location does not pay for it unless a step needs it

    if value is None or value == "text":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ("json_object", "text"):
            return None if kind == "text" else {"type": "json_object"}
        if kind == "json_schema":
            schema = (value.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise ValueError("a json_schema response_format needs json_schema.schema")
            jsonschema.validators.validator_for(schema).check_schema(schema)
            return value
        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"response_format is not a valid JSON Schema: {exc.message}") from exc
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": value, "strict": True},
        }
    raise ValueError("response_format must be text, json, or a JSON Schema")


def _template(params: LiteLLMParams, workflow_dir: Path | None) -> PromptTemplate:
    name = params.prompt_template or ""
    if params.prompt_template_file:
        file = Path(params.prompt_template_file)
        if not file.is_absolute():
            if workflow_dir is None:
                raise PromptTemplateError(
                    f"prompt template {name!r}: {file} is relative to the workflow file's "
                    "folder, and this step was not told where the workflow file is"
                )
            file = workflow_dir / file
        return load_template_file(file, name)
    return find_template(name, workflow_dir)  # a name rendered at run time


def build_messages(params: LiteLLMParams, workflow_dir: Path | None = None) -> list[dict[str, Any]]:
    """The chat messages of the call: the system prompt, then the prompt, template or list."""
    if params.messages is not None:
        messages = [dict(m) for m in params.messages]
    else:
        if params.prompt_template is not None:
            try:
                text = _template(params, workflow_dir).render(params.template_variables)
            except PromptTemplateError as exc:
                raise StepError(str(exc)) from exc
        else:
            text = params.prompt or ""
        messages = [{"role": "user", "content": text}]
    if params.system is not None:
        messages.insert(0, {"role": "system", "content": params.system})
    return messages


def _sampling(params: LiteLLMParams) -> dict[str, Any]:
    options: dict[str, Any] = {
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
        "top_p": params.top_p,
        "stop": params.stop,
        "tools": params.tools,
        "response_format": litellm_response_format(params.response_format),
    }
    return {k: v for k, v in options.items() if v is not None}


def _client(ctx: StepContext) -> LiteLLMClient:
    client: LiteLLMClient = ctx.resource(RESOURCE_KEY, "litellm.generate").client()
    return client


def _timeout(params: LiteLLMParams, ctx: StepContext) -> float | None:
    limits = []
    if params.timeout is not None:
        limits.append(parse_duration(params.timeout))
    remaining = ctx.remaining()
    if remaining is not None:
        limits.append(remaining)
    return min(limits) if limits else None


def _cache_key(
    params: LiteLLMParams, messages: list[dict[str, Any]], options: dict[str, Any]
) -> str:
    """Everything that shapes the answer; `options` is `_sampling(params)`."""
    return cache_key(
        {"model": params.model, "fallbacks": params.fallbacks, "messages": messages, **options}
    )


# ---------------------------------------------------------------- cost


def estimate_generate_cost(params: LiteLLMParams, ctx: StepContext) -> float:
    """An upper bound (USD): prompt tokens at the dearest candidate's input price, plus
    `max_tokens` (or the model's output limit) at its output price. A cached answer is free."""
    client = _client(ctx)
    messages = build_messages(params, ctx.workflow_dir)
    if params.cache:
        key = _cache_key(params, messages, _sampling(params))
        if client.response_cache().get(key) is not None:
            return 0.0
    candidates = [params.model, *client.fallbacks_of(params.model, params.fallbacks)]
    prices = [client.price_for_model(m) for m in candidates]
    dearest = max(prices, key=lambda p: (p.input, p.output))
    highest_output = max(p.output for p in prices)
    model = client.deployments_of(params.model)[0]["litellm_params"]["model"]
    try:
        prompt_tokens = client.litellm.token_counter(model=model, messages=messages)
    except Exception:  # an unknown tokenizer: a rough count beats none
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 3 + 8
    output_tokens = params.max_tokens or dearest.max_output_tokens or DEFAULT_OUTPUT_TOKENS
    return prompt_tokens * dearest.input + output_tokens * highest_output


def _actual_cost(
    client: LiteLLMClient, response: Any, group: str, usage: dict[str, int]
) -> tuple[float, bool]:
    """(USD, priced): LiteLLM's figure, or tokens times the configured price when it has none."""
    hidden = getattr(response, "_hidden_params", {}) or {}
    price: Price = client.price_for_model(group)
    answered = hidden.get("litellm_model_name")
    for deployment in client.deployments_of(group):
        if deployment["litellm_params"]["model"] == answered:
            price = client.price_of(deployment)
            break
    cost = float(hidden.get("response_cost") or 0.0)
    tokens = usage["input_tokens"] + usage["output_tokens"]
    if cost == 0.0 and price.known and tokens:
        cost = usage["input_tokens"] * price.input + usage["output_tokens"] * price.output
    return cost, price.known or cost > 0


# ---------------------------------------------------------------- the call


def _error_kind(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__name__ in _ERROR_KINDS:
            return _ERROR_KINDS[cls.__name__]
    return "plugin_error"


def _complete(
    client: LiteLLMClient,
    params: LiteLLMParams,
    messages: list[dict[str, Any]],
    sampling: dict[str, Any],
    timeout: float | None,
) -> tuple[Any, str, int]:
    """(response, the model that answered, fallbacks tried). Router groups go through the
    Router (its retries, cooldowns and fallbacks); other models are called in order."""
    options = dict(sampling)
    if timeout is not None:
        options["timeout"] = timeout
    candidates = [params.model, *params.fallbacks]
    if all(m in client.groups for m in candidates):
        if params.fallbacks:
            options["fallbacks"] = params.fallbacks
        response = client.router.completion(model=params.model, messages=messages, **options)
        headers = (getattr(response, "_hidden_params", {}) or {}).get("additional_headers") or {}
        group = headers.get("x-litellm-model-group") or params.model
        return response, group, int(headers.get("x-litellm-attempted-fallbacks") or 0)
    last: BaseException | None = None
    for tried, model in enumerate(candidates):
        try:
            if model in client.groups:
                response = client.router.completion(model=model, messages=messages, **options)
            else:
                response = client.litellm.completion(model=model, messages=messages, **options)
            return response, model, tried
        except Exception as exc:
            if _error_kind(exc) in ("auth", "bad_request", "budget"):
                raise
            last = exc
    assert last is not None
    raise last


def _trace_call(
    params: LiteLLMParams,
    sampling: dict[str, Any],
    messages: list[dict[str, Any]],
    started_ns: int,
    output: dict[str, Any] | None,
    error: BaseException | None,
    ctx: StepContext,
    response_model: str | None = None,
) -> None:
    """The call's GenAI span (`chat <model>`); prompt text only with `log_content: true`."""
    if not tracing.enabled():
        return
    usage = (output or {}).get("usage") or {}
    attributes: dict[str, Any] = {
        tracing.GEN_AI_OPERATION: "chat",
        tracing.GEN_AI_PROVIDER: (output or {}).get("provider") or params.model.split("/")[0],
        tracing.GEN_AI_REQUEST_MODEL: params.model,
        tracing.GEN_AI_RESPONSE_MODEL: response_model or (output or {}).get("deployment"),
        tracing.GEN_AI_INPUT_TOKENS: usage.get("input_tokens"),
        tracing.GEN_AI_OUTPUT_TOKENS: usage.get("output_tokens"),
        tracing.GEN_AI_TEMPERATURE: sampling.get("temperature"),
        tracing.GEN_AI_MAX_TOKENS: sampling.get("max_tokens"),
        tracing.GEN_AI_FINISH_REASONS: [output["finish_reason"]]
        if output and output.get("finish_reason")
        else None,
        "maestro.cost_usd": (output or {}).get("cost_usd"),
    }
    if params.log_content:
        attributes[tracing.GEN_AI_PROMPT] = json.dumps(messages, default=str)
    name = tracing.gen_ai_span_name("chat", params.model)
    tracing.past_span(name, started_ns, attributes, error=error, redact=ctx.redact)


def run_generate(params: LiteLLMParams, ctx: StepContext) -> dict[str, Any]:
    client = _client(ctx)
    litellm = client.litellm
    messages = build_messages(params, ctx.workflow_dir)
    sampling = _sampling(params)  # once: a JSON Schema response_format is checked each time
    key = _cache_key(params, messages, sampling) if params.cache else ""
    started = time.perf_counter()
    if params.cache:
        hit = client.response_cache().get(key)
        if hit is not None:
            ctx.log.info(f"litellm: cache hit for {params.model}: no request, no cost")
            latency = round((time.perf_counter() - started) * 1000, 3)
            return {**hit, "cached": True, "cost_usd": 0.0, "latency_ms": latency}
    if ctx.budget_remaining_usd is not None and ctx.budget_remaining_usd <= 0:
        raise BudgetExceededError(
            f"over budget: the run has no budget left (${ctx.budget_remaining_usd:.6f}); "
            "no call was made"
        )
    litellm.turn_off_message_logging = not params.log_content
    if params.log_content:
        for message in messages:
            ctx.log.info(f"litellm prompt ({message.get('role')}): {message.get('content')}")
    called = time.time_ns()
    try:
        response, group, fallbacks_tried = _complete(
            client, params, messages, sampling, _timeout(params, ctx)
        )
    except Exception as exc:
        wire_kind, described = describe(exc, str(exc))
        error = ctx.redact(client.redact(described))
        _trace_call(params, sampling, messages, called, None, exc, ctx)
        kind = _error_kind(exc)
        if wire_kind is not None and kind in ("server_error", "plugin_error"):
            kind = wire_kind  # litellm files a cut connection under InternalServerError
        raise StepError(error, kind=kind, model=params.model) from None
    latency = round((time.perf_counter() - started) * 1000, 3)
    choice = response.choices[0]
    text = choice.message.content or ""
    raw_usage = getattr(response, "usage", None)
    usage = {
        "input_tokens": int(getattr(raw_usage, "prompt_tokens", 0) or 0),
        "output_tokens": int(getattr(raw_usage, "completion_tokens", 0) or 0),
    }
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    cost, priced = _actual_cost(client, response, group, usage)
    ctx.add_cost(cost)
    hidden = getattr(response, "_hidden_params", {}) or {}
    output: dict[str, Any] = {
        "text": text,
        "model": group,
        "deployment": hidden.get("litellm_model_name") or getattr(response, "model", group),
        "provider": hidden.get("custom_llm_provider"),
        "usage": usage,
        "cost_usd": cost,
        "priced": priced,
        "latency_ms": latency,
        "fallback_used": group != params.model or fallbacks_tried > 0,
        "cached": False,
        "finish_reason": choice.finish_reason,
    }
    _trace_call(
        params, sampling, messages, called, output, None, ctx, getattr(response, "model", None)
    )
    tool_calls = getattr(choice.message, "tool_calls", None)
    if tool_calls:
        output["tool_calls"] = [call.model_dump() for call in tool_calls]
    response_format = sampling.get("response_format")
    if response_format is not None:
        schema = (response_format.get("json_schema") or {}).get("schema")
        output["json"] = parse_json_output(text, schema, "response_format")
    if not priced:
        ctx.log.warning(f"litellm: no price known for {group}: cost_usd is 0")
    ctx.log.info(
        f"litellm: {group} answered in {latency:.0f} ms, {usage['input_tokens']} in / "
        f"{usage['output_tokens']} out tokens, ${cost:.6f}"
        + (" (fallback)" if output["fallback_used"] else "")
    )
    if params.log_content:
        ctx.log.info(f"litellm completion: {text}")
    if params.cache:
        client.response_cache().set(key, output)
    return output


def models_for_generate(params: LiteLLMParams, ctx: StepContext) -> list[str]:
    """The step's model and fallbacks, plus where the Router may fall back to from them."""
    return _client(ctx).reachable_models(params.model, params.fallbacks)


class LiteLLMGenerate(Plugin[LiteLLMParams]):
    name = "litellm.generate"
    aliases = ("litellm", "llm.generate")
    description = "Generate text with LiteLLM (routing, fallbacks, cost, templates, cache)."
    params_model = LiteLLMParams
    resource_keys = frozenset({RESOURCE_KEY})
    default_pool = (
        "llm"  # the provider's rate limits: the instance's `llm` pool (deploy/pools.yaml)
    )

    def prepare(self, raw: dict[str, Any], workflow_dir: Path | None) -> dict[str, Any]:
        return prepare_generate(raw, workflow_dir)

    def run(self, params: LiteLLMParams, ctx: StepContext) -> dict[str, Any]:
        return run_generate(params, ctx)

    def estimate_cost(self, params: LiteLLMParams, ctx: StepContext) -> float:
        return estimate_generate_cost(params, ctx)

    def models_for(self, params: LiteLLMParams, ctx: StepContext) -> list[str]:
        return models_for_generate(params, ctx)


LITELLM_GENERATE = LiteLLMGenerate()
