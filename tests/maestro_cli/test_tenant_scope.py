"""`--tenant` / MAESTRO_TENANT scopes the CLI to one tenant: with B given, A's runs, logs,
artifacts, decisions, requests and costs are not shown, and A's run reads as missing."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.cli import run_maestro
from tests.support.observed import sqlite_home


def _workflow(folder: Path, tenant: str, marker: str) -> Path:
    path = folder / f"{tenant}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: wf-{tenant}
            tenant: {tenant}
            steps:
              - {{id: say, run: echo, with: {{said: {marker}}}}}
            """
        )
    )
    return path


def _run_id(out: str) -> str:
    return next(x for x in out.splitlines() if x.startswith("run ")).split()[1].rstrip(":")


def test_tenant_b_sees_nothing_of_tenant_a(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path / "home")
    a_marker, b_marker = "acme-private-words", "globex-words"

    def maestro(*args: str, tenant: str | None = None) -> tuple[int, str]:
        env = {"MAESTRO_WORKFLOWS_DIR": str(tmp_path)}
        if tenant:
            env["MAESTRO_TENANT"] = tenant
        done = run_maestro(*args, cwd=tmp_path, home=home, env=env)
        return done.returncode, done.stdout + done.stderr

    code, out = maestro("run", str(_workflow(tmp_path, "acme", a_marker)))
    assert code == 0, out
    a_run = _run_id(out)
    code, out = maestro("run", str(_workflow(tmp_path, "globex", b_marker)))
    assert code == 0, out
    b_run = _run_id(out)
    code, out = maestro("submit", str(_workflow(tmp_path, "acme", a_marker)))
    assert code == 0, out

    # Unscoped (the operator): both tenants are there.
    assert {a_run, b_run} <= set(maestro("runs")[1].split())
    assert "wf_acme" in maestro("logs", a_run)[1]
    assert "acme" in maestro("requests")[1] and "acme" in maestro("decisions")[1]
    assert f"/runs/{a_run}/" in maestro("artifacts", "ls")[1]

    # As globex, by option and by environment variable.
    for scoped in (("--tenant", "globex"), ()):
        tenant = None if scoped else "globex"

        def as_b(
            command: str,
            *args: str,
            scoped: tuple[str, ...] = scoped,
            tenant: str | None = tenant,
        ) -> tuple[int, str]:
            return maestro(command, *args, *scoped, tenant=tenant)

        runs = as_b("runs")[1]
        assert b_run in runs and a_run not in runs
        for command in ("status", "logs", "cancel"):
            code, out = as_b(command, a_run)
            assert code == 1 and f"no run {a_run} in this instance" in out, (command, out)
            assert "wf_acme" not in out and "wf-acme" not in out
        assert as_b("status", b_run)[0] == 0
        assert "wf_globex" in as_b("logs", b_run)[1]
        latest = as_b("status")[1]
        assert latest.startswith(f"run {b_run}:")
        artifacts = as_b("artifacts", "ls")[1]
        assert f"/runs/{b_run}/" in artifacts and a_run not in artifacts
        assert "acme" not in as_b("requests")[1]
        decisions = as_b("decisions")[1]
        assert "globex" in decisions and "acme" not in decisions
        assert "acme" not in as_b("costs")[1]
    # A's run was not cancelled by B's attempt.
    assert maestro("status", a_run)[1].startswith(f"run {a_run}: SUCCESS")
