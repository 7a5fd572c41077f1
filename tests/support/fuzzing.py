"""Generated and mutated workflows, `--param` values and templates, and how to judge a case.

Shared by tests/test_fuzz.py (a few hundred cases in CI) and bench/fuzz.py (10,000). A case is
good when it compiles, or when every problem comes back as a positioned Diagnostic (`--param`
problems as a ParamError naming the param; a template that cannot render as the error a step
would report). It fails on any other exception, on going over its time cap, or (judged by the
callers, over many cases) on memory that keeps growing.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from maestro_cli.params import ParamError, parse_params
from maestro_common.template_sandbox import render_limits
from resources.plugins import default_registry
from tests.support.compiling import bound_resources
from yaml_compiler import WorkflowCompileError
from yaml_compiler.backend import compile_plan
from yaml_compiler.compiler import plan_text, read_workflow_file
from yaml_compiler.templating import render_value

REPO = Path(__file__).resolve().parents[2]
FILENAME = "fuzz.yaml"
CASE_SECONDS = 10.0
"""Time cap of one case: a compile or a render that takes longer is a failure (a hang)."""
_REGISTRY = default_registry()
_RESOURCES = bound_resources()
_CRON = None  # set lazily: resources.dagster_private imports Dagster


@dataclass(frozen=True)
class Outcome:
    kind: str  # "compiled", "rejected" (positioned diagnostics / a clean step error), "failed"
    detail: str = ""
    seconds: float = 0.0


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_cap(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Interrupt the case after `seconds` (SIGALRM: the main thread only)."""

    def expire(_signum: int, _frame: Any) -> None:
        raise CaseTimeout(f"over the {seconds:g}s cap")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cron_check() -> Any:
    global _CRON
    if _CRON is None:
        from resources.dagster_private import is_valid_cron_string

        _CRON = is_valid_cron_string
    return _CRON


def diagnostics_problem(exc: WorkflowCompileError, text: str | None) -> str | None:
    """Why these diagnostics are not positioned messages a user can act on, or None."""
    if not exc.diagnostics:
        return "a WorkflowCompileError without diagnostics"
    lines = text.count("\n") + 2 if text is not None else None
    for d in exc.diagnostics:
        if d.file != FILENAME:
            return f"diagnostic names file {d.file!r}: {d}"
        if d.line < 1 or d.col < 1 or (lines is not None and d.line > lines):
            return f"diagnostic outside the file ({lines} lines): {d}"
        if not d.path or not d.message.strip():
            return f"diagnostic without a field or a message: {d!r}"
        if "Traceback" in d.message or " object at 0x" in d.message:
            return f"diagnostic leaks internals: {d}"
    return None


def judge_compile(data: str | bytes, params: list[str] | None = None) -> Outcome:
    """Compile one document (text, or a file's bytes) as `maestro validate`/`run` would."""
    started = time.perf_counter()
    text: str | None = data if isinstance(data, str) else None
    try:
        with time_cap():
            if isinstance(data, bytes):
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / FILENAME
                    path.write_bytes(data)
                    try:
                        text = read_workflow_file(path)
                    except WorkflowCompileError as exc:
                        exc.diagnostics = [
                            d.__class__(FILENAME, d.line, d.col, d.path, d.message)
                            for d in exc.diagnostics
                        ]
                        raise
            assert text is not None
            plan = plan_text(text, FILENAME, _REGISTRY, cron_check=_cron_check())
            if params:
                values = parse_params(params, plan.spec.params)
                plan = plan_text(text, FILENAME, _REGISTRY, values, _cron_check())
            compile_plan(plan, _REGISTRY, resources=_RESOURCES)
    except WorkflowCompileError as exc:
        problem = diagnostics_problem(exc, text)
        kind = "failed" if problem else "rejected"
        return Outcome(kind, problem or str(exc.diagnostics[0]), time.perf_counter() - started)
    except ParamError as exc:
        ok = str(exc).startswith("--param ")
        return Outcome("rejected" if ok else "failed", str(exc), time.perf_counter() - started)
    except CaseTimeout as exc:
        return Outcome("failed", f"hang: {exc}", time.perf_counter() - started)
    except Exception as exc:  # the whole point: nothing else may escape
        return Outcome(
            "failed", f"{type(exc).__name__}: {exc}"[:2000], time.perf_counter() - started
        )
    return Outcome("compiled", "", time.perf_counter() - started)


