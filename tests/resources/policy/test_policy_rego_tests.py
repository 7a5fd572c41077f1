"""`maestro policies test`: the Rego unit tests in policies/**/*_test.rego run through regopy,
on the shipped policies (all pass, every deny reason covered) and on broken copies."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from resources.policy.rego_tests import run_tests
from tests.support.paths import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"


def _maestro_policies_test(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maestro_cli", "policies", "test", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MAESTRO_POLICY_DIR": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(POLICIES, tmp_path / "policies"))


def test_the_shipped_rego_tests_all_pass_and_cover_every_deny_reason() -> None:
    done = _maestro_policies_test()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert "PASS  maestro.step_test.test_plugin_not_allowed" in done.stdout
    assert "PASS  maestro.workflow_test.test_max_concurrent_runs_retries_later" in done.stdout
    for package in ("step", "workflow"):
        rules = set(
            re.findall(r'sprintf\(\s*"(\w+): ', (POLICIES / f"maestro/{package}.rego").read_text())
        )
        tested = (POLICIES / f"maestro/{package}_test.rego").read_text()
        untested = {rule for rule in rules if f"{rule}: " not in tested}
        assert rules and not untested, f"maestro.{package}: no test for {sorted(untested)}"


def test_a_broken_policy_fails_the_test_that_covers_it_by_name(tmp_path: Path) -> None:
    policies = _copy(tmp_path)
    step = policies / "maestro/step.rego"
    text = step.read_text()
    # the plugin rule now checks the model list: plugins are never refused
    broken = text.replace(
        "not lib.allowed(tenant.allowed_plugins, step.plugin)",
        "not lib.allowed(tenant.allowed_models, tenant.allowed_models[0])",
    )
    assert broken != text
    step.write_text(broken)
    done = _maestro_policies_test("--dir", str(policies))
    assert done.returncode == 1, done.stdout + done.stderr
    failing = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1, done.stdout
    assert failing[0].startswith("FAIL  maestro.step_test.test_plugin_not_allowed  (")
    assert "step_test.rego:" in failing[0] and failing[0].endswith(": undefined")
    assert done.stdout.splitlines()[-1].endswith("passed, 1 failed")


def test_a_wrong_expectation_and_unsupported_forms_are_failures(tmp_path: Path) -> None:
    policies = _copy(tmp_path)
    (policies / "maestro/extra_test.rego").write_text(
        "package maestro.extra_test\n\n"
        "import data.maestro.step\n"
        "import rego.v1\n\n"
        'shell_input := {"tenant": "acme", "run_tenant": "acme", "environment": "prod",\n'
        '\t"step": {"id": "s", "plugin": "shell", "models": [], "hosts": [], "secrets": [],\n'
        '\t"estimated_cost_usd": 0}, "run": {"spend_usd": 0, "budget_usd": null},\n'
        '\t"tenant_spend_usd": 0}\n\n'
        "test_shell_is_allowed if {\n"
        "\td := step.decision with input as shell_input\n"
        "\td.allow\n"
        "}\n\n"
        "test_shell_is_refused if {\n"
        "\td := step.decision with input as shell_input\n"
        "\tnot d.allow\n"
        "}\n\n"
        "test_with_data if {\n"
        "\td := step.decision with input as shell_input with data.tenants as {}\n"
        "\tnot d.allow\n"
        "}\n\n"
        "test_missing_input if {\n"
        "\td := step.decision with input as no_such_rule\n"
        "\td.allow\n"
        "}\n\n"
        "test_false := false\n"
    )
    results = {
        r.test.name: r for r in run_tests(policies, pattern="^test_(shell|with|missing|false)")
    }
    assert sorted(results) == [
        "test_false",
        "test_missing_input",
        "test_shell_is_allowed",
        "test_shell_is_refused",
        "test_with_data",
    ]
    assert results["test_shell_is_refused"].passed
    assert not results["test_shell_is_allowed"].passed
    assert results["test_shell_is_allowed"].detail == "undefined"
    assert not results["test_false"].passed  # rego-cpp answers a false rule as undefined
    assert "with data.tenants as" in results["test_with_data"].detail
    assert results["test_missing_input"].detail == "input rule no_such_rule: undefined"
    assert results["test_shell_is_allowed"].test.line == 11
