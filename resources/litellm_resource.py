"""`LiteLLMResource`: the LiteLLM Router the `litellm.generate` steps call, configured in Dagster.

The model list comes from a YAML/JSON file (LiteLLM's own `model_list` format, or a list of
deployments) and/or inline config. API keys never sit in the config: a deployment says
`api_key: os.environ/OPENAI_API_KEY` (LiteLLM's convention) or inherits the resource's
`api_key` (set with `dg.EnvVar`). Every key value is collected so the step can redact it.

litellm itself is imported only when a step first needs the router (`client()`): importing
it costs seconds and ~200 MB, which the code location must not pay.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import Field

from resources.response_cache import DiskResponseCache, RedisResponseCache, ResponseCache

ENV_PREFIX = "os.environ/"
CONFIG_ENV = "MAESTRO_LITELLM_CONFIG"
ROUTING_STRATEGIES = {
    "simple-shuffle": "simple-shuffle",
    "least-busy": "least-busy",
    "latency-based": "latency-based-routing",
    "latency-based-routing": "latency-based-routing",
    "cost-based": "cost-based-routing",
    "cost-based-routing": "cost-based-routing",
    "usage-based": "usage-based-routing-v2",
    "usage-based-routing": "usage-based-routing",
    "usage-based-routing-v2": "usage-based-routing-v2",
}
PROVIDER_KEY_SUFFIXES = ("_API_KEY", "_API_TOKEN", "_SECRET_ACCESS_KEY")
DEFAULT_OUTPUT_TOKENS = 4096  # a budget estimate's output size when the step sets no max_tokens


ROUTER_SETTINGS = (
    "routing_strategy",
    "num_retries",
    "retry_after",
    "timeout",
    "fallbacks",
    "context_window_fallbacks",
    "allowed_fails",
    "cooldown_time",
)
"""`router_settings` keys of a LiteLLM proxy config that map onto the resource's fields."""
_LOG = logging.getLogger("maestro.litellm")


class LiteLLMConfigError(ValueError):
    """The model list or router settings are unusable: names the file and the deployment."""


def import_litellm() -> Any:
    """litellm, imported on first use, never fetching its price list from the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    return litellm


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Beside the Dagster instance when there is one, else the user's cache folder."""
    home = environ.get("DAGSTER_HOME")
    if home:
        return Path(home) / "maestro-llm-cache"
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maestro" / "llm"