def judge_render(params: Mapping[str, Any], scope: Mapping[str, Any], seconds: float) -> Outcome:
    """Render a step's `with` as the op does: within one budget of `seconds`; any error is the
    step's StepConfigError (scope.py), so only a hang or running out of memory fails."""
    started = time.perf_counter()
    try:
        with time_cap(), render_limits(seconds):
            render_value(params, scope)
    except CaseTimeout as exc:
        return Outcome("failed", f"hang: {exc}", time.perf_counter() - started)
    except MemoryError as exc:
        return Outcome("failed", f"MemoryError: {exc}", time.perf_counter() - started)
    except Exception as exc:
        return Outcome(
            "rejected", f"{type(exc).__name__}: {exc}"[:300], time.perf_counter() - started
        )
    return Outcome("compiled", "", time.perf_counter() - started)


# ---------------------------------------------------------------- seed workflows


def seed_texts() -> list[str]:
    """Valid workflows: the shipped templates and a few that use every top-level field."""
    seeds = [
        p.read_text(encoding="utf-8")
        for p in sorted((REPO / "maestro_cli/templates").glob("*.yaml"))
    ]
    seeds.append(
        """\
name: seed-all
version: 1.2.3
description: every field once
tenant: acme
environment: prod
params:
  region: {type: string, default: eu}
  count: {type: integer, default: 3}
  items: {type: list, default: [a, b]}
  opts: {type: object, default: {x: 1}}
  flag: true
secrets: [API_TOKEN]
budget: {max_cost_usd: 1.5, max_duration: 1h}
timeout: 2h
on_failure: continue
defaults: {retry: {max_attempts: 2, backoff: 1s}, timeout: 5m}
schedule: {cron: "0 * * * *", params: {region: us}}
tags: {team: data}
stages:
  - name: fetch
    steps:
      - id: get
        run: echo
        with: {message: "{{ params.region }} {{ params.count * 2 }}"}
        outputs: [raw, {name: report, path: "out/{{ params.region }}.txt"}]
        retry: {max_attempts: 3, backoff: 500ms, exponential: true, jitter: full}
  - name: each
    parallel:
      - id: fan
        run: echo
        for_each: "{{ params.items }}"
        with: {message: "{{ item }} {{ item_index }} {{ steps.get.output.message }}"}
      - id: gated
        run: echo
        when: "{{ params.flag }}"
        depends_on: get
        timeout: 30s
        tags: {kind: check}
"""
    )
    return seeds


SEEDS = seed_texts()
SEED_DATA = [yaml.safe_load(text) for text in SEEDS]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=1000)


# ---------------------------------------------------------------- strategies

_KEYS = [
    "name", "version", "description", "tenant", "environment", "params", "secrets", "budget",
    "timeout", "on_failure", "defaults", "schedule", "tags", "stages", "steps", "id", "run",
    "with", "depends_on", "when", "for_each", "retry", "outputs", "path", "pool", "resources",
    "compensation", "max_attempts", "backoff", "timeout_ms", "global_timeout_ms", "cron",
    "allow_outside", "command", "shell", "cwd", "url", "method", "model", "prompt",
]  # fmt: skip
_PLUGINS = ["echo", "shell", "http.request", "python", "litellm.generate", "ollama.chat", "nope"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "", "1000000d", "-1s", "1e400", "0.0001ms", "{{", "}}", "{{ params.nope }}",
            "{{ steps.get.output }}", "{% for x in y %}", "../../etc/passwd", "/etc/shadow",
            "~/.ssh/id_rsa", "x" * 300, "échec ✓ 🙂", "a\x00b", "\t", "on", "yes", "null",
            "{{ 'x' * 10**9 }}", "{{ lipsum(10) }}", "{{ ''.__class__ }}", "0 * * * *",
            "not a cron", "maestro/tenant", "Europe/Nowhere", "9" * 50,
        ]
    ),
)  # fmt: skip
keys = st.one_of(st.sampled_from(_KEYS), st.text(max_size=12))
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=30,
)


@st.composite
def random_structures(draw: st.DrawFn) -> str:
    """Arbitrary YAML values, often shaped like a workflow."""
    if draw(st.booleans()):
        return _dump(draw(json_like))
    steps = []
    for _ in range(draw(st.integers(0, 4))):
        step = draw(st.dictionaries(keys, json_like, max_size=6))
        steps.append({"run": draw(st.sampled_from(_PLUGINS)), **step})
    document = {
        "name": draw(st.one_of(st.just("fuzzed"), scalars)),
        draw(st.sampled_from(["steps", "stages"])): steps,
        **draw(st.dictionaries(keys, json_like, max_size=4)),
    }
    return _dump(document)


