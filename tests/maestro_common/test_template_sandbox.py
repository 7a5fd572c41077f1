"""The template sandbox: escapes stay closed, and bombs end as a clear error, quickly and small.

Each case would succeed (or run away) on a plain `jinja2.Environment` or on Jinja's own
sandbox without Maestro's bounds, so removing a protection fails its test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from maestro_common.template_sandbox import (
    MAX_BUILT_SIZE,
    MAX_INT_BITS,
    MAX_VALUE_SIZE,
    MAX_WORK,
    BoundedSandbox,
    TemplateLimitError,
    render_limits,
)
from yaml_compiler.templating import evaluate, render_string

REPO = Path(__file__).resolve().parents[2]
SCOPE: dict[str, Any] = {
    "params": {
        "s": "ab",
        "n": 3,
        "big": "x" * (MAX_VALUE_SIZE - 100),
        "items": list(range(2000)),
        "text": "word " * 1000,
    }
}

BOMBS = {
    "string multiplication": "{{ 'x' * 10**10 }}",
    "param multiplication": "{{ params.s * 1000000000 }}",
    "list multiplication": "{{ [1, 2, 3] * 100000000 }}",
    "reversed multiplication": "{{ 100000000 * [params.s] }}",
    "tuple multiplication": "{{ (params.s,) * 100000000 }}",
    "power": "{{ 2 ** 100000000 }}",
    "power of a power": "{{ (10 ** 1000) ** 1000 }}",
    "squaring in recursion": (
        "{% macro f(x, n) %}{% if n %}{{ f(x * x, n - 1) }}{% endif %}{% endmacro %}{{ f(3, 64) }}"
    ),
    "center method": "{{ params.s.center(10**10) }}",
    "ljust": "{{ params.s.ljust(2000000000) }}",
    "rjust": "{{ params.s.rjust(2000000000, '-') }}",
    "zfill": "{{ params.s.zfill(2000000000) }}",
    "expandtabs": "{{ ('\t' * 1000).expandtabs(10**8) }}",
    "str.replace": "{{ params.big.replace('x', params.big) }}",
    "str.join": "{{ params.big.join(params.items) }}",
    "translate": "{{ params.big.translate({120: params.big}) }}",
    "to_bytes": "{{ (1).to_bytes(10**9, 'big') }}",
    "str.format width": "{{ '{:>99999999999}'.format(1) }}",
    "nested format width": "{{ '{:{w}}'.format(1, w=999999999) }}",
    "format_map width": "{{ '{a:>999999999}'.format_map({'a': 1}) }}",
    "percent width": "{{ '%999999999d' % 1 }}",
    "percent star width": "{{ '%*d' % (999999999, 1) }}",
    "format filter": "{{ '%999999999s'|format('x') }}",
    "center filter": "{{ params.s|center(10**10) }}",
    "indent filter": "{{ params.text|indent(10**9) }}",
    "wordwrap filter": "{{ params.text|wordwrap(1, wrapstring=params.big) }}",
    "join filter": "{{ params.items|join(params.big) }}",
    "replace filter": "{{ params.big|replace('x', 'yy') }}",
    "tojson indent": "{{ params.items|tojson(indent=10**8) }}",
    "slice filter": "{{ [1]|slice(10**9) }}",
    "batch filter": "{{ [1]|batch(10**9, fill_with=1) }}",
    "string of a shared list": "{% set a = [params.big, params.big] %}{{ a }}",
    "nested literals": (
        "{% set a = [params.s] %}{% set b = [a, a, a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, "
        "b, b, b] %}{% set d = [c, c, c, c, c, c, c, c] %}{% set e = [d, d, d, d, d, d, d, d] %}"
        "{% set f = [e, e, e, e, e, e, e, e] %}{% set g = [f, f, f, f, f, f, f, f] %}{{ g }}"
    ),
    "doubling concatenation": (
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}"
        "{{ f('ab', 64) }}"
    ),
    "doubling addition": (
        "{% macro f(s, n) %}{% if n %}{{ f(s + s, n - 1) }}{% endif %}{% endmacro %}"
        "{{ f('ab', 64) }}"
    ),
    "output in a loop": "{% for i in params.items %}{{ params.big }}{% endfor %}",
    "literal text in a loop": "{% for i in params.items %}" + "z" * 2000 + "{% endfor %}",
    "macro buffer": (
        "{% macro m() %}{% for i in params.items %}{{ params.big|upper }}{% endfor %}{% endmacro %}"
        "{{ m()|length }}"
    ),
    "slices in recursion": (
        "{% macro f(s, n) %}{% if n %}{{ f(s[1:] ~ s[:1], n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(params.big, 900) }}"
    ),
    "nested loops": (
        "{% for a in params.items %}{% for b in params.items %}{% endfor %}{% endfor %}"
    ),
    "exponential macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "loop over a long string": (
        "{% for a in params.big %}{% for b in params.s %}{% endfor %}{% endfor %}"
    ),
}


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_every_bomb_ends_as_a_template_limit_error(template: str) -> None:
    with pytest.raises(TemplateLimitError, match="template limit"):
        render_string(template, SCOPE)


def test_the_messages_state_the_bounds() -> None:
    messages = []
    for template in (BOMBS["string multiplication"], BOMBS["power"], BOMBS["nested loops"]):
        with pytest.raises(TemplateLimitError) as caught:
            render_string(template, SCOPE)
        messages.append(str(caught.value))
    assert f"at most {MAX_VALUE_SIZE:,}" in messages[0]
    assert f"more than {MAX_INT_BITS:,} bits" in messages[1]
    assert f"more than {MAX_WORK:,} loop iterations and calls" in messages[2]


def test_the_total_built_by_one_budget_is_bounded() -> None:
    """Each render is small; together, inside one step's budget, they are not."""
    chunk = "{{ params.big ~ '' }}"
    with render_limits(), pytest.raises(TemplateLimitError, match=f"{MAX_BUILT_SIZE:,}"):
        for _ in range(MAX_BUILT_SIZE // MAX_VALUE_SIZE + 2):
            render_string(chunk, SCOPE)


def test_a_budget_stops_at_its_deadline() -> None:
    slow = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
        "{{ params.items|sort|first }}{% endmacro %}{{ f(30) }}"
    )
    with render_limits(seconds=0.5), pytest.raises(TemplateLimitError, match=r"longer than 0\.5s"):
        render_string(slow, SCOPE)


