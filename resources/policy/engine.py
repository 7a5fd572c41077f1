"""Policy engines: one interface, two ways to evaluate Maestro's Rego policies.

`EmbeddedPolicyEngine` runs them in process with regopy (rego-cpp), compiled once into a bundle
and queried per decision; `OpaServerPolicyEngine` asks an OPA server over its Data API. Both
fail closed: an engine that errors or times out answers deny, "policy engine unavailable: ...".
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY_DIR = PROJECT_ROOT / "policies"
DEFAULT_OPA_TIMEOUT_S = 2.0

DecisionKind = Literal["workflow", "step"]
PACKAGES: dict[str, str] = {"workflow": "maestro.workflow", "step": "maestro.step"}
"""Rego package per decision kind; each defines a `decision` rule."""


@dataclass(frozen=True)
class Decision:
    """What a policy said: allow, and when not, why (each reason names its rule)."""

    kind: DecisionKind
    allow: bool
    reasons: tuple[str, ...]
    policy_version: str
    retry_later: bool = False  # only the tenant's concurrency limit stands in the way
    input_digest: str = ""
    decision_id: str | None = None  # set once it is recorded in the audit table


def input_digest(payload: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a decision input (kept in the audit, not the input)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def decision_from_result(
    kind: DecisionKind, result: Any, digest: str, fallback_version: str
) -> Decision:
    """Read a `decision` document; anything malformed is a deny, never an allow."""
    if not isinstance(result, Mapping) or not isinstance(result.get("allow"), bool):
        return unavailable(kind, f"malformed decision {result!r}", fallback_version, digest)
    reasons = tuple(sorted(str(r) for r in result.get("deny") or ()))
    allow = result["allow"] and not reasons
    if not allow and not reasons:
        reasons = ("policy: denied without a reason (allow is false)",)
    return Decision(
        kind=kind,
        allow=allow,
        reasons=reasons,
        policy_version=str(result.get("policy_version") or fallback_version),
        retry_later=bool(result.get("retry_later")) and not allow,
        input_digest=digest,
    )


def unavailable(kind: DecisionKind, why: str, version: str, digest: str = "") -> Decision:
    return Decision(
        kind=kind,
        allow=False,
        reasons=(f"policy engine unavailable: {why}",),
        policy_version=version,
        retry_later=True,  # the gate keeps the request; a step or run still fails (closed)
        input_digest=digest,
    )


# ---------------------------------------------------------------- the policy files


@dataclass(frozen=True)
class PolicySet:
    """The Rego modules and data documents of a policy folder, with their version."""

    directory: Path
    modules: Mapping[str, str]  # path relative to the folder -> Rego text
    data: Mapping[str, Any]  # merged JSON data documents, plus maestro_meta.policy_version
    version: str = field(default="")

    @classmethod
    def load(cls, directory: Path | str | None = None) -> PolicySet:
        """Every *.rego (modules) and data/*.json (merged at the root of `data`); the shipped
        `policies/` folder unless another is given."""
        root = Path(directory or DEFAULT_POLICY_DIR)
        if not root.is_dir():
            raise FileNotFoundError(f"policy folder {root} does not exist")
        modules = {
            str(p.relative_to(root)): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*.rego"))
            if not p.name.endswith("_test.rego")
        }
        data: dict[str, Any] = {}
        for path in sorted((root / "data").glob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                ) from None
            if not isinstance(document, dict):
                raise ValueError(f"{path}:1:1: a data document must be a JSON object")
            data.update(document)
        digest = hashlib.sha256()
        for name, text in sorted(modules.items()):
            digest.update(f"{name}\0{text}\0".encode())
        digest.update(json.dumps(data, sort_keys=True).encode())
        version = digest.hexdigest()[:16]
        data["maestro_meta"] = {"policy_version": version}
        return cls(directory=root, modules=modules, data=data, version=version)

    @property
    def tenants(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data.get("tenants", {})


# ---------------------------------------------------------------- engines


class PolicyEngine:
    """Evaluates `maestro.<kind>.decision` for an input; never raises, denies on failure."""

    name = "abstract"
    policy_version = "unknown"

    def decide(self, kind: DecisionKind, payload: Mapping[str, Any]) -> Decision:
        raise NotImplementedError


class EmbeddedPolicyEngine(PolicyEngine):
    """regopy in process: the policies are compiled once into a bundle, queried per decision."""

    name = "embedded"

    def __init__(self, policies: PolicySet | None = None):
        self.policies = policies or PolicySet.load()
        self.policy_version = self.policies.version
        self._lock = threading.Lock()
        self._interpreter: Any = None
        self._bundle: Any = None
        self._error: str | None = None
        try:
            self._build()
        except Exception as exc:  # a policy that does not compile: every decision denies
            self._error = f"{type(exc).__name__}: {exc}"

    def _build(self) -> None:
        import regopy  # 0.06 s; only when an embedded engine is made

        builder = regopy.Interpreter()
        builder.add_data(dict(self.policies.data))
        for name, text in self.policies.modules.items():
            builder.add_module(name, text)
        entrypoints = [f"{pkg.replace('.', '/')}/decision" for pkg in PACKAGES.values()]
        bundle = builder.build(None, entrypoints)
        if not bundle.ok():
            raise ValueError(f"the policies in {self.policies.directory} do not compile")
        self._builder, self._bundle = builder, bundle  # the bundle's owner must outlive it
        self._interpreter = regopy.Interpreter()

    def decide(self, kind: DecisionKind, payload: Mapping[str, Any]) -> Decision:
        digest = input_digest(payload)
        if self._error is not None:
            return unavailable(kind, self._error, self.policy_version, digest)
        try:
            entrypoint = _ENTRYPOINTS[kind]
            with self._lock:
                set_input(self._interpreter, payload)
                text = query_entrypoint(self._interpreter, self._bundle, entrypoint)
            result = decision_document(text)
        except Exception as exc:
            return unavailable(kind, f"{type(exc).__name__}: {exc}", self.policy_version, digest)
        return decision_from_result(kind, result, digest, self.policy_version)


_ENTRYPOINTS: dict[str, str] = {
    kind: f"{pkg.replace('.', '/')}/decision" for kind, pkg in PACKAGES.items()
}


# ---------------------------------------------------------------- regopy, the fast way
#
# regopy 1.5.2 (pinned) builds an input through `rego_input_from_value`: per value an ABC
# isinstance chain and a ctypes string buffer, ~0.10-0.16 ms for a step input; and its `Output`
# reads the result string twice. Those two were a third of a decision. These helpers make the
# same C calls (librego's input builder and bundle query) with a type dispatch and one read.


def set_input(interpreter: Any, payload: Mapping[str, Any]) -> None:
    """interpreter.set_input(payload), built with the same librego calls as regopy's."""
    from regopy import rego_shared

    lib = rego_shared.rego
    handle = lib.regoNewInput()
    codes = 0

    def add(value: Any) -> None:
        nonlocal codes
        kind = type(value)
        if kind is str:
            codes |= lib.regoInputString(handle, value.encode())
        elif kind is dict or isinstance(value, Mapping):
            for key, item in value.items():
                add(key)
                add(item)
                codes |= lib.regoInputObjectItem(handle)
            codes |= lib.regoInputObject(handle, len(value))
        elif kind is list or kind is tuple or isinstance(value, Sequence):
            for item in value:
                add(item)
            codes |= lib.regoInputArray(handle, len(value))
        elif kind is bool:
            codes |= lib.regoInputBoolean(handle, value)
        elif kind is int:
            codes |= lib.regoInputInt(handle, value)
        elif kind is float:
            codes |= lib.regoInputFloat(handle, value)
        elif value is None:
            codes |= lib.regoInputNull(handle)
        elif isinstance(value, (set, frozenset)):
            for item in value:
                add(item)
            codes |= lib.regoInputSet(handle, len(value))
        else:  # what regopy itself would refuse
            raise ValueError(f"cannot convert {kind.__name__} to a Rego input")

    try:
        add(payload)
        if codes != rego_shared.Code.OK:
            raise ValueError("librego could not build the input")
        rego_shared.rego_set_input(interpreter._impl, handle)
    finally:
        lib.regoFreeInput(handle)  # regoSetInput copied it


def query_entrypoint(interpreter: Any, bundle: Any, entrypoint: str) -> str:
    """The JSON text of a bundle entrypoint's result (raises on a Rego error)."""
    from regopy import rego_shared

    output = rego_shared.rego_bundle_query_entrypoint(interpreter._impl, bundle._impl, entrypoint)
    try:
        text = rego_shared.rego_output_string(output)
        if not rego_shared.rego_output_ok(output):
            raise ValueError(text)
        return text
    finally:
        rego_shared.rego_free_output(output)


def decision_document(text: str) -> Any:
    """The document of a one-expression result: `{"expressions": [doc]}`; None if undefined."""
    if text == "undefined":
        return None
    parsed = json.loads(text)
    results = parsed if isinstance(parsed, list) else [parsed]
    expressions = results[0].get("expressions") if results else None
    return expressions[0] if expressions else None


class OpaServerPolicyEngine(PolicyEngine):
    """An OPA server (or sidecar) over its Data API: POST /v1/data/maestro/<kind>/decision."""

    name = "opa"

    def __init__(
        self, url: str, timeout_s: float = DEFAULT_OPA_TIMEOUT_S, token: str | None = None
    ):
        from opa_client import OpaClient

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"MAESTRO_OPA_URL must be http(s)://host:port, got {url!r}")
        self.url = url
        self.policy_version = "server"
        self._client = OpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            token=token,
            retries=0,  # fail closed fast: a retry loop would hold every step
            timeout=timeout_s,
        )

    def decide(self, kind: DecisionKind, payload: Mapping[str, Any]) -> Decision:
        digest = input_digest(payload)
        try:
            response = self._client.query_rule(dict(payload), PACKAGES[kind], "decision")
        except Exception as exc:
            return unavailable(kind, f"{self.url}: {type(exc).__name__}: {exc}", "server", digest)
        if "result" not in response:
            return unavailable(kind, f"{self.url}: no decision (is the policy loaded?)", "server")
        return decision_from_result(kind, response["result"], digest, "server")

    def push(self, policies: PolicySet) -> list[str]:
        """Upload every module and the data documents; returns what was written."""
        written = []
        for name, text in policies.modules.items():
            policy_id = name.removesuffix(".rego").replace(os.sep, "/")
            self._client.update_policy_from_string(text, policy_id)
            written.append(f"policy {policy_id}")
        for key, value in policies.data.items():
            self._client.update_or_create_data(value, key)
            written.append(f"data {key}")
        return written


# ---------------------------------------------------------------- the process's engine

_ENGINES: dict[tuple[str, str, float, str], PolicyEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(
    opa_url: str | None = None,
    policy_dir: str | None = None,
    timeout_s: float | None = None,
    token: str | None = None,
) -> PolicyEngine:
    """One engine per configuration per process: the policies compile once, not per step."""
    timeout = timeout_s if timeout_s is not None else DEFAULT_OPA_TIMEOUT_S
    key = (opa_url or "", policy_dir or "", timeout, token or "")
    engine = _ENGINES.get(key)
    if engine is None:
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                if opa_url:
                    engine = OpaServerPolicyEngine(opa_url, timeout, token)
                else:
                    engine = EmbeddedPolicyEngine(PolicySet.load(policy_dir))
                _ENGINES[key] = engine
    return engine


@functools.cache
def policy_files(directory: str | None = None) -> PolicySet:
    """The local policy files, read once per process (tenant budget periods come from them,
    also when an OPA server decides)."""
    return PolicySet.load(directory)


class PolicyEngineResource(dg.ConfigurableResource):
    """The policy engine every step checks with, and the gate sensor admits requests with.

    Leave `opa_url` empty for the embedded engine over the Rego files in `policy_dir` (the
    shipped `policies/` when empty); set it to ask an OPA server (its bearer token in
    `opa_token`, bound with `dg.EnvVar`). `resources.defaults.default_resources` builds it
    from MAESTRO_OPA_URL, MAESTRO_OPA_TOKEN, MAESTRO_POLICY_DIR and MAESTRO_OPA_TIMEOUT_S.
    """

    opa_url: str | None = None
    opa_token: str | None = None
    policy_dir: str | None = None
    timeout_s: float = DEFAULT_OPA_TIMEOUT_S

    def engine(self) -> PolicyEngine:
        return engine_for(self.opa_url or None, self.policy_dir, self.timeout_s, self.opa_token)

    def policy_set(self) -> PolicySet:
        return policy_files(self.policy_dir or None)

    def tenant_settings(self, tenant: str) -> Mapping[str, Any]:
        """The tenant's entry in the policy data (budget period, limits); {} when unreadable."""
        try:
            return self.policy_set().tenants.get(tenant, {})
        except (OSError, ValueError):
            return {}
