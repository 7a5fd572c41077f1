"""`http.request` (alias `api.request`): one HTTP call with httpx, checked against the codes.

SSRF: the URL, every redirect target and every connection are checked against the scraper's
address policy (resources/scraper/ssrf.py): loopback, private, link-local, metadata and other
non-public addresses are refused unless the tenant's `ssrf_allow` (policy data) lists them.
The connection itself resolves the name once, checks every address and connects to the
checked one, so a DNS answer that changes between the check and the connect (rebinding)
does not get through."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator

from maestro_common.durations import parse_duration
from maestro_common.values import TextMap, is_template
from resources.observability import tracing
from resources.plugins.base import (
    Plugin,
    PluginParams,
    PolicyDeniedError,
    StepContext,
    StepError,
    StepTimeoutError,
)
from resources.plugins.web_scraper import POLICY_KEY, tenant_ssrf_allow
from resources.scraper.ssrf import AddressPolicy

if TYPE_CHECKING:
    import httpx


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


class SsrfRefusedError(PolicyDeniedError):
    """A request to an address the tenant may not reach: a policy refusal, never retried."""

    def __init__(self, problem: str):
        super().__init__(f"SSRF guard refused {problem}", kind="ssrf_blocked")


def _guarded_transport(policy: AddressPolicy) -> httpx.HTTPTransport:
    """An httpx transport whose connections go only to addresses `policy` allows."""
    import httpcore
    import httpx

    class GuardedBackend(httpcore.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.NetworkStream:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            for address in addresses:  # one refused answer among allowed ones is a refusal
                problem = policy.check_resolved(host, address)
                if problem:
                    raise SsrfRefusedError(problem)
            return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    transport = httpx.HTTPTransport()
    pool = transport._pool  # httpcore.ConnectionPool; httpx has no public hook for this
    assert hasattr(pool, "_network_backend"), "httpcore changed: see resources/plugins/http.py"
    pool._network_backend = GuardedBackend()
    return transport


def address_policy(ctx: StepContext) -> AddressPolicy:
    """The tenant's SSRF policy; without a policy resource, public addresses only."""
    engine = ctx.resources.get(POLICY_KEY)
    allow = tenant_ssrf_allow(engine, ctx.run.tenant) if engine is not None else []
    return AddressPolicy(allow=allow)


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
    policy = address_policy(ctx)

    def check(outgoing: httpx.Request) -> None:  # the first request and every redirect
        problem = policy.check_url(str(outgoing.url))
        if problem:
            raise SsrfRefusedError(ctx.redact(problem))

    called = time.time_ns()
    try:
        with httpx.Client(
            timeout=timeout,
            follow_redirects=params.follow_redirects,
            transport=_guarded_transport(policy),
            event_hooks={"request": [check]},
            trust_env=False,  # a proxy would resolve and connect where the guard cannot see
        ) as client:
            response = client.request(
                params.method,
                params.url,
                headers=params.headers,
                params=params.params or None,  # {} would drop the query the URL has
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
    resource_keys = frozenset({POLICY_KEY})

    def run(self, params: HttpParams, ctx: StepContext) -> dict[str, Any]:
        return request(params, ctx)


HTTP_REQUEST = HttpRequest()
