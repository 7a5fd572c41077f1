"""Content-addressed artifacts on both backends (local folder, SeaweedFS S3): real jobs, real
storage, objects counted and corrupted behind the store's back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.artifacts import (
    ArtifactCorruptedError,
    ArtifactsIOManager,
    ArtifactStore,
    Pointer,
    TenantAccessError,
    collect_garbage,
    verify_all,
)
from resources.artifacts.backends import S3Backend, rename_no_replace
from resources.artifacts.io_manager import NOT_LOADED, SENTINEL_KEY
from resources.artifacts.store import content_key, pointer_key
from resources.sentinels import is_skipped as is_skip_marker
from tests.conftest import ArtifactsBackend
from tests.support.compiling import CompiledWorkflow
from tests.support.paths import PROJECT_ROOT
from tests.support.runs import step_outcomes
from yaml_compiler import WorkflowCompileError
from yaml_compiler.backend import LoadedWorkflows, compile_workflow_files
from yaml_compiler.backend.runtime.ops import SENTINEL_KEY as RUNTIME_SENTINEL
from yaml_compiler.backend.runtime.ops import skip_marker

PIPELINE = """
name: artifacts-pipeline
tenant: acme
steps:
  - id: extract
    run: echo
    with: {rows: [1, 2, 3], source: warehouse}
    outputs: [rows]
  - id: transform
    run: echo
    with: {total: "{{ steps.extract.output.rows | sum }}"}
    outputs:
      - name: report
        asset_key: acme/reports/daily
        description: The daily report.
  - id: notify
    run: echo
    depends_on: transform
    with: {message: done}
"""


def run_with(
    workflow: CompiledWorkflow, backend: ArtifactsBackend, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    return workflow.job.execute_in_process(
        instance=instance, resources={"io_manager": backend.io_manager()}, raise_on_error=False
    )


def handled(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """The IO manager's metadata per step key (HANDLED_OUTPUT events)."""
    return {
        event.step_key: {k: v.value for k, v in event.event_specific_data.metadata.items()}
        for event in result.all_events
        if event.event_type_value == "HANDLED_OUTPUT"
    }


def contents(store: ArtifactStore, tenant: str = "acme") -> list[str]:
    return sorted(info.key for info in store.contents(tenant))


def test_skip_sentinel_matches_the_runtime() -> None:
    assert SENTINEL_KEY == RUNTIME_SENTINEL
    assert is_skip_marker(skip_marker("when is false"))
    assert not is_skip_marker(NOT_LOADED)


