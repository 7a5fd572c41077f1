"""The content store: values in, SHA-256-named objects and small pointers out.

Layout (under the backend's root, one prefix per tenant):

    tenants/<tenant>/cas/sha256/<first two hex>/<hash>          the bytes, stored once
    tenants/<tenant>/runs/<run_id>/<step_key>/<output>.json     a pointer per output

Every read checks the hash; a mismatch raises ArtifactCorruptedError naming the key and both
hashes. Plain Python: the Dagster IO manager (io_manager.py) and the CLI both sit on top.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resources.artifacts.backends import Backend, ObjectInfo, file_pieces

POINTER_VERSION = 1
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\[\]-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(RuntimeError):
    """Base class of the content store's errors."""


class ArtifactCorruptedError(ArtifactError):
    """The bytes under a content key do not hash to that key."""


class TenantAccessError(ArtifactError, PermissionError):
    """A run asked for another tenant's artifact."""


@dataclass(frozen=True)
class Serialised:
    data: bytes
    serializer: str  # "json" (canonical) or "bytes"
    media_type: str


def serialise(value: Any) -> Serialised:
    """Raw bytes as they are; anything else as canonical JSON (sorted keys, so equal values
    give equal bytes and dedup)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Serialised(bytes(value), "bytes", "application/octet-stream")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Serialised(text.encode("utf-8"), "json", "application/json")


def deserialise(data: bytes, serializer: str) -> Any:
    if serializer == "json":
        return json.loads(data)
    if serializer == "bytes":
        return data
    raise ArtifactError(f"unknown serializer {serializer!r}")


@dataclass(frozen=True)
class StoredContent:
    """What one store did: the content's identity, and whether it was already there."""

    sha256: str
    size: int
    uri: str
    key: str
    dedup: bool
    serializer: str
    media_type: str

    @property
    def bytes_written(self) -> int:
        return 0 if self.dedup else self.size

    def metadata(self) -> dict[str, Any]:
        """Dagster output metadata, as the UI shows it."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "uri": self.uri,
            "dedup": self.dedup,
            "serializer": self.serializer,
        }


@dataclass(frozen=True)
class Pointer:
    """One output of one step of one run, naming its content by hash, with provenance."""

    sha256: str
    size: int
    media_type: str
    serializer: str
    tenant: str
    workflow: str
    job: str
    run_id: str
    step_id: str
    step_key: str
    output: str
    mapping_key: str | None = None
    upstream: Mapping[str, str] = field(default_factory=dict)  # input name -> sha256
    skipped: str | None = None  # the skip reason when the value is a skip marker
    created_at: float = 0.0
    version: int = POINTER_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, key: str) -> Pointer:
        try:
            raw = json.loads(data)
            return cls(**{**raw, "upstream": dict(raw.get("upstream") or {})})
        except (ValueError, TypeError) as exc:
            raise ArtifactError(f"pointer {key} is not a valid pointer: {exc}") from None


def check_segment(value: str, what: str) -> str:
    """Key segments come from tenants, run ids and step keys: no separators, no `..`."""
    if not _SEGMENT.match(value) or value in {".", ".."}:
        raise ArtifactError(f"{what} {value!r} cannot be used in an artifact key")
    return value


def content_key(tenant: str, sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ArtifactError(f"{sha256!r} is not a SHA-256 hex digest")
    return f"tenants/{check_segment(tenant, 'tenant')}/cas/sha256/{sha256[:2]}/{sha256}"


def pointer_key(tenant: str, run_id: str, step_key: str, output: str) -> str:
    parts = [check_segment(tenant, "tenant"), check_segment(run_id, "run id")]
    parts.append(check_segment(step_key, "step key"))
    names = [check_segment(p, "output name") for p in output.split("/")]
    return f"tenants/{parts[0]}/runs/{parts[1]}/{parts[2]}/{'/'.join(names)}.json"


def tenant_of_key(key: str) -> str | None:
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tenants" else None


class ArtifactStore:
    """Content-addressed storage over one backend."""

    def __init__(self, backend: Backend):
        self.backend = backend

    # ------------------------------------------------------------ content

    def store_bytes(
        self,
        tenant: str,
        data: bytes | memoryview,
        serializer: str = "bytes",
        media_type: str = "application/octet-stream",
    ) -> StoredContent:
        """Store bytes under their hash; a second store of equal bytes writes nothing."""
        sha = hashlib.sha256(data).hexdigest()
        key = content_key(tenant, sha)
        written = self._write_once(key, lambda: self.backend.put_new(key, data))
        return StoredContent(
            sha, len(data), self.backend.uri(key), key, not written, serializer, media_type
        )

    def store_value(self, tenant: str, value: Any) -> StoredContent:
        """A JSON-able value or bytes; a Path is streamed from disk (never held in memory)."""
        if isinstance(value, Path):
            return self.store_file(tenant, value)
        blob = serialise(value)
        return self.store_bytes(tenant, blob.data, blob.serializer, blob.media_type)

    def store_file(
        self, tenant: str, path: Path, media_type: str = "application/octet-stream"
    ) -> StoredContent:
        """Hash the file (one read), then stream it in unless the content is already stored;
        the upload hashes again and is refused when the file changed in between."""
        digest, size = hashlib.sha256(), 0
        for piece in file_pieces(path):
            digest.update(piece)
            size += len(piece)
        sha = digest.hexdigest()
        key = content_key(tenant, sha)
        written = self._write_once(key, lambda: self.backend.put_new_file(key, path, sha))
        uri = self.backend.uri(key)
        return StoredContent(sha, size, uri, key, not written, "bytes", media_type)

    def _write_once(self, key: str, write: Callable[[], bool]) -> bool:
        """True when `write` stored the object; one already there is only touched (dedup)."""
        if self.backend.stat(key) is not None:
            self.backend.touch(key)
            return False
        return write()

    def verified_chunks(self, tenant: str, sha256: str) -> Iterator[bytes]:
        """The object's bytes in pieces; raises ArtifactCorruptedError after the last piece
        when they do not hash to the key (so stream to a temp file, then trust it)."""
        key = content_key(tenant, sha256)
        digest = hashlib.sha256()
        for chunk in self.backend.read_chunks(key):
            digest.update(chunk)
            yield chunk
        self._check(key, sha256, digest.hexdigest())

    def read_verified(self, tenant: str, sha256: str) -> bytes:
        key = content_key(tenant, sha256)
        data = self.backend.read_all(key)
        self._check(key, sha256, hashlib.sha256(data).hexdigest())
        return data

    def _check(self, key: str, expected: str, actual: str) -> None:
        if actual != expected:
            raise ArtifactCorruptedError(
                f"artifact {self.backend.uri(key)} is corrupted: its key says sha256 {expected} "
                f"but its bytes hash to {actual}"
            )

    def save_to(self, tenant: str, sha256: str, target: Path) -> Path:
        """Stream a (large) object to a file, verified; the file appears only when it checks."""
        temp = target.with_name(f".{target.name}.part")
        try:
            with temp.open("wb") as handle:
                for chunk in self.verified_chunks(tenant, sha256):
                    handle.write(chunk)
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        return target

    # ------------------------------------------------------------ pointers

    def write_pointer(self, key: str, pointer: Pointer) -> None:
        if tenant_of_key(key) != pointer.tenant:
            raise TenantAccessError(f"pointer {key} is outside tenant {pointer.tenant!r}")
        self.backend.replace(key, pointer.to_json())

    def read_pointer(self, tenant: str, key: str) -> Pointer:
        """A pointer of `tenant`; another tenant's pointer is refused before it is read."""
        owner = tenant_of_key(key)
        if owner != tenant:
            raise TenantAccessError(
                f"tenant {tenant!r} may not read artifact pointer {key} (tenant {owner!r})"
            )
        data = self.backend.read_small(key)
        if data is None:
            raise ArtifactError(f"no artifact pointer {self.backend.uri(key)}")
        pointer = Pointer.from_json(data, key)
        if pointer.tenant != tenant:
            raise TenantAccessError(
                f"tenant {tenant!r} may not read artifact pointer {key} "
                f"(it records tenant {pointer.tenant!r})"
            )
        return pointer

    def load(self, pointer: Pointer) -> Any:
        """The pointer's value, verified against its hash."""
        data = self.read_verified(pointer.tenant, pointer.sha256)
        return deserialise(data, pointer.serializer)

    # ------------------------------------------------------------ listing, gc

    def tenants(self) -> list[str]:
        return sorted(
            {t for info in self.backend.list("tenants") if (t := tenant_of_key(info.key))}
        )

    def pointers(self, tenant: str) -> Iterator[ObjectInfo]:
        return (i for i in self.backend.list(f"tenants/{tenant}/runs") if i.key.endswith(".json"))

    def contents(self, tenant: str) -> Iterator[ObjectInfo]:
        return self.backend.list(f"tenants/{tenant}/cas/sha256")


