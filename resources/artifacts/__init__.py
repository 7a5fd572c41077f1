"""Content-addressed artifacts: the store (plain Python) and its Dagster IO manager."""

from resources.artifacts.io_manager import (
    DECLARED_OUTPUTS,
    INPUT_KIND,
    ArtifactsIOManager,
    ContentAddressedIOManager,
    default_location,
    open_backend,
)
from resources.artifacts.store import (
    ArtifactCorruptedError,
    ArtifactError,
    ArtifactStore,
    Pointer,
    StoredContent,
    TenantAccessError,
    collect_garbage,
    verify_all,
)

__all__ = [
    "DECLARED_OUTPUTS",
    "INPUT_KIND",
    "ArtifactCorruptedError",
    "ArtifactError",
    "ArtifactStore",
    "ArtifactsIOManager",
    "ContentAddressedIOManager",
    "Pointer",
    "StoredContent",
    "TenantAccessError",
    "collect_garbage",
    "default_location",
    "open_backend",
    "verify_all",
]
