"""Dagster glue: every step output goes through the content store (store.py).

`ArtifactsIOManager` is the code location's `io_manager`. It writes each output once by hash,
a pointer per run/step/output with provenance, output metadata (`sha256`, `size`, `uri`,
`dedup`, `serializer`), and an `AssetMaterialization` for each output a step declares.
Loads verify the hash and refuse pointers of another tenant.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from resources.artifacts.backends import (
    MULTIPART_THRESHOLD,
    PART,
    Backend,
    LocalBackend,
    S3Backend,
)
from resources.artifacts.store import (
    ArtifactError,
    ArtifactStore,
    Pointer,
    StoredContent,
    TenantAccessError,
    pointer_key,
)
from resources.observability import tracing
from resources.run_tags import DEFAULT_TENANT, TENANT_TAG, TRACEPARENT_TAG, WORKFLOW_TAG
from resources.sentinels import SENTINEL_KEY, is_skipped

ENV_LOCATION = "MAESTRO_ARTIFACTS"
ENV_S3_ENDPOINT = "MAESTRO_S3_ENDPOINT_URL"

NOT_LOADED = {SENTINEL_KEY: "not_loaded"}
"""What a gate input (`needs_<op>`) receives for an upstream that ran: its value is not read."""
INPUT_KIND = "maestro/input"
"""Input metadata: `gate` inputs only ask whether the upstream was skipped."""
DECLARED_OUTPUTS = "maestro/declared_outputs"
"""Output metadata: the step's declared outputs, [{name, asset_key}], materialised as assets."""


def default_location(environ: Mapping[str, str] = os.environ) -> str:
    """`MAESTRO_ARTIFACTS`, else `$DAGSTER_HOME/artifacts`, else `./.maestro/artifacts`."""
    configured = environ.get(ENV_LOCATION)
    if configured:
        return configured
    home = environ.get("DAGSTER_HOME")
    return str(Path(home) / "artifacts") if home else str(Path(".maestro") / "artifacts")


def split_s3_uri(location: str) -> tuple[str, str]:
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{location!r}: an S3 location is s3://bucket[/prefix]")
    return bucket, prefix.strip("/")


def open_backend(
    location: str,
    s3_endpoint_url: str | None = None,
    s3_region_name: str | None = None,
    fsync: bool = True,
    s3_multipart_threshold: int = MULTIPART_THRESHOLD,
    s3_part_size: int = PART,
    s3: Any = None,
) -> Backend:
    """`s3://bucket/prefix` through dagster-aws's S3Resource (`s3`, else one made from the
    endpoint and region), anything else a local folder."""
    if location.startswith("s3://"):
        if s3 is None:
            from dagster_aws.s3 import S3Resource  # boto3 only when S3 is used

            s3 = S3Resource(endpoint_url=s3_endpoint_url, region_name=s3_region_name)
        bucket, prefix = split_s3_uri(location)
        client = s3.get_client()
        return S3Backend(client, bucket, prefix, s3_multipart_threshold, s3_part_size)
    return LocalBackend(location, fsync=fsync)


def _meta_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _run_tags(context: dg.InputContext | dg.OutputContext) -> Mapping[str, str]:
    try:
        return context.step_context.dagster_run.tags
    except Exception:  # contexts built outside a run (build_output_context) have no run
        return {}


def _tenant(run_tags: Mapping[str, str]) -> str:
    return run_tags.get(TENANT_TAG, DEFAULT_TENANT)


def _op_tags(context: dg.OutputContext) -> Mapping[str, str]:
    try:
        return context.op_def.tags
    except Exception:
        return {}


def _run_id(context: dg.InputContext) -> str | None:
    try:
        return context.step_context.run_id
    except Exception:  # build_input_context: no run
        return None


def _consumer_step(context: dg.InputContext) -> str:
    try:
        return context.step_context.step.key
    except Exception:
        return ""


def _tenant_of_run(context: dg.InputContext, upstream: dg.OutputContext) -> str:
    """The tenant that owns an output of another run (a re-execution loads its parent's
    outputs): that run's `maestro/tenant` tag. Only asked when the run ids differ."""
    run = context.instance.get_run_by_id(upstream.run_id)
    if run is None:
        raise ArtifactError(
            f"input {context.name!r} comes from run {upstream.run_id}, which the Dagster "
            "instance no longer has: its owner (tenant) cannot be checked"
        )
    return _tenant(run.tags)


def _span_attributes(stored: StoredContent) -> dict[str, Any]:
    return {
        "maestro.artifact.sha256": stored.sha256,
        "maestro.artifact.size": stored.size,
        "maestro.artifact.dedup": stored.dedup,
    }


