"""Hostile and careless input: every case is a positioned diagnostic, never a traceback.

Each test names the class of problem it covers (alias bombs, tags, bytes, bounds); the exact
cases reported in issue 15 are kept apart from the suite, so these are siblings, not copies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.compiling import plan_text
from yaml_compiler import WorkflowCompileError
from yaml_compiler.compiler import read_workflow_file
from yaml_compiler.source import (
    MAX_ALIAS_VALUES,
    MAX_DOCUMENT_BYTES,
    MAX_NESTING,
    MAX_VALUES,
    load_yaml,
)
from yaml_compiler.spec import MAX_ID_LENGTH

FILE = "wf.yaml"
REPO = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[str]:
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(textwrap.dedent(text).lstrip("\n"), FILE)
    return [str(d) for d in caught.value.diagnostics]


def one_error(text: str) -> str:
    found = errors(text)
    assert len(found) == 1, found
    return found[0]


STEP = "name: x\nsteps:\n  - id: a\n    run: echo\n"


# ---------------------------------------------------------------- alias bombs and size


def _laughs(levels: int, fan_out: int) -> str:
    """A "billion laughs": each level lists the previous one `fan_out` times."""
    lines = ["name: x", "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(f"lol{level}: &l{level} [{refs}]")
    lines += ["steps:", "  - run: echo"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_where_it_crosses_the_value_limit() -> None:
    message = one_error(_laughs(levels=9, fan_out=10))  # 10**9 values once expanded
    assert message.startswith(f"{FILE}:")
    assert f"aliases and << merges expand to more than {MAX_ALIAS_VALUES:,} values" in message
    line = int(message.split(":")[1])
    assert 2 <= line <= 10  # on one of the lolN lines, not at 1:1


def test_merge_keys_are_counted_like_aliases() -> None:
    lines = ["name: x", "m0: &m0 {a: 1, b: 2, c: 3, d: 4}"]
    for level in range(1, 16):
        lines.append(f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 8)}]}}")
    lines += ["steps:", "  - run: echo"]
    assert "merges expand to more than" in one_error("\n".join(lines) + "\n")


def test_the_bomb_ends_inside_a_small_memory_and_cpu_limit() -> None:
    """A child process gets 400 MB of address space and 20 s of CPU: the refusal must come
    well inside both (the unbounded loader needed 10+ s and over 1 GB)."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (400 * 2**20, 400 * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        sys.path.insert(0, {str(REPO)!r})
        from yaml_compiler.source import load_yaml
        from yaml_compiler import WorkflowCompileError
        text = {_laughs(levels=12, fan_out=10)!r}
        try:
            load_yaml(text, "bomb.yaml")
        except WorkflowCompileError as exc:
            print(exc.diagnostics[0])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("bomb.yaml:") and "expand to more than" in done.stdout


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    line = "# " + "x" * 98 + "\n"
    text = STEP + line * (MAX_DOCUMENT_BYTES // len(line) + 10)
    [diagnostic] = errors(text)
    assert f"the limit is {MAX_DOCUMENT_BYTES // 1024} KiB" in diagnostic
    assert diagnostic.startswith(f"{FILE}:{MAX_DOCUMENT_BYTES // len(line) + 1}:1: <root>:") or (
        diagnostic.startswith(f"{FILE}:{MAX_DOCUMENT_BYTES // len(line) + 5}:1: <root>:")
    )


def test_a_huge_file_is_not_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.write(STEP.encode())
        file.seek(50 * 2**30)  # a sparse 50 GiB file: reading it would take minutes
        file.write(b"\n")
    with pytest.raises(WorkflowCompileError) as caught:
        read_workflow_file(path)
    assert "larger than the limit" in str(caught.value)


def test_a_large_document_without_aliases_is_bounded_by_its_values() -> None:
    """Under the size limit but dense: refused by the total, not the alias, count."""
    values = ", ".join("1" for _ in range(MAX_VALUES + 10))
    message = one_error(f"name: x\nsteps:\n  - run: echo\n    with: {{a: [{values}]}}\n")
    assert message.startswith(f"{FILE}:4:") and f"more than {MAX_VALUES:,} values" in message


def test_deep_nesting_is_a_positioned_diagnostic() -> None:
    depth = MAX_NESTING + 5
    message = one_error(STEP + "    with:\n      a: " + "[" * depth + "]" * depth + "\n")
    assert message.startswith(f"{FILE}:6:") and f"nested more than {MAX_NESTING}" in message
    libyaml_limit = one_error(STEP + "    with:\n      a: " + "[" * 2000 + "]" * 2000 + "\n")
    assert libyaml_limit.startswith(f"{FILE}:6:") and "maximum nesting depth" in libyaml_limit


# ---------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("value", "tag", "kind"),
    [
        (
            "!!python/object/apply:os.system ['touch /tmp/x']",
            "!!python/object/apply:os.system",
            "a list",
        ),
        ("!!python/name:os.system", "!!python/name:os.system", "a value"),
        ("!!python/object:builtins.dict {a: 1}", "!!python/object:builtins.dict", "a mapping"),
        ("!custom text", "!custom", "a value"),
        ("!custom {a: 1}", "!custom", "a mapping"),
        ("!custom [1, 2]", "!custom", "a list"),
        ("!!binary aGVsbG8=", "!!binary", "a value"),
        ("!!set {a, b}", "!!set", "a mapping"),
        ("!!omap [{a: 1}]", "!!omap", "a list"),
        ("!<tag:example.com,2000:thing> x", "tag:example.com,2000:thing", "a value"),
    ],
)
def test_non_standard_tags_are_refused_at_their_position(value: str, tag: str, kind: str) -> None:
    message = one_error(STEP + f"    with:\n      a: {value}\n")
    assert message == (
        f"{FILE}:6:10: steps[0].with.a: YAML tag {tag!r} on {kind} is not allowed; use only "
        "the standard tags (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"
    )