def load_model_list(path: str | Path) -> list[dict[str, Any]]:
    """Deployments from a YAML/JSON file: a list, or a mapping with `model_list`.

    Every LLM step asks for the client up to three times (cost estimate, model check, call):
    the parsed file is kept while it is unchanged, and handed out as a copy."""
    file = Path(path).expanduser()
    try:
        stat = file.stat()
        parsed = _parsed_model_list(file, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError as exc:
        raise LiteLLMConfigError(f"{file}: cannot read the LiteLLM model list: {exc}") from exc
    return copy.deepcopy(parsed)


@functools.lru_cache(maxsize=16)
def _parsed_model_list(file: Path, *version: int) -> list[dict[str, Any]]:
    """`version`: (mtime, size, inode), so an edited or replaced file is read again."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LiteLLMConfigError(f"{file}: invalid YAML/JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("model_list")
    if not isinstance(data, list):
        raise LiteLLMConfigError(f"{file}: expected a list of deployments or a `model_list` key")
    return [_checked_deployment(item, f"{file}: model_list[{i}]") for i, item in enumerate(data)]


@dataclass(frozen=True)
class FileSettings:
    """What a LiteLLM proxy config file says beyond its model list: the `router_settings`
    that map onto the resource (ROUTER_SETTINGS), and every key that is ignored."""

    router: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def load_file_settings(path: str | Path) -> FileSettings:
    file = Path(path).expanduser()
    try:
        stat = file.stat()
        return _parsed_file_settings(file, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError as exc:
        raise LiteLLMConfigError(f"{file}: cannot read the LiteLLM model list: {exc}") from exc


@functools.lru_cache(maxsize=16)
def _parsed_file_settings(file: Path, *version: int) -> FileSettings:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LiteLLMConfigError(f"{file}: invalid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        return FileSettings()
    ignored = [str(key) for key in data if key not in ("model_list", "router_settings")]
    raw = data.get("router_settings") or {}
    if not isinstance(raw, dict):
        raise LiteLLMConfigError(f"{file}: router_settings must be a mapping")
    router: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in ROUTER_SETTINGS:
            ignored.append(f"router_settings.{key}")
        elif key in ("fallbacks", "context_window_fallbacks"):
            router[key] = _fallbacks(value, f"{file}: router_settings.{key}")
        else:
            router[key] = value
    return FileSettings(router, tuple(ignored))


def _fallbacks(value: Any, where: str) -> dict[str, list[str]]:
    """LiteLLM's `[{group: [models]}]` (or a mapping) as {group: [models]}."""
    items = [value] if isinstance(value, dict) else value
    found: dict[str, list[str]] = {}
    if not isinstance(items, list):
        raise LiteLLMConfigError(f"{where}: expected a list of {{group: [models]}}")
    for item in items:
        if not isinstance(item, dict):
            raise LiteLLMConfigError(f"{where}: expected a list of {{group: [models]}}")
        for group, models in item.items():
            if isinstance(models, str):
                models = [models]
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                raise LiteLLMConfigError(f"{where}.{group}: expected a list of model groups")
            found.setdefault(str(group), []).extend(models)
    return found


def _checked_deployment(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("model_name"), str):
        raise LiteLLMConfigError(f"{where}: a deployment needs a `model_name`")
    params = item.get("litellm_params")
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        raise LiteLLMConfigError(
            f"{where} ({item['model_name']}): `litellm_params.model` is required, e.g. "
            "openai/gpt-4o-mini"
        )
    return item


@dataclass(frozen=True)
class Price:
    """USD per token; `known` is False when neither the config nor LiteLLM's map prices it."""

    input: float = 0.0
    output: float = 0.0
    known: bool = False
    max_output_tokens: int | None = None


@dataclass
class LiteLLMClient:
    """A built Router plus what the plugin needs around it: prices, secrets, groups."""

    router: Any
    litellm: Any
    deployments: list[dict[str, Any]]
    secrets: tuple[str, ...]
    group_fallbacks: dict[str, list[str]]
    cache_dir: Path
    cache_ttl_seconds: int | None
    redis_url: str | None = None
    window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    """The Router's `context_window_fallbacks`, per group."""
    _prices: dict[str, Price] = field(default_factory=dict)

    def response_cache(self) -> ResponseCache:
        """Redis when the resource names one, else the local disk."""
        if self.redis_url:
            return RedisResponseCache(self.redis_url, self.cache_ttl_seconds)
        return DiskResponseCache(self.cache_dir, self.cache_ttl_seconds)

    @property
    def groups(self) -> set[str]:
        return {d["model_name"] for d in self.deployments}

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def deployments_of(self, model: str) -> list[dict[str, Any]]:
        """The deployments of a router group; a model the router does not know stands alone."""
        found = [d for d in self.deployments if d["model_name"] == model]
        return found or [{"model_name": model, "litellm_params": {"model": model}}]

    def price_of(self, deployment: Mapping[str, Any]) -> Price:
        """Configured prices (`input_cost_per_token`...) first, then LiteLLM's local cost map."""
        params = deployment.get("litellm_params") or {}
        key = json.dumps(params.get("model")) + json.dumps(deployment.get("model_info") or {})
        key += json.dumps(
            {k: params.get(k) for k in ("input_cost_per_token", "output_cost_per_token")}
        )
        if key in self._prices:
            return self._prices[key]
        price = self._lookup_price(params, deployment.get("model_info") or {})
        self._prices[key] = price
        return price

    def _lookup_price(self, params: Mapping[str, Any], info: Mapping[str, Any]) -> Price:
        for source in (params, info):
            if "input_cost_per_token" in source or "output_cost_per_token" in source:
                return Price(
                    float(source.get("input_cost_per_token") or 0.0),
                    float(source.get("output_cost_per_token") or 0.0),
                    True,
                    info.get("max_output_tokens") or source.get("max_output_tokens"),
                )
        model = str(params.get("model"))
        for name in (model, model.split("/", 1)[-1]):
            try:
                known = self.litellm.get_model_info(name)
            except Exception:  # litellm raises a plain Exception for unknown models
                continue
            cost_in = known.get("input_cost_per_token")
            cost_out = known.get("output_cost_per_token")
            if not cost_in and not cost_out:  # unknown models come back with zeros
                continue
            return Price(
                float(cost_in or 0.0),
                float(cost_out or 0.0),
                True,
                known.get("max_output_tokens"),
            )
        return Price()

    def price_for_model(self, model: str) -> Price:
        """The highest price among a group's deployments: an upper bound for budgets."""
        prices = [self.price_of(d) for d in self.deployments_of(model)]
        return Price(
            max(p.input for p in prices),
            max(p.output for p in prices),
            any(p.known for p in prices),
            min((p.max_output_tokens for p in prices if p.max_output_tokens), default=None),
        )

    def reachable_models(self, model: str, step_fallbacks: Sequence[str] = ()) -> list[str]:
        """Every model a call may end up on, for the policy's model check: `model`, the step's
        fallbacks, and for router groups the Router's `fallbacks` (the group's and "*") and
        `context_window_fallbacks`, followed from group to group (the Router chains them)."""
        found = list(dict.fromkeys([model, *step_fallbacks]))
        groups = self.groups
        queue = [m for m in found if m in groups]
        while queue:
            group = queue.pop(0)
            for nxt in (
                *self.group_fallbacks.get(group, ()),
                *self.group_fallbacks.get("*", ()),
                *self.window_fallbacks.get(group, ()),
            ):
                if nxt not in found:
                    found.append(nxt)
                    if nxt in groups:
                        queue.append(nxt)
        return found

    def fallbacks_of(self, model: str, step_fallbacks: list[str]) -> list[str]:
        """Models that may answer instead of `model`: the step's list, then the resource's."""
        chain = [*step_fallbacks, *self.group_fallbacks.get(model, [])]
        return list(dict.fromkeys(m for m in chain if m != model))


_CLIENTS: dict[str, LiteLLMClient] = {}
_CLIENTS_LOCK = threading.Lock()


class LiteLLMResource(dg.ConfigurableResource):
    """LiteLLM Router settings for `litellm.generate` steps.

    `model_list_file` (YAML/JSON, LiteLLM's `model_list` format) and `model_list` (inline) are
    combined. Prices per deployment go in `litellm_params` (`input_cost_per_token`,
    `output_cost_per_token`); otherwise LiteLLM's bundled cost map prices known models.
    """

    model_list_file: str | None = Field(
        default=None, description="YAML/JSON file with the deployments (LiteLLM model_list)."
    )
    model_list: list[dict[str, Any]] = Field(
        default_factory=list, description="Deployments given inline, added to the file's."
    )
    api_key: str | None = Field(
        default=None,
        description="Key for deployments that set none; give it with dg.EnvVar, never inline.",
    )
    routing_strategy: str = Field(
        default="simple-shuffle",
        description="simple-shuffle, least-busy, latency-based, cost-based or usage-based.",
    )
    num_retries: int = Field(
        default=2, description="Retries per deployment group before fallbacks."
    )
    retry_after: int = Field(default=0, description="Minimum seconds to wait before a retry.")
    timeout: float = Field(default=600.0, description="Seconds per request when a step sets none.")
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict, description="Model group -> groups tried when it fails."
    )
    context_window_fallbacks: dict[str, list[str]] = Field(
        default_factory=dict, description="Model group -> larger-context groups."
    )
    allowed_fails: int = Field(default=3, description="Failures before a deployment cools down.")
    cooldown_time: float = Field(default=60.0, description="Seconds a failing deployment rests.")
    cache_dir: str | None = Field(
        default=None,
        description="Response cache folder (steps with `cache: true`); default beside "
        "DAGSTER_HOME, else ~/.cache/maestro/llm.",
    )
    cache_ttl_seconds: int | None = Field(
        default=None, description="How long a cached response stays valid; None: forever."
    )
    cache_redis_url: str | None = Field(
        default=None,
        description="Cache in Redis instead of on disk (redis://...; give it with dg.EnvVar "
        "when it holds a password). Needs the `redis` extra.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LiteLLMResource:
        """The code location's default: the model list named by MAESTRO_LITELLM_CONFIG."""
        return cls(model_list_file=environ.get(CONFIG_ENV) or None)

    def all_deployments(self) -> list[dict[str, Any]]:
        deployments = load_model_list(self.model_list_file) if self.model_list_file else []
        for index, item in enumerate(self.model_list):
            deployments.append(_checked_deployment(item, f"model_list[{index}]"))
        return deployments

    def _resolved(
        self, deployments: list[dict[str, Any]], environ: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """Deployments with `os.environ/NAME` keys read, and every secret value seen."""
        secrets: set[str] = set()
        resolved = []
        for deployment in deployments:
            params = dict(deployment["litellm_params"])
            for key, value in list(params.items()):
                if isinstance(value, str) and value.startswith(ENV_PREFIX):
                    name = value.removeprefix(ENV_PREFIX)
                    if name not in environ:
                        raise LiteLLMConfigError(
                            f"deployment {deployment['model_name']!r}: litellm_params.{key} reads "
                            f"the environment variable {name}, which is not set"
                        )
                    params[key] = environ[name]
                    secrets.add(environ[name])
            if "api_key" not in params and self.api_key:
                params["api_key"] = self.api_key
            if params.get("api_key"):
                secrets.add(str(params["api_key"]))
            resolved.append({**deployment, "litellm_params": params})
        for secret in (self.api_key, self.cache_redis_url):
            if secret:
                secrets.add(secret)
        # Keys LiteLLM reads from the environment by itself (OPENAI_API_KEY, ...).
        secrets |= {v for k, v in environ.items() if k.endswith(PROVIDER_KEY_SUFFIXES) and v}
        return resolved, tuple(sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True))

    def file_settings(self) -> FileSettings:
        return load_file_settings(self.model_list_file) if self.model_list_file else FileSettings()

    def router_settings(self) -> dict[str, Any]:
        """The Router's settings: a field set on the resource, else the config file's
        `router_settings` value, else the resource's default. Checked like the fields."""
        from_file = self.file_settings().router
        settings: dict[str, Any] = {}
        for key in ROUTER_SETTINGS:
            value = getattr(self, key)
            if key not in self.model_fields_set and key in from_file:
                value = from_file[key]
            settings[key] = value
        try:  # the file's values go through the same field checks as the resource's
            checked = type(self).model_validate(
                {**settings, "model_list_file": None, "model_list": []}
            )
        except Exception as exc:
            raise LiteLLMConfigError(
                f"{self.model_list_file}: router_settings: {exc}".replace("\n", " ")
            ) from exc
        return {key: getattr(checked, key) for key in ROUTER_SETTINGS}

    def ignored_settings(self) -> tuple[str, ...]:
        """Keys of the config file that Maestro does not apply (warned about, in doctor too)."""
        return self.file_settings().ignored

    def routing(self, strategy_name: str | None = None) -> str:
        name = strategy_name or self.router_settings()["routing_strategy"]
        strategy = ROUTING_STRATEGIES.get(name)
        if strategy is None:
            raise LiteLLMConfigError(
                f"unknown routing_strategy {name!r}; use one of "
                f"{', '.join(sorted(ROUTING_STRATEGIES))}"
            )
        return strategy

    def client(self, environ: Mapping[str, str] = os.environ) -> LiteLLMClient:
        """The Router for this configuration, built once per process and reused by every step
        (its cooldowns and latency stats only help when they outlive a call)."""
        deployments, secrets = self._resolved(self.all_deployments(), environ)
        settings = self.model_dump(exclude={"model_list", "api_key", "cache_redis_url"})
        settings["router"] = self.router_settings()
        settings["secrets"] = hashlib.sha256("\0".join(secrets).encode()).hexdigest()
        digest = hashlib.sha256(
            json.dumps([deployments, settings], sort_keys=True, default=str).encode()
        ).hexdigest()
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(digest)
            if client is None:
                client = self._build(deployments, secrets)
                _CLIENTS[digest] = client
        return client

    def _build(self, deployments: list[dict[str, Any]], secrets: tuple[str, ...]) -> LiteLLMClient:
        litellm = import_litellm()
        settings = self.router_settings()
        for key in self.ignored_settings():
            _LOG.warning(f"{self.model_list_file}: {key} is not applied by Maestro (ignored)")
        fallbacks: dict[str, list[str]] = settings["fallbacks"]
        window_fallbacks: dict[str, list[str]] = settings["context_window_fallbacks"]
        router = litellm.Router(
            model_list=deployments or None,
            routing_strategy=self.routing(settings["routing_strategy"]),
            num_retries=settings["num_retries"],
            retry_after=settings["retry_after"],
            timeout=settings["timeout"],
            fallbacks=[{group: models} for group, models in fallbacks.items()],
            context_window_fallbacks=[
                {group: models} for group, models in window_fallbacks.items()
            ],
            allowed_fails=settings["allowed_fails"],
            cooldown_time=settings["cooldown_time"],
        )
        return LiteLLMClient(
            router=router,
            litellm=litellm,
            deployments=deployments,
            secrets=secrets,
            group_fallbacks=dict(fallbacks),
            window_fallbacks=dict(window_fallbacks),
            cache_dir=Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir(),
            cache_ttl_seconds=self.cache_ttl_seconds,
            redis_url=self.cache_redis_url,
        )

    def describe(self) -> list[str]:
        """One line per deployment, keys hidden: for `maestro doctor`. No network."""
        settings = self.router_settings()
        lines = [f"routing: {self.routing()}, retries {settings['num_retries']}"]
        for deployment in self.all_deployments():
            params = deployment["litellm_params"]
            where = params.get("api_base") or "provider default endpoint"
            lines.append(f"{deployment['model_name']}: {params['model']} at {where}")
        ignored = self.ignored_settings()
        if ignored:
            lines.append(f"ignored from {self.model_list_file}: {', '.join(ignored)}")
        return lines