def _step_span(context: dg.InputContext) -> Any:
    """The loading step attempt's span (its id is derived: inputs load before it starts)."""
    try:
        step = context.step_context
        return tracing.step_parent_context(
            step.run_id,
            step.step.key,
            step.previous_attempt_count,
            step.dagster_run.tags.get(TRACEPARENT_TAG),
        )
    except Exception:  # build_input_context: no run
        return None


class ContentAddressedIOManager(dg.IOManager):
    """One per run process: remembers the hashes a step loaded, for its pointers' provenance."""

    def __init__(self, store: ArtifactStore):
        self.store = store
        self._loaded: dict[str, dict[str, str]] = {}  # consumer step key -> {input: sha256}
        self._owners: dict[str, str] = {}  # another run's id -> its tenant (one lookup each)

    # ------------------------------------------------------------ output

    def _write_pointer(
        self,
        stored: StoredContent,
        run_tags: Mapping[str, str],
        op_tags: Mapping[str, str],
        job: str,
        run_id: str,
        step_key: str,
        output: str,
        mapping_key: str | None = None,
        skipped: str | None = None,
    ) -> None:
        """Point `output` of this run's step at stored content, with its provenance."""
        tenant = _tenant(run_tags)
        pointer = Pointer(
            sha256=stored.sha256,
            size=stored.size,
            media_type=stored.media_type,
            serializer=stored.serializer,
            tenant=tenant,
            workflow=run_tags.get(WORKFLOW_TAG, op_tags.get(WORKFLOW_TAG, "")),
            job=job,
            run_id=run_id,
            step_id=op_tags.get("maestro/step_id", step_key),
            step_key=step_key,
            output=output,
            mapping_key=mapping_key,
            upstream=dict(self._loaded.get(step_key, {})),
            skipped=skipped,
            created_at=time.time(),
        )
        self.store.write_pointer(pointer_key(tenant, run_id, step_key, output), pointer)

    def _store(
        self, context: dg.OutputContext, value: Any, output: str, skipped: str | None = None
    ) -> StoredContent:
        run_tags = _run_tags(context)
        with tracing.child_span(f"store {output}", {"maestro.artifact.output": output}) as span:
            stored = self.store.store_value(_tenant(run_tags), value)
            tracing.set_attributes(span, _span_attributes(stored))
        self._write_pointer(
            stored,
            run_tags,
            _op_tags(context),
            context.job_name,
            context.run_id,
            context.step_key,
            output,
            context.mapping_key,
            skipped,
        )
        return stored

    @staticmethod
    def _output_name(name: str, mapping_key: str | None) -> str:
        return f"{name}/{mapping_key}" if mapping_key else name

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        skipped = obj.get("reason", "skipped") if is_skipped(obj) else None
        stored = self._store(
            context, obj, self._output_name(context.name, context.mapping_key), skipped
        )
        context.add_output_metadata(stored.metadata())
        tracing.annotate_current({f"maestro.step.{context.name}.sha256": stored.sha256})
        if skipped is not None:
            return
        declared = _meta_value(context.definition_metadata.get(DECLARED_OUTPUTS)) or []
        step_id = _op_tags(context).get("maestro/step_id", context.step_key)
        for item in declared:
            if item.get("file"):
                continue  # stored and materialised by the op (store_file_output)
            name = item["name"]
            value = obj[name] if isinstance(obj, dict) and name in obj else obj
            artifact = self._store(context, value, f"outputs/{name}")
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(item["asset_key"].split("/")),
                    description=f"output {name!r} of step {step_id!r}",
                    metadata={**artifact.metadata(), "run_id": context.run_id},
                )
            )

    def store_file_output(
        self,
        context: dg.OpExecutionContext,
        name: str,
        asset_key: str | None,
        path: Path,
        media_type: str | None = None,
        shown_path: str | None = None,
    ) -> dict[str, Any]:
        """Stream a file a step wrote into the store (raw bytes, never whole in memory), point
        `outputs/<name>` at it and materialise its asset (when it has one); the pointer info
        templates see. `media_type` defaults to a guess from the file name; `shown_path` is
        the path as events and the output show it (secrets in it redacted by the caller)."""
        run_tags, op_tags = context.run.tags, context.op_def.tags
        step_key = context.get_step_execution_context().step.key
        media_type = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        stored = self.store.store_file(_tenant(run_tags), path, media_type=media_type)
        self._write_pointer(
            stored, run_tags, op_tags, context.job_name, context.run_id, step_key, f"outputs/{name}"
        )
        step_id = op_tags.get("maestro/step_id", step_key)
        shown = str(path) if shown_path is None else shown_path
        metadata = {**stored.metadata(), "media_type": media_type, "path": shown}
        if asset_key is not None:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(asset_key.split("/")),
                    description=f"file output {name!r} of step {step_id!r}",
                    metadata={**metadata, "run_id": context.run_id},
                )
            )
        return {
            "sha256": stored.sha256,
            "size": stored.size,
            "uri": stored.uri,
            "media_type": media_type,
            "serializer": stored.serializer,
            "path": shown,
        }

    # ------------------------------------------------------------ input

    def _owner(self, context: dg.InputContext, upstream: dg.OutputContext) -> str:
        """The tenant of another run (a re-execution's parent), read once per run id."""
        owner = self._owners.get(upstream.run_id)
        if owner is None:
            owner = self._owners[upstream.run_id] = _tenant_of_run(context, upstream)
        return owner

    def load_input(self, context: dg.InputContext) -> Any:
        if not tracing.enabled():
            return self._load_input(context, None)
        with tracing.child_span(
            f"load {context.name}",
            {"maestro.artifact.input": context.name},
            parent=_step_span(context),
        ) as span:
            return self._load_input(context, span)

    def _load_input(self, context: dg.InputContext, span: Any) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise dg.DagsterInvariantViolationError(
                f"input {context.name!r} has no upstream output to load"
            )
        tenant = _tenant(_run_tags(context))
        output = self._output_name(upstream.name, upstream.mapping_key)
        run_id = _run_id(context)
        owner = tenant if upstream.run_id == run_id else self._owner(context, upstream)
        key = pointer_key(owner, upstream.run_id, upstream.step_key, output)
        try:
            pointer = self.store.read_pointer(tenant, key)
        except TenantAccessError as exc:
            raise TenantAccessError(
                f"run {run_id} of tenant {tenant!r} may not load output {output!r} of "
                f"step {upstream.step_key!r} from run {upstream.run_id} of tenant {owner!r} "
                f"(a re-execution keeps the original run's tenant): {exc}"
            ) from None
        consumer = _consumer_step(context)
        label = context.name  # a collected input loads once per item: name each one
        if upstream.mapping_key or "[" in upstream.step_key:
            label = f"{context.name}/{upstream.step_key}/{output}"
        self._loaded.setdefault(consumer, {})[label] = pointer.sha256
        tracing.set_attributes(
            span, {"maestro.artifact.sha256": pointer.sha256, "maestro.artifact.size": pointer.size}
        )
        gate = _meta_value(context.definition_metadata.get(INPUT_KIND)) == "gate"
        if gate and pointer.skipped is None:
            return dict(NOT_LOADED)  # the pointer says it ran: no need to read the value
        return self.store.load(pointer)