def test_a_tag_on_a_whole_section_is_refused() -> None:
    assert one_error("name: x\nsteps: !list\n  - run: echo\n").startswith(
        f"{FILE}:2:8: steps: YAML tag '!list' on a list"
    )


def test_standard_tags_still_work() -> None:
    doc = load_yaml("a: !!str 1\nb: !!int '2'\nc: !!float 3\nd: ! x\ne: !!null ''\n", FILE)
    assert doc.value == {"a": "1", "b": 2, "c": 3.0, "d": "x", "e": None}


def test_a_value_that_does_not_fit_its_standard_tag_is_positioned() -> None:
    assert one_error(STEP + "    with: {a: !!int abc}\n") == (
        f"{FILE}:5:15: steps[0].with.a: 'abc' is not a valid !!int"
    )


# ---------------------------------------------------------------- bytes and characters


@pytest.mark.parametrize(
    ("character", "name"),
    [
        ("\x00", "a NUL byte"),
        ("\x07", "control character U+0007"),
        ("\x1b", "control character U+001B"),
    ],
)
def test_control_characters_are_reported_at_their_line_and_column(
    character: str, name: str
) -> None:
    text = STEP + f"    with:\n      greeting: héllo {character}there\n"
    assert (
        one_error(text)
        == f"{FILE}:6:23: <root>: invalid YAML: {name} is not allowed in a YAML file"
    )


def test_a_nul_written_as_an_escape_is_refused_in_the_value() -> None:
    assert one_error(STEP + '    with: {a: "x\\0y"}\n') == (
        f"{FILE}:5:15: steps[0].with.a: a NUL character (\\0) is not allowed in a value"
    )


def test_bytes_that_are_not_utf8_are_reported_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(STEP.encode() + "    with: {city: Zürich}\n".encode("latin-1"))
    with pytest.raises(WorkflowCompileError) as caught:
        read_workflow_file(path)
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.col) == (5, 19)
    assert "not UTF-8 text: byte(s) fc" in diagnostic.message


def test_a_lone_surrogate_in_text_is_positioned() -> None:
    text = STEP + "    with: {a: b\udcffc}\n"
    assert one_error(text) == (
        f"{FILE}:5:16: <root>: invalid text: character '\\udcff' is not valid Unicode"
    )


