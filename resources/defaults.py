"""The resources every Maestro job runs with, built from the environment in one place.

The code location (`maestro_defs`) and `maestro run` both call `default_resources`, so a step
finds the same policy engine, artifact store and LLM clients however its run was launched.
Secrets are bound with `dg.EnvVar`: read when the resource starts, never stored in the
definitions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.artifacts.io_manager import ENV_S3_ENDPOINT, ArtifactsIOManager, default_location
from resources.litellm_resource import LiteLLMResource
from resources.ollama_resource import OllamaResource
from resources.policy.engine import DEFAULT_OPA_TIMEOUT_S, PolicyEngineResource
from resources.scraper_resource import ScraperResource

OPA_URL_ENV = "MAESTRO_OPA_URL"
OPA_TOKEN_ENV = "MAESTRO_OPA_TOKEN"
OPA_TIMEOUT_ENV = "MAESTRO_OPA_TIMEOUT_S"
POLICY_DIR_ENV = "MAESTRO_POLICY_DIR"


def policy_resource(environ: Mapping[str, str] = os.environ) -> PolicyEngineResource:
    """Embedded Rego by default (MAESTRO_POLICY_DIR, else `policies/`); the OPA server at
    MAESTRO_OPA_URL when it is set, with MAESTRO_OPA_TOKEN as its bearer token."""
    token: Any = dg.EnvVar(OPA_TOKEN_ENV) if environ.get(OPA_TOKEN_ENV) else None
    return PolicyEngineResource(
        opa_url=environ.get(OPA_URL_ENV) or None,
        opa_token=token,
        policy_dir=environ.get(POLICY_DIR_ENV) or None,
        timeout_s=float(environ.get(OPA_TIMEOUT_ENV) or DEFAULT_OPA_TIMEOUT_S),
    )


def artifacts_io_manager(environ: Mapping[str, str] = os.environ) -> ArtifactsIOManager:
    """MAESTRO_ARTIFACTS (a folder or s3://bucket/prefix), else $DAGSTER_HOME/artifacts; on S3
    through dagster-aws's S3Resource (imported only then: boto3 costs ~0.6 s)."""
    location = default_location(environ)
    if not location.startswith("s3://"):
        return ArtifactsIOManager(location=location)
    from dagster_aws.s3 import S3Resource

    endpoint = environ.get(ENV_S3_ENDPOINT) or None
    return ArtifactsIOManager(location=location, s3=S3Resource(endpoint_url=endpoint))


def step_resources(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`litellm` from MAESTRO_LITELLM_CONFIG, `ollama` from OLLAMA_HOST (and friends),
    `scraper` from MAESTRO_SCRAPER_* (its proxies bound as a secret)."""
    return {
        "litellm": LiteLLMResource.from_env(environ),
        "ollama": OllamaResource.from_env(environ),
        "scraper": ScraperResource.from_env(environ),
    }


def default_resources(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`io_manager` (artifacts), `policy`, and the step resources (LLM clients, scraper)."""
    return {
        "io_manager": artifacts_io_manager(environ),
        "policy": policy_resource(environ),
        **step_resources(environ),
    }
