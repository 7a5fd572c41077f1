"""A canary secret never appears anywhere a run leaves text: a real `maestro run` that uses it
(in a command, a file output's path and contents, a returned value, `for_each` items, what a
`python` step prints, a failing step's error) and fails; then every byte under DAGSTER_HOME
(SQLite event log, runs, tags, policy decisions, compute logs, the artifact store) and the
output of `maestro run`, `plan`, `status`, `logs`, `runs`, `artifacts ls` is scanned for the
canary's value."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

from tests.support.cli import run_maestro
from tests.support.observed import sqlite_home

WORKFLOW = """\
name: canary
secrets: [MAESTRO_CANARY]
on_failure: continue  # `keeps` fails (its file holds the secret); the others still run
steps:
  - id: leak
    run: shell
    with:
      shell: true
      cwd: "{work}"
      command: |
        echo "token {{{{ secrets.MAESTRO_CANARY }}}}"
        echo "to stderr {{{{ secrets.MAESTRO_CANARY }}}}" >&2
        mkdir -p out && echo report > "out/{{{{ secrets.MAESTRO_CANARY }}}}.txt"
    outputs:
      - {{name: report, path: "out/{{{{ secrets.MAESTRO_CANARY }}}}.txt"}}
  - id: returns
    run: echo
    with:
      token: "{{{{ secrets.MAESTRO_CANARY }}}}"
      nested: {{list: ["a {{{{ secrets.MAESTRO_CANARY }}}} b"]}}
  - id: fan
    for_each: ["{{{{ secrets.MAESTRO_CANARY }}}}", "plain"]
    run: echo
    with: {{item: "{{{{ item }}}}"}}
  - id: prints
    run: python
    with:
      callable: canary_printer:show
      kwargs: {{token: "{{{{ secrets.MAESTRO_CANARY }}}}"}}
  - id: keeps
    run: shell
    with:
      cwd: "{work}"
      command: ["sh", "-c", "echo 'key={{{{ secrets.MAESTRO_CANARY }}}}' > kept.txt"]
    outputs:
      - {{name: kept, path: kept.txt}}
  - id: fails
    run: shell
    depends_on: [leak, returns, fan]
    with:
      command: ["sh", "-c", "echo failing with {{{{ secrets.MAESTRO_CANARY }}}} >&2; exit 3"]
"""


PRINTER = """\
import sys


def show(token: str) -> dict[str, int]:
    \"\"\"Print the secret whole, in pieces across writes, and to stderr.\"\"\"
    print("printed", token)
    sys.stdout.write(token[:6])
    sys.stdout.flush()
    sys.stdout.write(token[6:] + " in pieces\\n")
    print(f"to stderr {token}", file=sys.stderr)
    return {"length": len(token)}
"""


def _hits(canary: str, folder: Path) -> list[str]:
    needle = canary.encode()
    return [
        str(path) for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()
    ]


def test_a_canary_secret_appears_nowhere(tmp_path: Path) -> None:
    canary = "cnry" + secrets.token_hex(12)
    home = sqlite_home(tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    workflow = tmp_path / "canary.yaml"
    workflow.write_text(WORKFLOW.format(work=work))
    (tmp_path / "canary_printer.py").write_text(PRINTER)  # importable: `maestro run`'s cwd
    env = {"MAESTRO_CANARY": canary}

    def maestro(*args: str) -> str:
        done = run_maestro(*args, cwd=tmp_path, home=home, env=env)
        return done.stdout + done.stderr

    ran = run_maestro("run", str(workflow), cwd=tmp_path, home=home, env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # `fails` fails
    run_id = next(x for x in ran.stdout.splitlines() if x.startswith("run ")).split()[1]
    run_id = run_id.rstrip(":")
    outputs = {
        "run": ran.stdout + ran.stderr,
        "plan": maestro("plan", str(workflow)) + maestro("plan", "--format", "json", str(workflow)),
        "status": maestro("status", run_id),
        "logs": maestro("logs", run_id),
        "runs": maestro("runs"),
        "artifacts": maestro("artifacts", "ls", run_id),
    }
    assert (home / "artifacts").is_dir() and any((home / "artifacts").rglob("*"))
    assert [name for name, text in outputs.items() if canary in text] == []
    assert _hits(canary, home) == []
    # The run did what the canary is meant to test: the secret reached the commands.
    assert (work / "out" / f"{canary}.txt").read_text() == "report\n"
    assert "token ***" in outputs["logs"] and "failing with ***" in outputs["status"]
    assert "output held a declared secret's value" in outputs["logs"]
    assert "for_each items held a declared secret's value" in outputs["logs"]
    assert "printed ***" in outputs["logs"] and "*** in pieces" in outputs["logs"]
    assert "to stderr ***" in outputs["logs"]
    assert (work / "kept.txt").read_text() == f"key={canary}\n"  # refused, not stored:
    assert "output 'kept': the file" in outputs["status"]
    assert "holds a declared secret's value, so it is not stored" in outputs["status"]


def test_the_scan_finds_a_canary_when_it_leaks(tmp_path: Path) -> None:
    """The scan above is not blind: an undeclared secret (not redacted) is found."""
    canary = "cnry" + secrets.token_hex(12)
    home = sqlite_home(tmp_path / "home")
    workflow = tmp_path / "leaky.yaml"
    workflow.write_text(
        textwrap.dedent(
            """\
            name: leaky
            params:
              token: {type: string}
            steps:
              - {id: s, run: echo, with: {token: "{{ params.token }}"}}
            """
        )
    )
    ran = run_maestro("run", str(workflow), "-p", f"token={canary}", cwd=tmp_path, home=home)
    assert ran.returncode == 0, ran.stderr
    assert _hits(canary, home) != []