def test_a_tab_indent_says_so() -> None:
    message = one_error("name: x\nsteps:\n\t- run: echo\n")
    assert message.startswith(f"{FILE}:3:1: <root>: invalid YAML:")
    assert "(a tab: YAML is indented with spaces)" in message


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "    timeout: 1000000d",
            "steps[0].timeout: duration '1000000d' is longer than the limit of 365d",
        ),
        (
            "    timeout: 1.0e+300",
            "steps[0].timeout: duration 1e+300 is longer than the limit of 365d",
        ),
        ("    timeout: .inf", "steps[0].timeout: a duration is a finite number of seconds"),
        ("    timeout: " + "9" * 400 + "s", "steps[0].timeout: duration '99999999999999999999999"),
        (
            "    timeout: 8d",
            "steps[0].timeout: a step timeout of 8d is longer than the limit of 7d",
        ),
        ("    timeout_ms: 1.0e+12", "steps[0].timeout_ms: duration 1000000000.0 is longer"),
        (
            "    retry: {max_attempts: 2, backoff: 2d}",
            "steps[0].retry.backoff: a retry backoff of 2d is longer than the limit of 1d",
        ),
        (
            "    retry: {max_attempts: 30, backoff: 1s, exponential: true}",
            "steps[0].retry: with exponential backoff the last of 29 retries would wait",
        ),
    ],
)
def test_absurd_step_durations_are_refused_with_the_bound(field: str, message: str) -> None:
    diagnostic = one_error(STEP + field + "\n")
    assert diagnostic.startswith(f"{FILE}:5:") and message in diagnostic, diagnostic


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("timeout: 31d", "timeout: a workflow time limit of 31d is longer than the limit of 30d"),
        ("global_timeout_ms: 1.0e+15", "global_timeout_ms: duration 1000000000000.0 is longer"),
        ("budget: {max_duration: 40d}", "budget.max_duration: a workflow time limit of 40d"),
        ("defaults: {timeout: 10d}", "defaults.timeout: a step timeout of 10d"),
        ("budget: {max_cost_usd: .inf}", "budget.max_cost_usd: Input should be a finite number"),
    ],
)
def test_absurd_workflow_limits_are_refused(field: str, message: str) -> None:
    diagnostic = one_error(f"name: x\n{field}\nsteps:\n  - run: echo\n")
    assert diagnostic.startswith(f"{FILE}:2:") and message in diagnostic, diagnostic


def test_limits_at_the_bound_are_accepted() -> None:
    plan = plan_text(
        "name: x\ntimeout: 30d\nsteps:\n  - id: a\n    run: echo\n    timeout: 7d\n"
        "    retry: {max_attempts: 5, backoff: 1h, exponential: true}\n",
        FILE,
    )
    assert plan.steps[0].timeout == 7 * 86400 and plan.spec.timeout == 30 * 86400


# ---------------------------------------------------------------- ids, names and tags


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"name: {'w' * 65}\nsteps:\n  - run: echo\n", "1:1: name:"),
        (f"name: x\ntenant: {'t' * 65}\nsteps:\n  - run: echo\n", "2:1: tenant:"),
        (f"name: x\nsteps:\n  - id: {'s' * 300}\n    run: echo\n", "3:5: steps[0].id:"),
        (
            f"name: x\nstages:\n  - name: {'g' * 65}\n    steps: [{{run: echo}}]\n",
            "3:5: stages[0].name:",
        ),
        (f"name: x\nparams:\n  {'p' * 65}: 1\nsteps:\n  - run: echo\n", f"3:3: params.{'p' * 65}:"),
        (
            f"name: x\nsteps:\n  - run: echo\n    outputs: [{'o' * 65}]\n",
            "4:15: steps[0].outputs[0]:",
        ),
    ],
)
def test_over_long_ids_and_names_are_refused_with_the_reason(text: str, where: str) -> None:
    message = one_error(text)
    assert message.startswith(f"{FILE}:{where}"), message
    assert f"at most {MAX_ID_LENGTH} characters" in message
    assert "artifact-store file names and database columns" in message


