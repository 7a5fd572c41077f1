"""Where artifact bytes live: a local folder or an S3 bucket, behind one small interface.

Backends know nothing about hashes or pointers (see store.py); they promise two things the
content store relies on: `put_new` never replaces an existing object (a concurrent writer of
the same key loses quietly), and every object appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CHUNK = 8 * 1024 * 1024
"""Read and hash in 8 MiB pieces: large enough for throughput, small enough for memory."""
PART = 16 * 1024 * 1024
"""S3 multipart part size; objects above MULTIPART_THRESHOLD go up in parts."""
MULTIPART_THRESHOLD = 64 * 1024 * 1024


class ArtifactMissingError(LookupError):
    """The object a pointer names is not in the store."""


class ContentChangedError(RuntimeError):
    """A file changed between hashing it and uploading it."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch


class Backend(Protocol):
    """Object storage as the content store uses it; keys are `/`-separated relative paths."""

    def uri(self, key: str) -> str: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def put_new(self, key: str, data: bytes | memoryview) -> bool:
        """Store `data` unless `key` exists; False when it existed (and was left alone).

        Callers check `stat` first to skip the write; this is the race-proof second check."""
        ...

    def put_new_file(self, key: str, path: Path, sha256: str) -> bool:
        """Stream a file to `key` unless it exists, checking its hash on the way."""
        ...

    def read_chunks(self, key: str) -> Iterator[bytes]: ...

    def read_all(self, key: str) -> bytes:
        """The whole object in one buffer (no chunk joining) for values loaded into memory."""
        ...

    def replace(self, key: str, data: bytes) -> None:
        """Atomically write a small object (pointers), replacing an earlier attempt's."""
        ...

    def read_small(self, key: str) -> bytes | None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def touch(self, key: str) -> None:
        """Mark a deduplicated object as just used, so gc's age check sees it as fresh."""
        ...


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _load_renameat2() -> Any:
    """glibc's renameat2, for a rename that fails instead of replacing (Linux); else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    return function


_renameat2 = _load_renameat2()


def rename_no_replace(source: Path, target: Path) -> bool:
    """Move `source` to `target` unless `target` exists (False then, `source` left in place).

    One atomic step with renameat2(RENAME_NOREPLACE); where that is missing, a hard link
    (which also refuses an existing name) and an unlink.
    """
    if _renameat2 is not None:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if result == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            return False
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(target))
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    source.unlink()
    return True


def file_pieces(path: Path, size: int = 1024 * 1024) -> Iterator[memoryview]:
    """A file in pieces read into one reused buffer: streaming a file allocates `size` bytes
    once, whatever the file's size (each piece is valid until the next one is read)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            yield view[:count]


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


