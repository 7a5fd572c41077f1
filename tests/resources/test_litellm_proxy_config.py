"""A LiteLLM proxy config file as the model list: its `router_settings` reach the real Router
(fallbacks, retries, timeout, routing), every key Maestro does not apply is warned about by
name, and a bad value names the file."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.litellm_resource import LiteLLMConfigError, LiteLLMResource
from resources.plugins import RunInfo, StepContext
from resources.plugins.litellm_generate import LITELLM_GENERATE, LiteLLMParams
from tests.support.llm_servers import OpenAIServer, RecordingLog, server_error


@pytest.fixture
def primary() -> Iterator[OpenAIServer]:
    with OpenAIServer("a") as running:
        yield running


@pytest.fixture
def backup() -> Iterator[OpenAIServer]:
    with OpenAIServer("b") as running:
        yield running


def _config(tmp_path: Path, primary: OpenAIServer, backup: OpenAIServer, settings: str) -> Path:
    path = tmp_path / "proxy_config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            model_list:
              - model_name: primary
                litellm_params: {{model: openai/primary, api_base: {primary.api_base}, api_key: k}}
              - model_name: backup
                litellm_params: {{model: openai/backup, api_base: {backup.api_base}, api_key: k}}
            """
        )
        + textwrap.dedent(settings)
    )
    return path


SETTINGS = """
router_settings:
  routing_strategy: least-busy
  num_retries: 0
  timeout: 7
  allowed_fails: 5
  cooldown_time: 11
  fallbacks: [{primary: [backup]}]
  enable_pre_call_checks: true
  redis_host: localhost
litellm_settings:
  drop_params: true
general_settings:
  master_key: sk-not-used
"""


def _generate(res: LiteLLMResource, model: str) -> dict[str, object]:
    assert LITELLM_GENERATE.run is not None
    ctx = StepContext(
        step_id="ask",
        run=RunInfo("run-1", "wf", "default", "dev", ""),
        log=RecordingLog(),
        resources={"litellm": res},
    )
    return LITELLM_GENERATE.run(LiteLLMParams(model=model, prompt="hi"), ctx)


def test_router_settings_of_the_file_are_applied(
    tmp_path: Path,
    primary: OpenAIServer,
    backup: OpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = LiteLLMResource(
        model_list_file=str(_config(tmp_path, primary, backup, SETTINGS)),
        cache_dir=str(tmp_path / "c"),
    )
    with caplog.at_level(logging.WARNING, logger="maestro.litellm"):
        client = res.client()
    router = client.router
    assert (router.routing_strategy, router.num_retries, router.timeout) == ("least-busy", 0, 7)
    assert (router.allowed_fails, router.cooldown_time) == (5, 11)
    # The file's fallbacks work on the real Router: primary fails once, backup answers.
    primary.fail("primary", server_error())
    output = _generate(res, "primary")
    assert (output["model"], output["fallback_used"], output["text"]) == (
        "backup",
        True,
        "backup says: hi",
    )
    assert len(primary.requests) == 1  # num_retries: 0 from the file
    warned = [r.getMessage() for r in caplog.records]
    for key in (
        "router_settings.enable_pre_call_checks",
        "router_settings.redis_host",
        "litellm_settings",
        "general_settings",
    ):
        assert any(f": {key} is not applied" in line for line in warned), key
    assert res.describe()[-1] == (
        f"ignored from {res.model_list_file}: litellm_settings, general_settings, "
        "router_settings.enable_pre_call_checks, router_settings.redis_host"
    )


def test_fields_set_on_the_resource_win_over_the_file(
    tmp_path: Path, primary: OpenAIServer, backup: OpenAIServer
) -> None:
    res = LiteLLMResource(
        model_list_file=str(_config(tmp_path, primary, backup, SETTINGS)),
        num_retries=3,
        fallbacks={},
        cache_dir=str(tmp_path / "c"),
    )
    settings = res.router_settings()
    assert (settings["num_retries"], settings["fallbacks"], settings["timeout"]) == (3, {}, 7)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("router_settings: {num_retries: many}\n", "router_settings: .*num_retries"),
        ("router_settings: {fallbacks: [primary]}\n", r"router_settings.fallbacks: expected"),
        ("router_settings: {routing_strategy: magic}\n", "unknown routing_strategy 'magic'"),
        ("router_settings: [1]\n", "router_settings must be a mapping"),
    ],
)
def test_a_bad_router_setting_names_the_file(
    tmp_path: Path, primary: OpenAIServer, backup: OpenAIServer, settings: str, message: str
) -> None:
    config = _config(tmp_path, primary, backup, settings)
    res = LiteLLMResource(model_list_file=str(config), cache_dir=str(tmp_path / "c"))
    with pytest.raises(LiteLLMConfigError, match=message) as caught:
        res.client()
    assert "proxy_config.yaml" in str(caught.value) or "routing_strategy" in message