def test_an_id_at_the_limit_is_accepted() -> None:
    plan = plan_text(f"name: {'w' * 64}\nsteps:\n  - id: {'s' * 64}\n    run: echo\n", FILE)
    assert plan.steps[0].id == "s" * 64


@pytest.mark.parametrize(
    "key", ["maestro/tenant", "dagster/max_runtime", "dagster-k8s/config", ".dagster/x"]
)
def test_reserved_tag_namespaces_are_refused(key: str) -> None:
    workflow = one_error(f"name: x\ntags: {{{json.dumps(key)}: v}}\nsteps:\n  - run: echo\n")
    assert workflow.startswith(f"{FILE}:2:1: tags: tag {key!r} is reserved")
    step = one_error(STEP + f"    tags: {{{json.dumps(key)}: v}}\n")
    assert step.startswith(f"{FILE}:5:5: steps[0].tags: tag {key!r} is reserved")


def test_ordinary_tags_with_slashes_are_fine() -> None:
    plan = plan_text(
        "name: x\ntags: {team/owner: data, maestro-ish: y}\nsteps:\n  - run: echo\n", FILE
    )
    assert plan.spec.tags == {"team/owner": "data", "maestro-ish": "y"}


# ---------------------------------------------------------------- file output paths


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "path '/etc/passwd' is absolute"),
        ("~/.ssh/id_rsa", "path '~/.ssh/id_rsa' starts in a home folder"),
        ("../secret.txt", "path '../secret.txt' goes up out of the step's working folder"),
        ("a/../../b.txt", "path 'a/../../b.txt' goes up out of the step's working folder"),
        ("/srv/{{ params.name }}.txt", "path '/srv/' is absolute"),
        ("../{{ params.name }}.txt", "path '../' goes up"),
    ],
)
def test_static_output_paths_leaving_the_working_folder_are_refused(
    path: str, problem: str
) -> None:
    text = (
        "name: x\nparams: {name: r}\nsteps:\n  - id: a\n    run: echo\n"
        f"    outputs:\n      - {{name: r, path: {json.dumps(path)}}}\n"
    )
    message = one_error(text)
    assert message.startswith(f"{FILE}:7:19: steps[0].outputs[0].path: {problem}"), message
    assert "set allow_outside: true" in message


def test_output_paths_are_normalised_and_allow_outside_lets_them_out() -> None:
    text = (
        "name: x\nsteps:\n  - id: a\n    run: echo\n    outputs:\n"
        "      - {name: r, path: sub/../report.txt}\n"
        "      - {name: s, path: /var/data/out.csv, allow_outside: true}\n"
    )
    plan = plan_text(text, FILE)
    assert [o.path for o in plan.steps[0].outputs] == ["report.txt", "/var/data/out.csv"]
    assert plan.to_dict()["steps"][0]["outputs"][0] == {
        "name": "r",
        "asset_key": "maestro/x/a/r",
        "path": "report.txt",
    }


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_unicode_line_separators_do_not_shift_line_numbers(separator: str) -> None:
    """libyaml counts NEL, LS and PS as line breaks; editors do not (found by the fuzzer: a
    diagnostic pointed past the end of the file)."""
    text = f'name: x\ndescription: "a{separator}b"\nsteps:\n  - run: echo\n    bogus: 1\n'
    assert one_error(text) == f"{FILE}:5:5: steps[0].bogus: unknown field"
    broken = f'name: x\ndescription: "a{separator}b"\nsteps:\n  - run: echo\n   with: {{}}\n'
    assert one_error(broken).startswith(f"{FILE}:5:4: <root>: invalid YAML:")


def test_dagster_priority_is_a_tag_workflows_may_set() -> None:
    """`dagster/priority` orders runs in the queue and ready steps in the executor; it reaches
    no other tenant and no pod spec, so it is the one Dagster tag a workflow may set."""
    plan = plan_text(
        "name: x\ntags: {dagster/priority: '5'}\n"
        "steps:\n  - run: echo\n    tags: {dagster/priority: '-1'}\n",
        FILE,
    )
    assert plan.spec.tags == {"dagster/priority": "5"}
    assert plan.steps[0].tags == {"dagster/priority": "-1"}