class ArtifactsIOManager(dg.ConfigurableIOManagerFactory):
    """Content-addressed storage for every step output: local folder or S3.

    `location`: a folder or `s3://bucket/prefix`; empty means `MAESTRO_ARTIFACTS`, else
    `$DAGSTER_HOME/artifacts`. S3 goes through dagster-aws's `S3Resource`, a resource
    dependency (`s3`; `resources.defaults` binds it), or one made from `s3_endpoint_url` and
    `s3_region_name` (credentials from the usual AWS environment).
    """

    location: str = Field(default="", description="Folder or s3://bucket/prefix.")
    s3: dg.ConfigurableResource | None = Field(
        default=None,
        description="dagster_aws.s3.S3Resource for s3:// locations (typed loosely so that a "
        "local-only code location does not import boto3).",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (SeaweedFS...).")
    s3_region_name: str | None = Field(default=None, description="S3 region.")
    fsync: bool = Field(
        default=True,
        description="Local backend: fsync each new object before publishing it (durable "
        "across power loss; a load still detects a torn object by its hash).",
    )

    s3_multipart_threshold: int = Field(
        default=MULTIPART_THRESHOLD,
        description="S3: objects larger than this many bytes are uploaded in parts.",
    )
    s3_part_size: int = Field(
        default=PART, ge=5 * 1024 * 1024, description="S3: multipart part size in bytes."
    )

    def open_store(self) -> ArtifactStore:
        location = self.location or default_location()
        endpoint = self.s3_endpoint_url or os.environ.get(ENV_S3_ENDPOINT) or None
        backend = open_backend(
            location,
            endpoint,
            self.s3_region_name,
            self.fsync,
            self.s3_multipart_threshold,
            self.s3_part_size,
            self.s3,
        )
        return ArtifactStore(backend)

    def create_io_manager(self, context: dg.InitResourceContext) -> ContentAddressedIOManager:
        return ContentAddressedIOManager(self.open_store())