def run_id_of_pointer(key: str) -> str:
    return key.split("/")[3]


@dataclass
class GcReport:
    pointers_deleted: list[str] = field(default_factory=list)
    contents_deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    contents_kept: int = 0
    pointers_kept: int = 0
    temp_deleted: list[str] = field(default_factory=list)


def collect_garbage(
    store: ArtifactStore,
    existing_runs: Any,
    older_than_seconds: float,
    dry_run: bool = False,
    now: float | None = None,
) -> GcReport:
    """Delete pointers of runs that no longer exist, then content no pointer references.

    `existing_runs(run_ids) -> set` says which runs the Dagster instance still has. Only
    objects older than `older_than_seconds` are candidates, which leaves in-flight runs alone
    (their content may be written a moment before their pointer). Referenced content is never
    deleted: the referenced set is built from every pointer that stays.
    """
    cutoff = (now if now is not None else time.time()) - older_than_seconds
    report = GcReport()
    for tenant in store.tenants():
        pointers = list(store.pointers(tenant))
        live = existing_runs({run_id_of_pointer(p.key) for p in pointers})
        referenced: set[str] = set()
        for info in pointers:
            if run_id_of_pointer(info.key) not in live and info.modified < cutoff:
                report.pointers_deleted.append(info.key)
                if not dry_run:
                    store.backend.delete(info.key)
                continue
            report.pointers_kept += 1
            data = store.backend.read_small(info.key)
            if data is None:
                continue
            referenced.add(Pointer.from_json(data, info.key).sha256)
        for info in store.contents(tenant):
            sha = info.key.rsplit("/", 1)[-1]
            if sha in referenced or info.modified >= cutoff:
                report.contents_kept += 1
                continue
            report.contents_deleted.append(info.key)
            report.bytes_freed += info.size
            if not dry_run:
                store.backend.delete(info.key)
    for info in store.backend.list("tmp"):  # local temp files a killed writer left behind
        if info.modified < cutoff:
            report.temp_deleted.append(info.key)
            report.bytes_freed += info.size
            if not dry_run:
                store.backend.delete(info.key)
    return report


def verify_all(store: ArtifactStore, tenants: Iterable[str] | None = None) -> list[str]:
    """Re-hash every content object; the problems found (empty when all is well)."""
    problems: list[str] = []
    for tenant in tenants or store.tenants():
        for info in store.contents(tenant):
            sha = info.key.rsplit("/", 1)[-1]
            try:
                for _ in store.verified_chunks(tenant, sha):
                    pass
            except ArtifactError as exc:
                problems.append(str(exc))
    return problems
