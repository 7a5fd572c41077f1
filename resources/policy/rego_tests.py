"""Run the Rego unit tests (`policies/**/*_test.rego`, OPA-style `test_*` rules) with regopy.

regopy has no test runner (no `opa test`), so this one evaluates `data.<package>.test_<name>`
for every test rule: true passes; false, undefined or an error fails.

One rego-cpp gap shapes it: regopy 1.5.2 crashes the process (SIGSEGV, or an abort at `build`)
when an expression under `with input as ...` calls any built-in, which every policy rule does.
So a test names its input as a rule of its package (`d := step.decision with input as
plugin_input`), and the runner evaluates that rule first, sets it as the input, and runs the
test with the `with input as <rule>` clauses removed: the same meaning, without `with`. Tests
stay valid OPA v1 tests. Other `with` targets (`with data.x as ...`) are refused by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from resources.policy.engine import PolicySet

TEST_SUFFIX = "_test.rego"
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_RULE_HEAD = re.compile(r"^(test_\w+)\b", re.MULTILINE)
_TOP_LEVEL = re.compile(r"^[A-Za-z_#]", re.MULTILINE)
_WITH_INPUT = re.compile(r"\s+with\s+input\s+as\s+([A-Za-z_]\w*)\b(?!\s*[.\[(])")
_WITH_ANY = re.compile(r"\bwith\s+([\w.\[\]\"]+)\s+as\b")


@dataclass(frozen=True)
class RegoTest:
    """One `test_*` rule: where it is and which named input it runs under."""

    file: Path
    line: int
    package: str
    name: str
    input_rule: str | None  # the rule named by `with input as <rule>`, if any
    problem: str | None = None  # a form this runner cannot evaluate


@dataclass(frozen=True)
class RegoTestResult:
    test: RegoTest
    passed: bool
    detail: str = ""  # why it failed: false, undefined, or the Rego error


def test_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob(f"*{TEST_SUFFIX}"))


def _rule_bodies(text: str) -> Iterator[tuple[str, int, str]]:
    """(name, line, text) of each top-level `test_*` rule, up to the next top-level line."""
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)] + [len(text)]
    for match in _RULE_HEAD.finditer(text):
        end = next(s for s in starts if s > match.start())  # `}` lines are not starts
        yield match.group(1), text.count("\n", 0, match.start()) + 1, text[match.start() : end]


def discover(path: Path, text: str) -> tuple[list[RegoTest], str]:
    """The tests of one test file, and its text with `with input as <rule>` removed."""
    package_match = _PACKAGE.search(text)
    if package_match is None:
        raise ValueError(f"{path}:1:1: a Rego test file needs a `package` line")
    package = package_match.group(1)
    tests = []
    for name, line, body in _rule_bodies(text):
        inputs = set(_WITH_INPUT.findall(body))
        others = [t for t in _WITH_ANY.findall(body) if t != "input"]
        problem = None
        if others:
            problem = f"`with {others[0]} as ...` is not supported (regopy crashes on `with`)"
        elif len(inputs) > 1:
            problem = f"one named input per test, found {', '.join(sorted(inputs))}"
        elif len(_WITH_ANY.findall(body)) != len(_WITH_INPUT.findall(body)):
            problem = "write `with input as <rule>` with the input as a rule of the package"
        tests.append(RegoTest(path, line, package, name, next(iter(inputs), None), problem))
    return tests, _WITH_INPUT.sub("", text)


def run_tests(
    directory: Path | str | None = None, pattern: str | None = None
) -> list[RegoTestResult]:
    """Evaluate every test rule under `directory` (default: the policy folder) through regopy."""
    import regopy

    policies = PolicySet.load(directory)
    interpreter = regopy.Interpreter()
    interpreter.add_data(dict(policies.data))
    for name, text in policies.modules.items():
        interpreter.add_module(name, text)
    tests: list[RegoTest] = []
    for path in test_files(policies.directory):
        found, rewritten = discover(path, path.read_text(encoding="utf-8"))
        interpreter.add_module(str(path.relative_to(policies.directory)), rewritten)
        tests += [t for t in found if pattern is None or re.search(pattern, t.name)]
    return [_run_one(interpreter, test) for test in tests]


def _value(interpreter: object, query: str) -> tuple[bool, object, str]:
    """(defined, value, error) of a one-expression query."""
    output = interpreter.query(query)  # type: ignore[attr-defined]
    if not output.ok():
        return False, None, str(output).strip()
    text = str(output)
    if text == "undefined":
        return False, None, ""
    expressions = json.loads(text).get("expressions") or []
    return bool(expressions), expressions[0] if expressions else None, ""


def _run_one(interpreter: object, test: RegoTest) -> RegoTestResult:
    if test.problem:
        return RegoTestResult(test, False, test.problem)
    try:
        payload: object = {}
        if test.input_rule is not None:
            defined, payload, error = _value(interpreter, f"data.{test.package}.{test.input_rule}")
            if not defined:
                why = error or "undefined"
                return RegoTestResult(test, False, f"input rule {test.input_rule}: {why}")
        interpreter.set_input(payload)  # type: ignore[attr-defined]
        defined, value, error = _value(interpreter, f"data.{test.package}.{test.name}")
    except Exception as exc:  # a Rego error that regopy raises rather than returns
        return RegoTestResult(test, False, f"{type(exc).__name__}: {exc}")
    if error:
        return RegoTestResult(test, False, error)
    if value is True:
        return RegoTestResult(test, True)
    return RegoTestResult(test, False, "undefined" if not defined else f"{json.dumps(value)}")
