"""The S3 server (SeaweedFS) killed with SIGKILL while a step's large file output is being
uploaded in parts: the step fails after its retries with an error naming the store, no object
under a content key is ever partial, and once the server is back on its data folder and ports,
re-execution from failure completes."""

from __future__ import annotations

import hashlib
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.support.reexecution import reconstructable_workflow
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, RestartableSeaweedFS, SeaweedS3

SIZE = 160 * 1024 * 1024  # above the 64 MiB multipart threshold: ten 16 MiB parts
_SHA = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def weed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableSeaweedFS]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # boto3's own retries: keep the test short
    server = RestartableSeaweedFS(tmp_path / "weed")
    server.start().create_bucket("faults")
    yield server
    server.stop()


def _content_objects(server: SeaweedS3) -> list[dict[str, Any]]:
    client = server.client()
    listed = client.list_objects_v2(Bucket="faults").get("Contents", [])
    return [o for o in listed if _SHA.search(o["Key"].rsplit("/", 1)[-1])]


def _assert_whole(server: SeaweedS3) -> int:
    """Every object named by a content hash holds exactly the bytes of that hash."""
    client = server.client()
    objects = _content_objects(server)
    for listed in objects:
        digest = hashlib.sha256()
        body = client.get_object(Bucket="faults", Key=listed["Key"])["Body"]
        for chunk in body.iter_chunks(8 * 1024 * 1024):
            digest.update(chunk)
        name = listed["Key"].rsplit("/", 1)[-1]
        assert _SHA.search(name).group(0) == digest.hexdigest(), listed["Key"]  # type: ignore[union-attr]
    return len(objects)


def _wait_for_upload(server: SeaweedS3, seconds: float = 120) -> None:
    """Until a multipart upload is under way (some of its parts sent, not completed)."""
    client = server.client()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        uploads = client.list_multipart_uploads(Bucket="faults").get("Uploads", [])
        for upload in uploads:
            parts = client.list_parts(
                Bucket="faults", Key=upload["Key"], UploadId=upload["UploadId"]
            ).get("Parts", [])
            if parts:
                return
        time.sleep(0.02)
    raise AssertionError("no multipart upload was seen in progress")


def test_s3_killed_mid_upload_fails_the_step_leaves_no_partial_object_and_resumes(
    tmp_path: Path, weed: RestartableSeaweedFS
) -> None:
    """1 fault (SIGKILL mid-upload; the retry meets a dead server), 2 runs."""
    work = tmp_path / "work"
    work.mkdir()
    workflow = tmp_path / "big.yaml"
    workflow.write_text(
        textwrap.dedent(
            f"""
            name: big-output
            steps:
              - id: make
                run: shell
                retry: {{max_attempts: 2}}
                with:
                  command: "head -c {SIZE} /dev/urandom > big.bin"
                  shell: true
                  cwd: {work}
                outputs:
                  - {{name: data, path: big.bin}}
              - id: use
                run: echo
                with: {{sha256: "{{{{ steps.make.output.data.sha256 }}}}"}}
            """
        )
    )
    job = reconstructable_workflow(str(workflow), "s3://faults/artifacts", weed.endpoint_url)
    server = SeaweedS3(weed.endpoint_url, 0)
    with dg.instance_for_test() as instance:
        outcome: dict[str, Any] = {}

        def execute() -> None:
            with dg.execute_job(job, instance=instance, raise_on_error=False) as result:
                outcome["run_id"], outcome["success"] = result.run_id, result.success

        runner = threading.Thread(target=execute)
        runner.start()
        _wait_for_upload(server)
        weed.kill()
        runner.join(300)
        assert not runner.is_alive()
        assert outcome["success"] is False
        events = [
            e.dagster_event
            for e in instance.all_logs(outcome["run_id"])
            if e.dagster_event is not None
        ]
        failures = [e for e in events if e.event_type_value == "STEP_FAILURE"]
        assert [e.step_key for e in failures] == ["make"]
        assert sum(e.event_type_value == "STEP_RESTARTED" for e in events) == 1  # retried once
        text = failures[0].step_failure_data.error.to_string()
        assert "output 'data': could not store" in text and "in the artifact store" in text
        assert "EndpointConnectionError" in text and weed.endpoint_url in text, text
        metadata = failures[0].step_failure_data.user_failure_data.metadata
        assert metadata["error_kind"].value == "connection"
        assert "use" not in {e.step_key for e in events if e.event_type_value == "STEP_START"}

        weed.start()
        server.create_bucket("faults", timeout=60)  # answers again (it already exists)
        assert _assert_whole(server) == 0  # nothing half-written under a content key

        options = dg.ReexecutionOptions.from_failure(outcome["run_id"], instance)
        with dg.execute_job(
            job, instance=instance, reexecution_options=options, raise_on_error=False
        ) as again:
            assert again.success
            digest = again.output_for_node("use")["sha256"]
        assert digest == hashlib.sha256((work / "big.bin").read_bytes()).hexdigest()
        assert _assert_whole(server) >= 1
