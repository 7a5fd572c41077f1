"""SSRF guard of `http.request`: non-public addresses are refused unless the tenant's
`ssrf_allow` lists them, for the URL, after redirects, and at connect time (DNS names)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.plugins import RunInfo, StepContext
from resources.plugins.http import (
    HTTP_REQUEST,
    HttpParams,
    SsrfRefusedError,
    _guarded_transport,
)
from resources.policy.engine import PolicyEngineResource
from resources.scraper.ssrf import AddressPolicy
from tests.support.compiling import compile_file
from tests.support.http_server import serve_http
from tests.support.paths import PROJECT_ROOT
from tests.support.policy_data import policy_with_tenant

HITS: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    """/ok answers; /redirect?to=URL redirects there."""

    def do_GET(self) -> None:
        HITS.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    HITS.clear()
    with serve_http(_Handler) as url:
        yield url


def ctx(policy: PolicyEngineResource, tenant: str) -> StepContext:
    return StepContext(
        step_id="probe",
        run=RunInfo("run-1", "wf", tenant, "dev", ""),
        log=logging.getLogger("maestro.test"),
        resources={"policy": policy},
    )


@pytest.fixture
def public_only(tmp_path: Path) -> StepContext:
    """A tenant with no `ssrf_allow`: public addresses only."""
    return ctx(policy_with_tenant(tmp_path, "public", {"allowed_plugins": ["*"]}), "public")


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),  # a DNS name that resolves there
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
        ("169.254.169.254", "cloud metadata"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_non_public_addresses_are_refused(
    server: str, public_only: StepContext, host: str, reason: str
) -> None:
    with pytest.raises(SsrfRefusedError, match=reason) as caught:
        HTTP_REQUEST.run(HttpParams(url=f"http://{host}:{_port(server)}/ok"), public_only)
    assert caught.value.kind == "ssrf_blocked"
    assert HITS == []


def test_an_explicit_allow_reaches_a_loopback_server(server: str, tmp_path: Path) -> None:
    allowed = ctx(
        policy_with_tenant(
            tmp_path, "lab", {"allowed_plugins": ["*"], "ssrf_allow": ["127.0.0.1"]}
        ),
        "lab",
    )
    output = HTTP_REQUEST.run(HttpParams(url=f"{server}/ok"), allowed)
    assert output["json"] == {"ok": True}
    # the shipped `default` tenant allows loopback too (local development)
    assert HTTP_REQUEST.run(HttpParams(url=f"{server}/ok"), ctx(PolicyEngineResource(), "default"))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/ok",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/ok",
    ],
)
def test_redirects_are_checked_again(server: str, tmp_path: Path, target: str) -> None:
    """127.0.0.1 is allowed, the redirect's target is not."""
    allowed = ctx(
        policy_with_tenant(
            tmp_path, "lab", {"allowed_plugins": ["*"], "ssrf_allow": ["127.0.0.1/32"]}
        ),
        "lab",
    )
    location = target.format(port=_port(server))
    if location.startswith("http://localhost"):
        import socket

        if {i[4][0] for i in socket.getaddrinfo("localhost", 80)} <= {"127.0.0.1"}:
            pytest.skip("localhost resolves to 127.0.0.1 only here")
    with pytest.raises(SsrfRefusedError):
        HTTP_REQUEST.run(HttpParams(url=f"{server}/redirect?to={location}"), allowed)
    assert [f"/redirect?to={location}"] == HITS  # the first hop only


def test_the_connection_itself_is_checked() -> None:
    """Without the URL check (a DNS answer that changed since), the connect is refused."""
    import httpx

    with (
        httpx.Client(transport=_guarded_transport(AddressPolicy(allow=[]))) as client,
        pytest.raises(SsrfRefusedError, match=r"localhost -> .* \(loopback address\)"),
    ):
        client.get("http://localhost:9/")


def test_a_refusal_in_a_run_fails_the_step_once(
    server: str, tmp_path: Path, write_workflow: Callable[..., Path], instance: dg.DagsterInstance
) -> None:
    """Through a compiled job (the `policy` resource gives the tenant's list): the redirect to
    127.0.0.2 is refused with kind ssrf_blocked, and not retried."""
    tenant = {
        **json.loads((PROJECT_ROOT / "policies/data/tenants.json").read_text())["tenants"][
            "default"
        ],
        "ssrf_allow": ["127.0.0.1/32"],
    }
    policy = policy_with_tenant(tmp_path, "lab", tenant)
    target = f"http://127.0.0.2:{_port(server)}/ok"
    path = write_workflow(
        f"""
        name: ssrf
        tenant: lab
        steps:
          - id: fetch
            run: http.request
            retry: {{max_attempts: 3, backoff: 0s}}
            with: {{url: "{server}/redirect?to={target}"}}
        """
    )
    job = compile_file(path, resources={"policy": policy}).job
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data.user_failure_data
    assert data.metadata["error_kind"].value == "ssrf_blocked"
    assert "SSRF guard refused 127.0.0.2" in data.description
    assert [f"/redirect?to={target}"] == HITS  # one attempt
