"""`http.request` (alias `api.request`): one HTTP call with httpx, checked against the codes."""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator

from maestro_common.durations import parse_duration
from maestro_common.values import TextMap, is_template
from resources.observability import tracing
from resources.plugins.base import Plugin, PluginParams, StepContext, StepError, StepTimeoutError


class HttpParams(PluginParams):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: TextMap = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict, description="Query string parameters.")
    json_body: Any = Field(None, alias="json")
    data: str | dict[str, Any] | None = None
    timeout: float = Field(30.0, gt=0, description="Seconds, or a duration such as 10s.")
    expected_status: list[int] | None = Field(
        None, description="Status codes that count as success; any 2xx when omitted."
    )
    follow_redirects: bool = True

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        timeout = data.get("timeout") if isinstance(data, dict) else None
        # A template is checked after rendering, at run time; parsing it now would reject it.
        if isinstance(timeout, str) and not is_template(timeout):
            data = {**data, "timeout": parse_duration(data["timeout"])}
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return data


def _trace_call(
    params: HttpParams,
    started_ns: int,
    status: int | None,
    error: BaseException | None,
    ctx: StepContext,
) -> None:
    """The call's HTTP client span (`GET`, ...): the URL without credentials or query."""
    if not tracing.enabled():
        return
    attributes = {
        tracing.HTTP_METHOD: params.method,
        tracing.URL_FULL: tracing.safe_url(params.url),
        tracing.SERVER_ADDRESS: urlsplit(params.url).hostname,
        tracing.HTTP_STATUS: status,
    }
    error_type = type(error).__name__ if error is not None else None
    if status is not None and status >= 400:
        error_type = str(status)
    tracing.past_span(
        params.method, started_ns, attributes, error_type=error_type, redact=ctx.redact
    )


def request(params: HttpParams, ctx: StepContext) -> dict[str, Any]:
    """One call, within what is left of the step's time."""
    import httpx  # here, not at the top: it pulls in rich and pygments, slowing the code location

    remaining = ctx.remaining()
    timeout = min(params.timeout, remaining) if remaining is not None else params.timeout
    ctx.log.info(ctx.redact(f"{params.method} {params.url}"))
    called = time.time_ns()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=params.follow_redirects) as client:
            response = client.request(
                params.method,
                params.url,
                headers=params.headers,
                params=params.params,
                json=params.json_body,
                data=params.data if isinstance(params.data, dict) else None,
                content=params.data if isinstance(params.data, str) else None,
            )
    except httpx.TimeoutException as exc:
        _trace_call(params, called, None, exc, ctx)
        raise StepTimeoutError(f"HTTP {params.method} {params.url} timed out") from exc
    except httpx.HTTPError as exc:
        _trace_call(params, called, None, exc, ctx)
        raise StepError(
            f"HTTP {params.method} {params.url} failed: {exc}", kind="connection"
        ) from exc
    _trace_call(params, called, response.status_code, None, ctx)
    ok = (
        response.status_code in params.expected_status
        if params.expected_status
        else response.is_success
    )
    if not ok:
        raise StepError(
            f"HTTP {params.method} {params.url} returned {response.status_code}: "
            f"{response.text[:200]}",
            kind="http_status",
            status=response.status_code,
        )
    body: dict[str, Any]
    try:
        body = {"json": response.json()}
    except ValueError:
        body = {"text": response.text}
    return {
        "status": response.status_code,
        "url": str(response.url),
        "headers": dict(response.headers),
        **body,
    }


class HttpRequest(Plugin[HttpParams]):
    name = "http.request"
    aliases = ("api.request",)
    description = "Make an HTTP request; output status, headers and JSON or text."
    params_model = HttpParams

    def run(self, params: HttpParams, ctx: StepContext) -> dict[str, Any]:
        return request(params, ctx)


HTTP_REQUEST = HttpRequest()