def test_a_run_stores_outputs_by_hash_with_pointers_and_metadata(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    result = run_with(compile_yaml(PIPELINE), artifacts_backend, instance)
    assert result.success
    meta = handled(result)
    store = artifacts_backend.store()
    extract_value = {"rows": [1, 2, 3], "source": "warehouse"}
    canonical = json.dumps(extract_value, sort_keys=True, separators=(",", ":")).encode()
    sha = hashlib.sha256(canonical).hexdigest()
    assert meta["extract"]["sha256"] == sha
    assert meta["extract"]["size"] == len(canonical)
    assert meta["extract"]["serializer"] == "json"
    assert meta["extract"]["dedup"] is False
    assert meta["extract"]["uri"].endswith(f"tenants/acme/cas/sha256/{sha[:2]}/{sha}")
    assert result.output_for_node("transform") == {"total": 6}

    pointer = store.read_pointer("acme", pointer_key("acme", result.run_id, "transform", "result"))
    assert (pointer.tenant, pointer.workflow, pointer.step_id) == (
        "acme",
        "artifacts-pipeline",
        "transform",
    )
    assert pointer.run_id == result.run_id
    assert pointer.upstream == {"from_extract": sha}  # provenance: the hash it read
    assert store.load(pointer) == {"total": 6}


def test_equal_values_dedup_and_a_second_run_writes_no_content(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    store = artifacts_backend.store()
    first = store.store_value("acme", {"b": 1, "a": [1, 2]})
    second = store.store_value("acme", {"a": [1, 2], "b": 1})  # same value, other key order
    assert (first.dedup, second.dedup) == (False, True)
    assert first.sha256 == second.sha256 and second.bytes_written == 0

    workflow = compile_yaml(PIPELINE)
    run_one = run_with(workflow, artifacts_backend, instance)
    after_one = contents(store)
    run_two = run_with(workflow, artifacts_backend, instance)
    assert run_one.success and run_two.success
    assert contents(store) == after_one  # each content object written once
    assert all(m["dedup"] for m in handled(run_two).values())  # the re-run is a dedup hit
    runs = {info.key.split("/")[3] for info in store.pointers("acme")}
    assert runs == {run_one.run_id, run_two.run_id}  # but each run has its own pointers


def test_a_corrupted_object_fails_the_next_load_naming_key_and_hashes(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    workflow = compile_yaml(PIPELINE)
    first = run_with(workflow, artifacts_backend, instance)
    sha = handled(first)["extract"]["sha256"]
    key = content_key("acme", sha)
    artifacts_backend.corrupt(key)

    second = run_with(workflow, artifacts_backend, instance)  # extract dedups onto the bad object
    outcomes = step_outcomes(second)
    assert outcomes["extract"] == "STEP_SUCCESS"
    assert outcomes["transform"] == "STEP_FAILURE"
    failure = next(
        e for e in second.all_events if e.event_type_value == "STEP_FAILURE"
    ).step_failure_data.error
    text = str(failure.to_string())
    assert "ArtifactCorruptedError" in text and key in text and sha in text

    store = artifacts_backend.store()
    with pytest.raises(ArtifactCorruptedError) as caught:
        store.read_verified("acme", sha)
    actual = caught.value.args[0].rsplit(" ", 1)[-1]
    assert len(actual) == 64 and actual != sha


def test_a_gate_input_reads_the_pointer_not_the_value(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    """`depends_on` only asks "was it skipped?": the pointer answers; skips still propagate."""
    workflow = compile_yaml(
        """
        name: gates
        tenant: acme
        steps:
          - id: a
            run: echo
            with: {message: big}
          - id: b
            run: echo
            depends_on: a
          - id: c
            run: echo
            when: false
          - id: d
            run: echo
            depends_on: c
        """
    )
    first = run_with(workflow, artifacts_backend, instance)
    artifacts_backend.corrupt(content_key("acme", handled(first)["a"]["sha256"]))
    second = run_with(workflow, artifacts_backend, instance)
    outcomes = step_outcomes(second)
    assert outcomes["b"] == "STEP_SUCCESS"  # the corrupted value of `a` was never read
    d_output = second.output_for_node("d")
    assert is_skip_marker(d_output) and "'c'" in d_output["reason"]
    store = artifacts_backend.store()
    pointer = store.read_pointer("acme", pointer_key("acme", second.run_id, "c", "result"))
    assert pointer.skipped == "when is false"


def test_for_each_outputs_get_one_pointer_per_item(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    workflow = compile_yaml(
        """
        name: fanout
        tenant: acme
        steps:
          - id: each
            run: echo
            for_each: [x, y]
            with: {message: "{{ item }}"}
            outputs: [messages]
        """
    )
    result = run_with(workflow, artifacts_backend, instance)
    assert result.success
    assert [v["message"] for v in result.output_for_node("each__collect")] == ["x", "y"]
    store = artifacts_backend.store()
    keys = {info.key.split(f"{result.run_id}/", 1)[1] for info in store.pointers("acme")}
    assert {"each__items/items/0.json", "each__items/items/1.json"} <= keys
    assert "each__collect/outputs/messages.json" in keys
    collect = store.read_pointer(
        "acme", pointer_key("acme", result.run_id, "each__collect", "result")
    )
    assert set(collect.upstream) == {
        "results/each[0]/result",
        "results/each[1]/result",
    }  # one hash per item read


def test_tenants_cannot_read_each_others_pointers(artifacts_backend: ArtifactsBackend) -> None:
    store = artifacts_backend.store()
    stored = store.store_value("acme", {"secret": 1})
    key = pointer_key("acme", "run1", "step", "result")
    pointer = Pointer(
        stored.sha256, stored.size, stored.media_type, stored.serializer, "acme", "wf", "job",
        "run1", "step", "step", "result",
    )  # fmt: skip
    store.write_pointer(key, pointer)
    assert store.load(store.read_pointer("acme", key)) == {"secret": 1}
    with pytest.raises(TenantAccessError, match="tenant 'globex' may not read"):
        store.read_pointer("globex", key)
    # A pointer copied into another tenant's prefix still names its tenant: refused too.
    copied = pointer_key("globex", "run1", "step", "result")
    store.backend.replace(copied, pointer.to_json())
    with pytest.raises(TenantAccessError, match="records tenant 'acme'"):
        store.read_pointer("globex", copied)
    with pytest.raises(TenantAccessError):
        store.write_pointer(copied, pointer)


def test_gc_removes_deleted_runs_and_orphans_but_keeps_referenced_content(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    workflow = compile_yaml(PIPELINE)
    old = run_with(workflow, artifacts_backend, instance)
    kept = run_with(workflow, artifacts_backend, instance)
    store = artifacts_backend.store()
    orphan = store.store_value("acme", {"nobody": "points here"})
    instance.delete_run(old.run_id)

    def existing(run_ids: set[str]) -> set[str]:
        return {r for r in run_ids if instance.get_run_by_id(r) is not None}

    before = contents(store)
    if artifacts_backend.kind == "local":  # a temp file a killed writer left behind
        (Path(artifacts_backend.location) / "tmp" / "dead.part").write_bytes(b"partial")
    dry = collect_garbage(store, existing, older_than_seconds=0, dry_run=True)
    assert dry.contents_deleted == [orphan.key]
    assert dry.pointers_deleted and all(old.run_id in k for k in dry.pointers_deleted)
    assert contents(store) == before  # a dry run deletes nothing

    young = collect_garbage(store, existing, older_than_seconds=3600)
    assert young.contents_deleted == [] and young.pointers_deleted == []

    report = collect_garbage(store, existing, older_than_seconds=0)
    assert report.contents_deleted == [orphan.key]
    if artifacts_backend.kind == "local":
        assert report.temp_deleted == ["tmp/dead.part"]
        assert not (Path(artifacts_backend.location) / "tmp" / "dead.part").exists()
    assert {i.key.split("/")[3] for i in store.pointers("acme")} == {kept.run_id}
    assert contents(store) == sorted(k for k in before if k != orphan.key)
    for info in store.pointers("acme"):  # everything the kept run points at still loads
        store.load(Pointer.from_json(store.backend.read_small(info.key) or b"", info.key))


_WRITER = """
import sys
from resources.artifacts import ArtifactsIOManager
store = ArtifactsIOManager(location=sys.argv[1], s3_endpoint_url=sys.argv[2] or None).open_store()
data = bytes(range(256)) * (int(sys.argv[3]) // 256)
for _ in range(int(sys.argv[4])):
    store.store_bytes("acme", data)
"""


def test_concurrent_writers_of_the_same_content_never_corrupt_it(
    artifacts_backend: ArtifactsBackend,
) -> None:
    size = 8 * 1024 * 1024
    args = [artifacts_backend.location, artifacts_backend.endpoint_url or "", str(size), "3"]
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, *args], cwd=PROJECT_ROOT) for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    store = artifacts_backend.store()
    data = bytes(range(256)) * (size // 256)
    sha = hashlib.sha256(data).hexdigest()
    assert contents(store) == [content_key("acme", sha)]
    assert store.read_verified("acme", sha) == data


def test_large_files_stream_through_multipart_and_load_verified(
    artifacts_backend: ArtifactsBackend, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    chunk = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
    with source.open("wb") as handle:
        for index in range(70):  # above the 64 MiB multipart threshold
            handle.write(bytes([index]) + chunk[1:])
    store = artifacts_backend.store()
    stored = store.store_value("acme", source)
    assert stored.size == source.stat().st_size and not stored.dedup
    assert store.store_value("acme", source).dedup
    copy = store.save_to("acme", stored.sha256, tmp_path / "copy.bin")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == stored.sha256


def test_declared_outputs_become_assets_with_lineage_and_materialisations(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    from maestro_defs.workflows import build_definitions

    workflow = compile_yaml(PIPELINE)
    loaded = LoadedWorkflows([workflow], [])
    defs = build_definitions(loaded, {"io_manager": artifacts_backend.io_manager()})
    graph = defs.resolve_asset_graph()
    rows = dg.AssetKey(["maestro", "artifacts-pipeline", "extract", "rows"])
    report = dg.AssetKey(["acme", "reports", "daily"])
    assert graph.get_all_asset_keys() == {rows, report}
    assert graph.get(report).parent_keys == {rows}

    result = run_with(workflow, artifacts_backend, instance)
    assert result.success
    event = instance.get_latest_materialization_event(report)
    assert event is not None and event.run_id == result.run_id
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    expected = hashlib.sha256(b'{"total":6}').hexdigest()
    assert metadata["sha256"] == expected and metadata["size"] == 11
    assert metadata["uri"].endswith(expected)
    assert metadata["serializer"] == "json"
    assert instance.get_latest_materialization_event(rows) is not None


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ("[report, report]", "steps[0].outputs[1]: duplicate output name 'report'"),
        ("[{name: a, asset_key: 'x//y'}]", "steps[0].outputs[0].asset_key: String should match"),
        (
            "[{name: a, asset_key: x/y}, {name: b, asset_key: x/y}]",
            "steps[0].outputs[1]: asset key 'x/y' is already declared on line 5",
        ),
        ("[1bad]", "steps[0].outputs[0]: String should match"),
    ],
)
def test_bad_outputs_are_positioned_errors(
    compile_yaml: Callable[..., CompiledWorkflow], outputs: str, message: str
) -> None:
    text = textwrap.dedent(
        f"""
        name: bad-outputs
        steps:
          - id: s
            run: echo
            outputs: {outputs}
        """
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_yaml(text)
    rendered = "\n".join(str(d) for d in caught.value.diagnostics)
    assert "workflow.yaml:5:" in rendered and message in rendered, rendered


def test_an_existing_object_is_never_replaced(
    artifacts_backend: ArtifactsBackend, tmp_path: Path
) -> None:
    """Even past the exists-check (a writer that lost a race), the first object stays."""
    store = artifacts_backend.store()
    backend = store.backend
    assert backend.put_new("tenants/acme/cas/x", b"first")
    assert not backend.put_new("tenants/acme/cas/x", b"second")
    if isinstance(backend, S3Backend):
        assert not backend._put_if_absent("tenants/acme/cas/x", b"second")  # If-None-Match: *
    else:
        loser = tmp_path / "loser"
        loser.write_bytes(b"second")
        assert not rename_no_replace(loser, Path(artifacts_backend.location) / "tenants/acme/cas/x")
    assert backend.read_all("tenants/acme/cas/x") == b"first"


def test_two_workflows_cannot_declare_the_same_asset_key(
    write_workflow: Callable[..., Path],
) -> None:
    text = """
    name: {name}
    steps:
      - id: s
        run: echo
        outputs: [{{name: r, asset_key: shared/report}}]
    """
    first = write_workflow(text.format(name="one"), "one.yaml")
    second = write_workflow(text.format(name="two"), "two.yaml")
    loaded = compile_workflow_files([first, second])
    message = str(loaded.problems[0])
    assert "two.yaml" in message and "asset 'shared/report' is already defined by" in message


def test_the_code_location_stores_outputs_where_maestro_artifacts_points(
    artifacts_backend: ArtifactsBackend, tmp_path: Path
) -> None:
    """`dagster job execute` on the code location (multiprocess executor, one process per
    step): the IO manager comes from the environment, local folder or s3:// alike."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "MAESTRO_WORKFLOWS_DIR": str(workflows),
        "DAGSTER_HOME": str(home),
        "MAESTRO_ARTIFACTS": artifacts_backend.location,
        "MAESTRO_S3_ENDPOINT_URL": artifacts_backend.endpoint_url or "",
    }
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute"]
    command += ["-m", "maestro_defs.definitions", "-j", "artifacts_pipeline"]
    completed = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    store = artifacts_backend.store()
    steps = {info.key.split("/", 4)[4] for info in store.pointers("acme")}
    assert steps == {
        "extract/result.json",
        "extract/outputs/rows.json",
        "transform/result.json",
        "transform/outputs/report.json",
        "notify/result.json",
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["acme", "reports", "daily"]))
        assert event is not None
        assert (
            event.asset_materialization.metadata["sha256"].value
            == hashlib.sha256(b'{"total":6}').hexdigest()
        )


def test_a_re_execution_under_another_tenant_is_refused_and_the_same_tenant_loads(
    write_workflow: Callable[..., Path],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
) -> None:
    """Re-executing tenant acme's run with the tag `maestro/tenant: globex` must not load acme's
    outputs: the loader finds the parent run's tenant and the store refuses, naming both."""
    from tests.support.reexecution import reconstructable_workflow

    job = reconstructable_workflow(
        str(write_workflow(PIPELINE)), artifacts_backend.location, artifacts_backend.endpoint_url
    )
    with dg.execute_job(job, instance) as parent:
        assert parent.success
    options = dg.ReexecutionOptions(parent_run_id=parent.run_id, step_selection=["transform"])

    with dg.execute_job(
        job, instance, tags={"maestro/tenant": "globex"}, reexecution_options=options
    ) as other:
        assert not other.success
        assert step_outcomes(other) == {"transform": "STEP_FAILURE"}  # type: ignore[arg-type]
        failure = next(e for e in other.all_events if e.event_type_value == "STEP_FAILURE")
        text = failure.step_failure_data.error.to_string()
    assert "TenantAccessError" in text and "no artifact pointer" not in text
    assert "tenant 'globex' may not load output 'result' of step 'extract'" in text
    assert f"from run {parent.run_id} of tenant 'acme'" in text
    store = artifacts_backend.store()
    assert not any(other.run_id in info.key for info in store.pointers("globex"))

    with dg.execute_job(job, instance, reexecution_options=options) as same:
        assert same.success
        assert same.output_for_node("transform") == {"total": 6}  # loaded acme's `extract`
    pointer = store.read_pointer("acme", pointer_key("acme", same.run_id, "transform", "result"))
    extract = store.read_pointer("acme", pointer_key("acme", parent.run_id, "extract", "result"))
    assert pointer.upstream == {"from_extract": extract.sha256}


FILES = """
name: files
tenant: globex
params:
  name: {{type: string, default: report}}
steps:
  - id: make
    run: shell
    with:
      command: "mkdir -p out && yes maestro | head -c {size} > out/{{{{ params.name }}}}.csv"
      shell: true
      cwd: {cwd}
    outputs:
      - name: report
        path: "out/{{{{ params.name }}}}.csv"
  - id: use
    run: echo
    with:
      sha256: "{{{{ steps.make.output.report.sha256 }}}}"
      size: "{{{{ steps.make.output.report.size }}}}"
      uri: "{{{{ steps.make.output.report.uri }}}}"
      exit_code: "{{{{ steps.make.output.exit_code }}}}"
"""


def _materialisation(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(
        dg.AssetKey(["maestro", "files", "make", "report"])
    )
    assert event is not None and event.run_id == run_id
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_file_output_is_streamed_in_once_and_templates_see_its_pointer(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    size = 3 * 1024 * 1024 + 17
    work = tmp_path / "work"
    work.mkdir()
    workflow = compile_yaml(FILES.format(size=size, cwd=work))
    first = run_with(workflow, artifacts_backend, instance)
    assert first.success
    written = work / "out" / "report.csv"
    sha = hashlib.sha256(written.read_bytes()).hexdigest()
    used = first.output_for_node("use")
    assert used["sha256"] == sha and used["size"] == size and used["exit_code"] == 0
    assert used["uri"].endswith(f"tenants/globex/cas/sha256/{sha[:2]}/{sha}")

    store = artifacts_backend.store()
    assert contents(store, "globex").count(content_key("globex", sha)) == 1
    pointer = store.read_pointer(
        "globex", pointer_key("globex", first.run_id, "make", "outputs/report")
    )
    assert (pointer.sha256, pointer.size, pointer.serializer) == (sha, size, "bytes")
    assert pointer.media_type == "text/csv"
    copy = store.save_to("globex", sha, tmp_path / "copy.csv")  # raw bytes, verified
    assert copy.read_bytes() == written.read_bytes()
    metadata = _materialisation(instance, first.run_id)
    assert (metadata["sha256"], metadata["size"], metadata["serializer"]) == (sha, size, "bytes")
    assert metadata["media_type"] == "text/csv" and metadata["dedup"] is False
    assert metadata["path"] == str(written)

    before = contents(store, "globex")
    second = run_with(workflow, artifacts_backend, instance)
    assert second.success
    assert contents(store, "globex") == before  # the same file again: nothing written
    assert _materialisation(instance, second.run_id)["dedup"] is True

    artifacts_backend.corrupt(content_key("globex", sha))
    with pytest.raises(ArtifactCorruptedError, match=sha):
        store.save_to("globex", sha, tmp_path / "again.csv")
    assert not (tmp_path / "again.csv").exists()
    problems = verify_all(store, ["globex"])
    assert len(problems) == 1 and sha in problems[0]


def test_a_missing_file_output_fails_the_step_naming_output_and_path(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    workflow = compile_yaml(
        FILES.format(size=10, cwd=tmp_path).replace("> out/", "> /dev/null; : out/")
    )
    result = run_with(workflow, artifacts_backend, instance)
    assert step_outcomes(result) == {"make": "STEP_FAILURE"}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.error.to_string()
    expected = "output 'report': step 'make' succeeded but its file 'out/report.csv' ("
    assert expected in text and f"{tmp_path}/out/report.csv) does not exist" in text
    assert list(artifacts_backend.store().pointers("globex")) == []  # nothing half-written


def test_file_outputs_need_the_content_store(run_yaml: Callable[..., Any], tmp_path: Path) -> None:
    result = run_yaml(FILES.format(size=10, cwd=tmp_path))  # Dagster's in-memory IO manager
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "they need the content store" in failure.step_failure_data.error.to_string()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{name: r, path: ''}", "steps[0].outputs[0].path: path is empty"),
        ("{name: r, path: out/}", "steps[0].outputs[0].path: path 'out/' names a folder"),
        ("{name: r, path: 7}", "steps[0].outputs[0].path: Input should be a valid string"),
        ("{name: r, path: '{{ steps.nope.output }}'}", "outputs[0].path: unknown step 'nope'"),
        ("{name: r, path: '{{ params.p }}'}", "steps[0].outputs[0].path: unknown param 'p'"),
        ("{name: r, path: 'a/{{ x'}", "steps[0].outputs[0].path: "),
        ("{name: r, path: '{{ item }}.txt'}", "'item' exists only in for_each steps"),
    ],
)
def test_bad_file_output_paths_are_positioned_errors(
    compile_yaml: Callable[..., CompiledWorkflow], output: str, message: str
) -> None:
    text = f"""
    name: bad-paths
    steps:
      - id: s
        run: echo
        outputs: [{output}]
    """
    with pytest.raises(WorkflowCompileError) as caught:
        compile_yaml(text)
    rendered = "\n".join(str(d) for d in caught.value.diagnostics)
    assert "workflow.yaml:5:" in rendered and message in rendered, rendered


def test_file_outputs_on_for_each_steps_are_refused(
    compile_yaml: Callable[..., CompiledWorkflow],
) -> None:
    with pytest.raises(WorkflowCompileError) as caught:
        compile_yaml(
            """
            name: bad-each
            steps:
              - id: s
                run: echo
                for_each: [a, b]
                outputs:
                  - {name: r, path: out.txt}
            """
        )
    rendered = str(caught.value.diagnostics[0])
    assert "workflow.yaml:7:" in rendered and "steps[0].outputs[0].path" in rendered
    assert "not supported on for_each steps" in rendered


def test_a_large_file_output_streams_without_holding_it_in_memory(
    compile_yaml: Callable[..., CompiledWorkflow],
    artifacts_backend: ArtifactsBackend,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    """Local: 72 MiB (above the 64 MiB S3 multipart threshold). S3: 40 MiB with the threshold
    lowered to 8 MiB, so it goes up in 5 MiB parts (two parts are in memory at a time).
    Python's peak allocation grows by well under the file's size over a run storing a 1 KiB
    file (that baseline holds Dagster's and boto3's own allocations): the file is never read
    whole."""
    import tracemalloc

    local = artifacts_backend.kind == "local"
    size = (72 if local else 40) * 1024 * 1024
    io_manager = ArtifactsIOManager(
        location=artifacts_backend.location,
        s3_endpoint_url=artifacts_backend.endpoint_url,
        s3_multipart_threshold=8 * 1024 * 1024,
        s3_part_size=5 * 1024 * 1024,
    )

    def peak_of_run(file_size: int) -> tuple[int, dg.ExecuteInProcessResult]:
        work = tmp_path / str(file_size)
        work.mkdir()
        workflow = compile_yaml(FILES.format(size=file_size, cwd=work))
        tracemalloc.start()
        try:
            result = workflow.job.execute_in_process(
                instance=instance, resources={"io_manager": io_manager}, raise_on_error=False
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.success
        return peak, result

    baseline, _ = peak_of_run(1024)
    peak, result = peak_of_run(size)
    growth = peak - baseline
    assert growth < size / 3, (
        f"peak {peak / 2**20:.1f} MiB vs {baseline / 2**20:.1f} MiB for a 1 KiB file: "
        f"+{growth / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
    )
    report = result.output_for_node("make")["report"]
    assert report["size"] == size
    store = io_manager.open_store()
    copy = store.save_to("globex", report["sha256"], tmp_path / "copy.csv")
    assert copy.stat().st_size == size