@st.composite
def broken_documents(draw: st.DrawFn) -> str:
    """A valid seed with one field replaced, deleted or added."""
    seed = draw(st.sampled_from(SEED_DATA))
    path = draw(st.sampled_from(_paths(seed)[1:]))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "delete" and isinstance(path[-1], str):
        parent = _get(seed, path[:-1])
        return _dump(_replace(seed, path[:-1], {k: v for k, v in parent.items() if k != path[-1]}))
    if action == "add":
        target = _get(seed, path)
        if isinstance(target, dict):
            return _dump(_replace(seed, path, {**target, draw(keys): draw(json_like)}))
    return _dump(_replace(seed, path, draw(json_like)))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for segment in path:
        value = value[segment]
    return value


@st.composite
def text_mutations(draw: st.DrawFn) -> str:
    """A valid seed's text with characters, lines, tabs or duplicate keys added or cut."""
    text = draw(st.sampled_from(SEEDS))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "tab", "duplicate", "swap", "truncate"]))
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "insert":
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at] + draw(st.text(min_size=1, max_size=5)) + line[at:]
        elif kind == "delete" and len(lines) > 1:
            del lines[index]
        elif kind == "tab":
            lines[index] = "\t" + lines[index].lstrip(" ")
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == "truncate":
            lines = lines[: index + 1]
    return "".join(lines)


@st.composite
def binary_junk(draw: st.DrawFn) -> bytes:
    """Bytes: random junk, or a seed with bytes that are not UTF-8 (or NULs) spliced in."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)).encode("utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(
            st.one_of(
                st.binary(min_size=1, max_size=4),
                st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"\xef\xbb\xbf"]),
            )
        )
    return bytes(data)


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 3000))
    style = draw(st.sampled_from(["flow-list", "flow-map", "block"]))
    if style == "flow-list":
        value = "[" * depth + "1" + "]" * depth
    elif style == "flow-map":
        value = "{a: " * depth + "1" + "}" * depth
    else:
        depth = min(depth, 400)
        value = "".join(f"\n{'  ' * (level + 4)}k{level}:" for level in range(depth)) + " 1"
    return f"name: deep\nsteps:\n  - run: echo\n    with:\n      v: {value}\n"


@st.composite
def alias_bombs(draw: st.DrawFn) -> str:
    levels = draw(st.integers(2, 30))
    fan_out = draw(st.integers(2, 20))
    merge = draw(st.booleans())
    lines = ["name: bomb", "l0: &l0 {a: 1, b: 2}" if merge else "l0: &l0 [lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(
            f"l{level}: &l{level} {{<<: [{refs}]}}" if merge else f"l{level}: &l{level} [{refs}]"
        )
    where = draw(st.sampled_from(["top", "with"]))
    if where == "with":
        lines += ["steps:", "  - run: echo", f"    with: {{v: *l{levels - 1}}}"]
    else:
        lines += ["steps:", "  - run: echo"]
    return "\n".join(lines) + "\n"


@st.composite
def huge_documents(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["steps", "string", "comment", "keys"]))
    n = draw(st.integers(100, 6000))
    if kind == "steps":
        body = "".join(
            f"  - id: s{i}\n    run: echo\n    with: {{m: '{{{{ params.p }}}} {i}'}}\n"
            for i in range(n)
        )
        return "name: huge\nparams: {p: x}\nsteps:\n" + body
    if kind == "string":
        return "name: huge\nsteps:\n  - run: echo\n    with: {m: '" + "x" * (n * 200) + "'}\n"
    if kind == "comment":
        return "name: huge\nsteps:\n  - run: echo\n" + ("# " + "c" * 100 + "\n") * n
    return "name: huge\nsteps:\n  - run: echo\n    with:\n" + "".join(
        f"      k{i}: {i}\n" for i in range(n * 5)
    )


PARAM_WORKFLOW = """\
name: params-fuzz
params:
  s: {type: string, default: a}
  i: {type: integer, default: 1}
  n: {type: number, default: 1.5}
  b: {type: boolean, default: true}
  l: {type: list, default: [1]}
  o: {type: object, default: {a: 1}}
  r: {type: string, required: true}
steps:
  - id: use
    run: echo
    with:
      message: "{{ params.s }} {{ params.i }} {{ params.n }} {{ params.b }} {{ params.r }}"
      values: ["{{ params.l }}", "{{ params.o }}"]