class LocalBackend:
    """A folder: temp file in the same filesystem, fsync, then a no-replace rename.

    The rename fails when the name exists, so an object is never replaced, and two writers of
    the same content cannot interleave their bytes: each writes its own temp file.
    """

    def __init__(self, root: str | Path, fsync: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.fsync = fsync  # off only where a crash may lose data (scratch stores)
        self._tmp = self.root / "tmp"
        self._tmp_ready = False

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def _path(self, key: str) -> Path:
        return self.root / key

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            info = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, info.st_size, info.st_mtime)

    def _temp_file(self) -> Path:
        if not self._tmp_ready:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._tmp_ready = True
        return self._tmp / f"{uuid.uuid4().hex}.part"

    def _open_temp(self, mode: int = 0o444) -> tuple[Path, Any]:
        """A new temp file open for writing; content objects are created read-only (0444)."""
        temp = self._temp_file()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        return temp, os.fdopen(fd, "wb")

    def _publish(self, temp: Path, key: str) -> bool:
        final = self._path(key)
        try:
            try:
                published = rename_no_replace(temp, final)
            except FileNotFoundError:  # first object of its folder
                final.parent.mkdir(parents=True, exist_ok=True)
                published = rename_no_replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if not published:
            temp.unlink(missing_ok=True)
        return published

    def _finish(self, handle: Any) -> None:
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())

    def put_new(self, key: str, data: bytes | memoryview) -> bool:
        temp, handle = self._open_temp()
        try:
            with handle:
                handle.write(data)
                self._finish(handle)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._publish(temp, key)

    def put_new_file(self, key: str, path: Path, sha256: str) -> bool:
        temp, handle = self._open_temp()
        digest = hashlib.sha256()
        try:
            with handle:
                for piece in file_pieces(path):
                    digest.update(piece)
                    handle.write(piece)
                self._finish(handle)
            if digest.hexdigest() != sha256:
                raise ContentChangedError(f"{path} changed while it was being stored")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._publish(temp, key)

    def read_chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactMissingError(f"no object {self.uri(key)}")
        return _file_chunks(path)

    def read_all(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ArtifactMissingError(f"no object {self.uri(key)}") from None

    def replace(self, key: str, data: bytes) -> None:
        final = self._path(key)
        temp, handle = self._open_temp(0o644)
        with handle:
            handle.write(data)
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)

    def read_small(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        for dirpath, _, filenames in os.walk(base):
            for name in sorted(filenames):
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    yield ObjectInfo(
                        path.relative_to(self.root).as_posix(), info.st_size, info.st_mtime
                    )

    def delete(self, key: str) -> None:
        """Remove the file, then the folders it leaves empty (a deleted run's folder)."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop here
                break

    def touch(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.utime(self._path(key))


def _is_status(error: Exception, *codes: str) -> bool:
    response = getattr(error, "response", None) or {}
    error_code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return error_code in codes or status in codes


class S3Backend:
    """A bucket and prefix, through a boto3 client (dagster-aws's `S3Resource` makes it).

    New objects are written with `If-None-Match: *`, so an existing object is never replaced;
    large ones go up in parts, hashed as they are read, and the upload is completed only when
    the hash matches the key.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.multipart_threshold = multipart_threshold  # objects above it go up in parts
        self.part_size = part_size  # S3 wants >= 5 MiB for every part but the last

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _is_status(exc, "404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def _put_if_absent(self, key: str, body: bytes | memoryview) -> bool:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=bytes(body), IfNoneMatch="*"
            )
        except Exception as exc:
            if _is_status(exc, "412", "PreconditionFailed", "409", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def _multipart(self, key: str, parts: Iterator[bytes | memoryview], check: Any) -> bool:
        target = self._key(key)
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)
        upload_id = upload["UploadId"]
        try:
            done = []
            for number, part in enumerate(parts, start=1):
                reply = self.client.upload_part(
                    Bucket=self.bucket, Key=target, UploadId=upload_id, PartNumber=number, Body=part
                )
                done.append({"PartNumber": number, "ETag": reply["ETag"]})
            check()
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                IfNoneMatch="*",
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id
                )
            if _is_status(exc, "412", "PreconditionFailed", "409", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def put_new(self, key: str, data: bytes | memoryview) -> bool:
        if len(data) <= self.multipart_threshold:
            return self._put_if_absent(key, data)
        view, step = memoryview(data), self.part_size
        parts = (view[i : i + step] for i in range(0, len(view), step))
        return self._multipart(key, parts, lambda: None)

    def put_new_file(self, key: str, path: Path, sha256: str) -> bool:
        if path.stat().st_size <= self.multipart_threshold:
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise ContentChangedError(f"{path} changed while it was being stored")
            return self._put_if_absent(key, data)
        digest = hashlib.sha256()

        def parts() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while part := handle.read(self.part_size):
                    digest.update(part)
                    yield part

        def check() -> None:
            if digest.hexdigest() != sha256:
                raise ContentChangedError(f"{path} changed while it was being stored")

        return self._multipart(key, parts(), check)

    def _body(self, key: str) -> Any:
        """The object's streaming body (one GET); ArtifactMissingError when there is none."""
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _is_status(exc, "404", "NoSuchKey", "NotFound"):
                raise ArtifactMissingError(f"no object {self.uri(key)}") from None
            raise
        return reply["Body"]

    def read_chunks(self, key: str) -> Iterator[bytes]:
        return self._body(key).iter_chunks(CHUNK)

    def read_all(self, key: str) -> bytes:
        return self._body(key).read()

    def replace(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def read_small(self, key: str) -> bytes | None:
        try:
            return self.read_all(key)
        except ArtifactMissingError:
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self._key(prefix).rstrip("/") + "/"
        ):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    item["Key"][strip:], int(item["Size"]), item["LastModified"].timestamp()
                )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def touch(self, key: str) -> None:
        """S3 has no cheap touch; gc's age check on content is the grace period instead."""
