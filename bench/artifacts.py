"""Artifact store throughput: content-addressed store/load vs raw sha256 + write/read.

Run: `.venv/bin/python bench/artifacts.py`. 256 MiB of 16 MiB blobs plus 1,024 JSON documents
of ~1 KiB, on the local backend (a temp folder) and on SeaweedFS (`weed mini`, started here
on free loopback ports). Per backend, interleaved, medians of REPEATS:

- store: `ArtifactStore.store_value` (hash, exists check, write once) into an empty store;
  raw write: `hashlib.sha256(bytes)` + write of the same bytes, one file per object (local:
  with fsync when the store fsyncs; S3: put_object), into an empty folder/prefix.
- store + pointer: the same plus a pointer file per artifact, as the IO manager does.
- load: verified load (hash checked) of every artifact; load via pointer: read the pointer
  first; raw read: read + sha256.
- second store of the same artifacts: bytes written (target 0).

Targets (local): store and load at >= 0.8 of raw throughput. Reported, never asserted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import fmt_row, noise_note, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resources.artifacts.backends import LocalBackend, S3Backend
from resources.artifacts.store import ArtifactStore, Pointer, deserialise, pointer_key, serialise
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, running_seaweedfs

MIB = 1024 * 1024
BLOBS = 16
BLOB_SIZE = 16 * MIB
DOCS = 1024
REPEATS = 5
RATIO_TARGET = 0.8
TENANT = "bench"


def artifacts() -> list[Any]:
    """16 distinct 16 MiB blobs and 1,024 distinct ~1 KiB JSON documents."""
    blobs = [os.urandom(BLOB_SIZE) for _ in range(BLOBS)]
    docs = [{"id": i, "text": f"{i:06d}" * 160, "tags": ["a", "b"]} for i in range(DOCS)]
    return [*blobs, *docs]


def total_bytes(values: list[Any]) -> int:
    return sum(len(serialise(v).data) for v in values)


def store_contents(store: ArtifactStore, values: list[Any]) -> tuple[list[str], int]:
    """The content store alone: hash, dedup check, write once. (hashes, bytes written)"""
    stored = [store.store_value(TENANT, value) for value in values]
    return [s.sha256 for s in stored], sum(s.bytes_written for s in stored)


def load_contents(store: ArtifactStore, hashes: list[str], serializers: list[str]) -> None:
    for sha, serializer in zip(hashes, serializers, strict=True):
        deserialise(store.read_verified(TENANT, sha), serializer)


def store_with_pointers(store: ArtifactStore, values: list[Any], run_id: str) -> int:
    """What the IO manager does per output: the content, then a pointer file."""
    written = 0
    for index, value in enumerate(values):
        stored = store.store_value(TENANT, value)
        written += stored.bytes_written
        pointer = Pointer(
            stored.sha256, stored.size, stored.media_type, stored.serializer, TENANT,
            "bench", "bench", run_id, f"s{index}", f"s{index}", "result",
        )  # fmt: skip
        store.write_pointer(pointer_key(TENANT, run_id, f"s{index}", "result"), pointer)
    return written


def load_with_pointers(store: ArtifactStore, count: int, run_id: str) -> None:
    for index in range(count):
        key = pointer_key(TENANT, run_id, f"s{index}", "result")
        store.load(store.read_pointer(TENANT, key))


class RawLocal:
    """sha256 + one file per object in one folder (+ fsync when the store fsyncs too)."""

    def __init__(self, root: Path, fsync: bool):
        self.root, self.fsync, self.names = root, fsync, []
        root.mkdir(parents=True, exist_ok=True)

    def write(self, blobs: list[bytes]) -> None:
        for blob in blobs:
            name = hashlib.sha256(blob).hexdigest()
            with (self.root / name).open("wb") as handle:
                handle.write(blob)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            self.names.append(name)

    def read(self, blobs: list[bytes]) -> None:
        for name in self.names:
            hashlib.sha256((self.root / name).read_bytes()).hexdigest()


class RawS3:
    def __init__(self, client: Any, bucket: str, prefix: str):
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def write(self, blobs: list[bytes]) -> None:
        for index, blob in enumerate(blobs):
            hashlib.sha256(blob).hexdigest()
            self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{index}", Body=blob)

    def read(self, blobs: list[bytes]) -> None:
        for index in range(len(blobs)):
            body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{index}")
            hashlib.sha256(body["Body"].read()).hexdigest()


def timed(fn: Callable[[], Any]) -> float:
    """Wall time of fn, after flushing earlier writes (and deletes) so fsyncs time our own."""
    os.sync()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


VARIANTS = ("store", "store + pointer", "raw write", "load", "load via pointer", "raw read")


def measure(
    name: str,
    new_store: Callable[[], ArtifactStore],
    new_raw: Callable[[], Any],
    values: list[Any],
    repeats: int,
) -> dict[str, Any]:
    blobs = [serialise(v) for v in values]
    raw_bytes, serializers = [b.data for b in blobs], [b.serializer for b in blobs]
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    second_written: list[int] = []
    for repeat in range(repeats + 1):  # the first round warms up and is dropped
        content, full, raw, run_id = new_store(), new_store(), new_raw(), f"run{repeat}"
        hashes: list[str] = []
        steps = {
            "store": lambda: hashes.extend(store_contents(content, values)[0]),  # noqa: B023
            "store + pointer": lambda: store_with_pointers(full, values, run_id),  # noqa: B023
            "raw write": lambda: raw.write(raw_bytes),  # noqa: B023
            "load": lambda: load_contents(content, hashes, serializers),  # noqa: B023
            "load via pointer": lambda: load_with_pointers(full, len(values), run_id),  # noqa: B023
            "raw read": lambda: raw.read(raw_bytes),  # noqa: B023
        }
        order = list(VARIANTS)
        if repeat % 2 == 0:  # A, B then B, A
            order = [
                "raw write",
                "store + pointer",
                "store",
                "raw read",
                "load via pointer",
                "load",
            ]
        times = {variant: timed(steps[variant]) for variant in order}
        second_written.append(store_contents(content, values)[1])
        second_written.append(store_with_pointers(full, values, f"again{repeat}"))
        if repeat:
            for key, seconds in times.items():
                samples[key].append(seconds)
    mib = total_bytes(values) / MIB
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "name": name,
        "mib": mib,
        "rate": {k: mib / v for k, v in medians.items()},
        "best": {k: mib / min(v) for k, v in samples.items()},
        "ratios": {
            "store / raw write": medians["raw write"] / medians["store"],
            "verified load / raw read": medians["raw read"] / medians["load"],
            "store + pointer / raw write": medians["raw write"] / medians["store + pointer"],
            "load via pointer / raw read": medians["raw read"] / medians["load via pointer"],
        },
        "second_written": max(second_written),
        "noise": noise_note(samples),
    }


def report(result: dict[str, Any], target: bool) -> None:
    print(f"\n{result['name']}: {result['mib']:.1f} MiB per pass, medians of the repeats")
    print(fmt_row("", "MiB/s", "best MiB/s"))
    for key in VARIANTS:
        print(fmt_row(key, f"{result['rate'][key]:.0f}", f"{result['best'][key]:.0f}"))
    for label, ratio in result["ratios"].items():
        headline = target and "pointer" not in label
        suffix = f"  {verdict(ratio >= RATIO_TARGET)} target >= {RATIO_TARGET}" if headline else ""
        print(fmt_row(f"{label} (throughput)", f"{ratio:.2f}") + suffix)
    print(
        fmt_row("second store: bytes written", str(result["second_written"]))
        + f"  {verdict(result['second_written'] == 0)} target 0"
    )
    print(result["noise"], flush=True)


def main() -> None:
    values = artifacts()
    with tempfile.TemporaryDirectory(prefix="maestro-bench-") as tmp:
        base = Path(tmp)

        def fresh(kind: str) -> Path:
            path = base / f"{kind}-{uuid.uuid4().hex[:8]}"
            for old in base.glob(f"{kind}-*"):  # keep one pass on disk at a time
                shutil.rmtree(old, ignore_errors=True)
            return path

        for fsync, label in ((True, "fsync each object"), (False, "page cache, no fsync")):
            local = measure(
                f"local backend, {label}",
                lambda fsync=fsync: ArtifactStore(LocalBackend(fresh("store"), fsync=fsync)),
                lambda fsync=fsync: RawLocal(fresh("raw"), fsync),
                values,
                REPEATS,
            )
            report(local, target=True)

        os.environ.setdefault("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        with running_seaweedfs(base / "seaweedfs") as server:
            server.create_bucket("maestro-bench")
            client = server.client()

            def s3_store() -> ArtifactStore:
                return ArtifactStore(S3Backend(client, "maestro-bench", uuid.uuid4().hex))

            def s3_raw() -> RawS3:
                return RawS3(client, "maestro-bench", f"raw-{uuid.uuid4().hex}")

            seaweed = measure("SeaweedFS (S3, weed mini)", s3_store, s3_raw, values, 3)
            report(seaweed, target=False)


if __name__ == "__main__":
    main()