"""
param_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "", "1", "-0", "1e400", "nan", "inf", "true", "no", "[1, 2", "{a: 1}", "[a, b]",
            "!!python/object/apply:os.system [id]", "&a [*a]", "{a: &a [x, x], b: [*a, *a]}",
            "\x00", "a=b=c", "[" * 200 + "]" * 200, "9" * 5000, "{{ params.s }}",
        ]
    ),
    alias_bombs().map(lambda text: "{" + ", ".join(text.splitlines()[1:-2]) + "}"),
)  # fmt: skip
param_assignments = st.lists(
    st.tuples(
        st.sampled_from(["s", "i", "n", "b", "l", "o", "r", "zz", "", "s "]), param_values
    ).map(lambda pair: f"{pair[0]}={pair[1]}"),
    max_size=4,
)


# ---------------------------------------------------------------- templates

_ATOMS = [
    "params.s", "params.n", "params.items", "params.big", "params.m", "steps.up.output",
    "steps.up.output.rows", "1", "0", "-1", "10**9", "2", "'ab'", "''", "[1, 2]", "{'a': 1}",
    "none", "true", "3.5", "1e308", "'{:>999999999}'", "'%999999999d'",
]  # fmt: skip
_FILTERS = [
    "upper", "length", "join(',')", "center(99999999)", "indent(99999999)", "wordwrap(1)",
    "replace('a', 'bb')", "tojson", "list", "sort", "unique", "first", "string", "int",
    "batch(3)", "slice(99999999)", "format(1)", "sum", "reverse", "trim", "default('x')",
    "truncate(5)", "map('upper')", "select", "dictsort", "items", "abs", "round",
]  # fmt: skip
_METHODS = [
    "center(99999999)", "ljust(5)", "replace('a', 'bbbb')", "split()", "format(1, 2)",
    "join(['a', 'b'])", "zfill(99999999)", "upper()", "expandtabs(99999999)", "count('a')",
    "startswith('a')", "strip()", "encode()", "__class__", "mro()",
]  # fmt: skip
_OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "<", "and", "or", "in"]


def _expressions() -> st.SearchStrategy[str]:
    atom = st.sampled_from(_ATOMS)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(_OPERATORS), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(_FILTERS)).map(lambda t: f"({t[0]})|{t[1]}"),
            st.tuples(inner, st.sampled_from(_METHODS)).map(lambda t: f"({t[0]}).{t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
        ),
        max_leaves=6,
    )


expressions = _expressions()


@st.composite
def templates(draw: st.DrawFn) -> str:
    """Expressions, loops (nested), conditions and macros over the step's scope."""
    kind = draw(st.sampled_from(["expr", "loop", "if", "macro", "text"]))
    expression = draw(expressions)
    if kind == "expr":
        return "{{ " + expression + " }}"
    if kind == "loop":
        inner = draw(
            st.sampled_from(
                [
                    "{{ x }}",
                    "{{ x * 2 }}",
                    "{% for y in " + draw(expressions) + " %}{{ y }}{% endfor %}",
                ]
            )
        )
        return "{% for x in " + expression + " %}" + inner + "{% endfor %}"
    if kind == "if":
        return "{% if " + expression + " %}yes{% else %}{{ " + draw(expressions) + " }}{% endif %}"
    if kind == "macro":
        depth = draw(st.integers(1, 60))
        return (
            "{% macro f(n, s) %}{% if n %}{{ f(n - 1, s ~ s) }}{{ f(n - 1, s) }}{% endif %}"
            "{% endmacro %}{{ f(" + str(depth) + ", " + expression + ") }}"
        )
    return draw(st.text(alphabet="{}%#~|()[]'\" abcxyz.:,+*-/", max_size=30))


TEMPLATE_SCOPE: dict[str, Any] = {
    "params": {
        "s": "ab",
        "n": 7,
        "items": list(range(300)),
        "big": "x" * 200_000,
        "m": {"a": [1, 2, 3], "b": "\t" * 5},
    },
    "steps": {"up": {"output": {"rows": [{"a": i} for i in range(200)]}}},
    "run": {"id": "r", "workflow": "w", "tenant": "t", "environment": "e", "started_at": ""},
    "secrets": {},
}


def template_workflow(template: str) -> str:
    """A workflow whose step renders `template` (the compiler checks it first)."""
    import json

    return (
        "name: tpl\nparams:\n  s: ab\n  n: 7\n  items: {type: list, default: []}\n"
        "  big: x\n  m: {type: object, default: {}}\nsteps:\n  - id: up\n    run: echo\n"
        f"  - id: use\n    run: echo\n    with: {{message: {json.dumps(template)}}}\n"
    )
