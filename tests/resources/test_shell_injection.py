"""Shell injection, in every form a shell step accepts: hostile values must stay data.

Each hostile value tries to create a canary file (command substitution, backticks, quotes
closed early, a line break that ends a comment or a heredoc); after real runs of every form the
canary must not exist and each step must print the value exactly. Plain `shlex.quote` (what
Maestro did before) lets the heredoc and comment forms run the injected commands.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from maestro_common.shell_script import ShellScriptError, check_source
from yaml_compiler.templating import render_string

Runner = Callable[..., dg.ExecuteInProcessResult]


def hostile_values(canary: Path) -> list[str]:
    touch = f"touch {canary}"
    return [
        f"$({touch})",
        f"`{touch}`",
        f"a'; {touch}; echo '",
        f'a"; {touch}; echo "',
        f"a\n{touch}\n",
        f"a\nEOF\n{touch} #",
        f"\tEOF\n{touch}; cat <<'EOF'",
        f"}}$({touch})${{x",
        f'a\' "$({touch})" `{touch}` ; {touch} #\n{touch}',
    ]


FORMS = """
name: injection
params:
  v: {type: string, required: true}
steps:
  - id: argv_list
    run: shell
    with:
      command: [printf, "%s", "{{ params.v }}"]
  - id: argv_string
    run: shell
    with:
      command: printf %s {{ params.v }}
  - id: word
    run: shell
    with: {shell: true, command: "printf %s {{ params.v }}"}
  - id: in_double_quotes
    run: shell
    with: {shell: true, command: "printf %s \\"<{{ params.v }}>\\""}
  - id: in_single_quotes
    run: shell
    with: {shell: true, command: "printf %s '<{{ params.v }}>'"}
  - id: in_parameter
    run: shell
    with:
      shell: true
      command: "printf %s ${UNSET_X:-{{ params.v }}} \\"${UNSET_X:-{{ params.v }}}\\""
  - id: in_substitution
    run: shell
    with: {shell: true, command: "printf %s \\"$(printf %s {{ params.v }})\\""}
  - id: heredoc
    run: shell
    with:
      shell: true
      command: |
        cat <<EOF
        <{{ params.v }}>
        EOF
  - id: heredoc_tabs
    run: shell
    with:
      shell: true
      command: "cat <<-EOF\\n\\t<{{ params.v }}>\\n\\tEOF\\n"
  - id: after_a_comment_line
    run: shell
    with:
      shell: true
      command: |
        # print the value
        printf %s {{ params.v }} # done
  - id: loop
    run: shell
    with:
      shell: true
      command: |
        {% for word in [params.v, params.v] %}printf %s {{ word }}
        {% endfor %}
  - id: env
    run: shell
    with:
      shell: true
      command: printf %s "$VALUE"
      env: {VALUE: "{{ params.v }}"}
"""

OUTPUTS = {
    "argv_list": "{v}",
    "argv_string": "{v}",
    "word": "{v}",
    "in_double_quotes": "<{v}>",
    "in_single_quotes": "<{v}>",
    "in_parameter": "{v}{v}",
    "in_substitution": "{v}",
    "heredoc": "<{v}>\n",
    "heredoc_tabs": "<{v}>\n",
    "after_a_comment_line": "{v}",
    "loop": "{v}{v}",
    "env": "{v}",
}


@pytest.mark.parametrize("index", range(len(hostile_values(Path("x")))))
def test_hostile_values_stay_data_in_every_form(
    run_yaml: Runner, tmp_path: Path, index: int
) -> None:
    canary = tmp_path / "canary"
    value = hostile_values(canary)[index]
    result = run_yaml(FORMS, {"v": value})
    assert not canary.exists()
    assert result.success
    for step, expected in OUTPUTS.items():
        got = result.output_for_node(step)["stdout"]
        if step == "heredoc_tabs":  # <<- strips leading tabs of the value's lines too
            want = "\n".join(line.lstrip("\t") for line in f"<{value}>".split("\n")) + "\n"
        elif step == "in_parameter":  # unquoted ${X:-word}: the word's quotes are kept whole
            want = value + value
        elif step == "in_substitution":  # $( ) drops trailing line breaks
            want = value.rstrip("\n")
        else:
            want = expected.replace("{v}", value)
        assert got == want, step


QUOTED_HEREDOC = """
name: quoted_heredoc
params:
  v: {type: string, required: true}