def test_ordinary_templates_still_render() -> None:
    assert render_string("{{ params.s|upper }}-{{ params.n * 2 }}-{{ params.s * 3 }}", SCOPE) == (
        "AB-6-ababab"
    )
    assert render_string("{% for i in params.items[:3] %}{{ i }},{% endfor %}", SCOPE) == "0,1,2,"
    assert render_string("{{ '{:>6}|{:.2f}'.format(params.s, 1.5) }}", SCOPE) == "    ab|1.50"
    assert render_string("{{ '%05d' % params.n }}", SCOPE) == "00003"
    assert evaluate("2 ** 64", SCOPE) == 2**64
    assert evaluate("[params.s] * 3 + ['c']", SCOPE) == ["ab", "ab", "ab", "c"]
    assert evaluate("params.items|map('string')|join(',')|length", SCOPE) > 0
    assert render_string("{{ params.big }}", SCOPE) == SCOPE["params"]["big"]  # at the limit


def test_a_large_upstream_value_passes_through_whole() -> None:
    """`{{ steps.x.output }}` alone keeps the value as it is: nothing is built or copied."""
    large = {"rows": ["r" * 1000] * 5000}  # 5 MB as JSON: over the limit if it were built
    scope = {"steps": {"fetch": {"output": large}}}
    assert render_string("{{ steps.fetch.output }}", scope) is large
    with pytest.raises(TemplateLimitError):
        render_string("rows: {{ steps.fetch.output }}", scope)


# ---------------------------------------------------------------- escapes


ESCAPES = {
    "class of a value": "{{ params.s.__class__ }}",
    "mro walk": "{{ params.__class__.__mro__[1].__subclasses__() }}",
    "function globals": "{{ params.items.__len__.__self__.__class__ }}",
    "format field attribute": "{{ '{0.__class__.__mro__}'.format(params.s) }}",
    "format_map field attribute": "{{ '{s.__class__}'.format_map(params) }}",
    "format field item dunder": "{{ '{0[__class__]}'.format(params) }}",
    "percent format of a dunder": "{{ '%s' % params.s.__class__ }}",
    "attr filter": "{{ params|attr('__class__') }}",
    "template context": "{{ self._TemplateReference__context.parent }}",
    "mutating a list": "{{ params.items.append(1) }}",
    "mutating a dict": "{{ params.update({'s': 1}) }}",
}


@pytest.mark.parametrize("template", ESCAPES.values(), ids=ESCAPES.keys())
def test_attribute_escapes_are_refused(template: str) -> None:
    with pytest.raises((SecurityError, UndefinedError)):
        render_string(template, SCOPE)


@pytest.mark.parametrize(
    "template",
    [
        "{{ lipsum(100000) }}",
        "{{ cycler(1, 2).__init__.__globals__ }}",
        "{{ joiner().__init__.__globals__ }}",
        "{{ namespace(a=1).__init__.__globals__ }}",
        "{{ range(10)|list }}",
        "{{ dict(a=1) }}",
    ],
)
def test_jinja_globals_do_not_exist(template: str) -> None:
    with pytest.raises(UndefinedError):
        render_string(template, SCOPE)


def test_the_sandbox_class_keeps_them_out_on_its_own() -> None:
    """Prompt templates use BoundedSandbox directly: it has no globals either."""
    env = BoundedSandbox(undefined=StrictUndefined)
    assert env.globals == {}
    with render_limits(), pytest.raises(TemplateError):
        env.from_string("{{ cycler.__init__.__globals__.os }}").render()


# ---------------------------------------------------------------- memory ceiling


def test_bombs_stay_inside_a_small_memory_ceiling() -> None:
    """All bombs, one after another, in a child process capped at 600 MB of address space:
    each ends as a TemplateLimitError, and the peak RSS grows by less than 100 MB."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.maestro_common.test_template_sandbox import BOMBS, SCOPE
        from yaml_compiler.templating import render_string
        from maestro_common.template_sandbox import TemplateLimitError
        render_string("{{{{ params.s }}}}", SCOPE)  # imports and caches warm
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcomes = {{}}
        for name, template in BOMBS.items():
            try:
                render_string(template, SCOPE)
                outcomes[name] = "rendered"
            except TemplateLimitError:
                outcomes[name] = "limited"
            except MemoryError:
                outcomes[name] = "MemoryError"
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
        print(json.dumps({{"outcomes": outcomes, "grown_mb": grown}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["outcomes"].values()) == {"limited"}, report["outcomes"]
    assert report["grown_mb"] < 100, report