steps:
  - id: s
    run: shell
    with:
      shell: true
      command: |
        cat <<'EOF'
        {{ params.v }}
        EOF
"""


def test_a_quoted_heredoc_gets_the_value_as_its_text(run_yaml: Runner, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    value = f"$(touch {canary}) `touch {canary}` '\"\n{{}}\n  EOF x"
    result = run_yaml(QUOTED_HEREDOC, {"v": value})
    assert result.success
    assert result.output_for_node("s")["stdout"] == value + "\n"
    assert not canary.exists()


def test_a_value_that_would_end_a_quoted_heredoc_fails_the_step(
    run_yaml: Runner, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    result = run_yaml(QUOTED_HEREDOC, {"v": f"x\nEOF\ntouch {canary}"})
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "would end it early" in str(failure.step_failure_data.error)
    assert not canary.exists()


def test_a_hostile_cwd_is_a_directory_name_not_a_command(run_yaml: Runner, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    text = """
    name: cwd
    params:
      v: {type: string, required: true}
    steps:
      - id: s
        run: shell
        with: {shell: true, command: "pwd", cwd: "{{ params.v }}"}
    """
    result = run_yaml(textwrap.dedent(text), {"v": f"/tmp; touch {canary}; $(touch {canary})"})
    assert not result.success
    assert not canary.exists()
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "cwd does not exist" in str(failure.step_failure_data.error)


# ---------------------------------------------------------------- the binder alone


def _run_script(source: str, value: str) -> subprocess.CompletedProcess[str]:
    script = render_string(source, {"v": value}, shell_quoted=True)
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True)


@pytest.mark.parametrize(
    "source",
    [
        "cat <<EOF\n{{ v }}\nEOF\n",
        'cat << "E"OF\n{{ v }}\nEOF\n',
        "cat <<A; cat <<'B'\n{{ v }}\nA\n{{ v }}\nB\n",
        "echo x; : '{{ v }}'; printf %s\\\n {{ v }}",
        "f() { printf %s {{ v }}; }; f other",
        'case {{ v }} in *) printf %s "{{ v }}";; esac',
    ],
)
def test_more_shapes_keep_the_value_literal(source: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    for value in hostile_values(canary):
        try:
            _run_script(source, value)
        except ShellScriptError as exc:  # only a value that would end a quoted heredoc
            assert "would end it early" in str(exc)
        assert not canary.exists(), (source, value)


@pytest.mark.parametrize(
    "source",
    [
        "echo ok # {{ v }}",
        "echo ok\n  #{{ v }}\n",
        "echo `echo {{ v }}`",
        'echo "`echo {{ v }}`"',
        "echo $(( {{ v }} ))",
        "cat <<{{ v }}\nx\n",
        "cat <<EOF\n{{ v }}\n",
        'echo "{{ v }}',
        "echo $(echo {{ v }}",
    ],
)
def test_places_without_a_safe_value_are_refused(source: str) -> None:
    with pytest.raises(ShellScriptError):
        check_source(source)


@pytest.mark.parametrize(
    "source",
    ["echo a#{{ v }}", "echo ${X#a} {{ v }}", "echo $# {{ v }}", 'echo "# {{ v }}"'],
)
def test_a_hash_inside_a_word_is_no_comment(source: str, tmp_path: Path) -> None:
    check_source(source)
    canary = tmp_path / "canary"
    for value in hostile_values(canary):
        _run_script(source, value)
        assert not canary.exists()
