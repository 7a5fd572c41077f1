"""Jinja's immutable sandbox with bounds on what a template may build and how long it may work.

Jinja's sandbox stops attribute escapes (`__class__`, `__globals__`, format-string field
access); it does not stop a template from building a huge value (`'x' * 10**10`,
`'{:>9999999999}'.format(1)`, `2 ** 10**10`, `s.center(10**10)`, `[s, s, s, s]` nested, a
`~` that doubles in a loop) or from looping for hours. `BoundedSandbox` adds:

- every value a template builds (operators, `~`, literals, filters, method calls, slices,
  each `{{ }}` output, the rendered text) is at most `MAX_VALUE_SIZE` characters (for a list
  or mapping: the length of its JSON, shared parts counted each time, which is what writing
  it out would cost); checked before the value is made where its size is known in advance;
- everything one budget builds together is at most `MAX_BUILT_SIZE` characters;
- integers are at most `MAX_INT_BITS` bits (`**`, `*`);
- loop iterations and calls are at most `MAX_WORK` per budget, and rendering stops at the
  budget's deadline (`MAX_RENDER_SECONDS`, or less: a step's timeout);
- no globals: `range`, `lipsum`, `cycler`, `joiner`, `namespace` and `dict` do not exist.

A budget (`render_limits`) covers one step's rendering; a render outside one gets its own.
Exceeding a bound raises `TemplateLimitError` (a Jinja `SecurityError`).

Used by the DSL's templates (yaml_compiler/templating.py) and the LLM prompt templates
(resources/plugins/prompts.py); this module sits below both layers and imports neither.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from string import Formatter
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, Macro
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
    SecurityError,
)
from markupsafe import Markup

MAX_VALUE_SIZE = 1024 * 1024
"""Characters (or JSON characters, for lists and mappings) in one value a template builds."""
MAX_BUILT_SIZE = 16 * 1024 * 1024
"""Characters built by everything one budget (one step's templates) renders, all together."""
MAX_INT_BITS = 4096
"""Bits in an integer a template computes (about 1,233 decimal digits)."""
MAX_WORK = 1_000_000
"""Loop iterations plus calls (macros, methods, filters) in one budget."""
MAX_RENDER_SECONDS = 10.0
"""Wall-clock time one budget may render for (a step's timeout, when shorter, wins)."""
_CLOCK_EVERY = 1024  # ticks between deadline checks: time.monotonic() is not free
_PRINTF_SPEC = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]"
)
_DIGITS = re.compile(r"\d+")
_STRINGIFYING_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "join",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)
"""Filters that turn their input into text: a list holding one large string many times
would become that many copies, so the input's size is checked first."""


class TemplateLimitError(SecurityError):
    """A template built too much or worked too long; retrying cannot help."""


def _too_large(what: str, size: int | float) -> TemplateLimitError:
    return TemplateLimitError(
        f"template limit: {what} would be {_count(size)} characters; a template may build at "
        f"most {MAX_VALUE_SIZE:,} (pass large data whole, e.g. {{{{ steps.x.output }}}})"
    )


def _count(size: int | float) -> str:
    return f"{size:,.0f}" if math.isfinite(size) and size < 1e18 else f"{size:.3g}"


class RenderBudget:
    """What one step's templates may still do: work, characters built, time."""

    __slots__ = ("_sizes", "built", "deadline", "seconds", "work")

    def __init__(self, seconds: float = MAX_RENDER_SECONDS):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.work = 0
        self.built = 0
        self._sizes: dict[int, tuple[Any, int]] = {}  # id -> (container, size): kept alive

    def tick(self) -> None:
        self.work += 1
        if self.work > MAX_WORK:
            raise TemplateLimitError(
                f"template limit: more than {MAX_WORK:,} loop iterations and calls"
            )
        if not self.work % _CLOCK_EVERY and time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"template limit: rendering took longer than {self.seconds:g}s"
            )

    @staticmethod
    def limit(size: int | float, what: str) -> None:
        """Refuse, before it is built, a value that would be over the limit."""
        if size > MAX_VALUE_SIZE:
            raise _too_large(what, size)

    def add(self, size: int, what: str) -> None:
        """Count `size` characters built; refuse a value or a total over the limits."""
        self.limit(size, what)
        self.built += size
        if self.built > MAX_BUILT_SIZE:
            raise TemplateLimitError(
                f"template limit: the templates built more than {MAX_BUILT_SIZE:,} "
                "characters in all"
            )

    def size(self, value: Any, limit: int = MAX_VALUE_SIZE) -> int:
        """The length of `value` written out (its JSON, roughly), shared parts counted each
        time; stops counting just past `limit`. Containers' sizes are remembered."""
        if isinstance(value, (str, bytes)):
            return len(value)
        if value is None or isinstance(value, (bool, float)):
            return 5
        if isinstance(value, int):
            return value.bit_length() // 3 + 2
        if not isinstance(value, (list, tuple, dict)):
            return 16
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        total = 2
        items: Iterable[Any] = (
            (part for pair in value.items() for part in pair) if isinstance(value, dict) else value
        )
        for item in items:
            total += self.size(item, limit - total) + 2
            if total > limit:
                return total  # over the limit: not remembered, as the count stopped early
        self._sizes[id(value)] = (value, total)
        return total

    def check(self, value: Any, what: str) -> Any:
        """Count a built value (sized once, without copying it) and return it."""
        self.add(self.size(value), what)
        return value


_BUDGET: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "maestro_render_budget", default=None
)


@contextlib.contextmanager
def render_limits(seconds: float | None = None) -> Iterator[RenderBudget]:
    """One budget for everything rendered inside (e.g. all of a step's templates).

    `seconds` (a step's timeout) shortens the deadline; it never lengthens it. An enclosing
    budget stays in force: nested renders share it.
    """
    outer = _BUDGET.get()
    if outer is not None:
        yield outer
        return
    limit = MAX_RENDER_SECONDS if seconds is None else max(0.0, min(seconds, MAX_RENDER_SECONDS))
    budget = RenderBudget(limit)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def current_budget() -> RenderBudget:
    budget = _BUDGET.get()
    if budget is None:
        raise RuntimeError("templates render inside render_limits()")  # pragma: no cover
    return budget


def bounded(render: Callable[..., Any]) -> Callable[..., Any]:
    """Run `render` in the active budget, or in its own when there is none."""

    @functools.wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with render_limits():
            return render(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------- checks before building


def _check_repeat(budget: RenderBudget, sequence: Any, times: Any) -> None:
    if isinstance(times, bool) or not isinstance(times, int) or times <= 0:
        return
    if isinstance(sequence, (str, bytes, list, tuple)):
        budget.limit(budget.size(sequence) * times, "a repeated value")


def _check_int_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(
                f"template limit: a product of {bits:,} bits; integers have at most "
                f"{MAX_INT_BITS:,}"
            )


def _check_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise TemplateLimitError(
            f"template limit: {base} ** {exponent} has more than {MAX_INT_BITS:,} bits"
        )


def _printf_size(budget: RenderBudget, fmt: str, args: Any) -> int:
    """What `fmt % args` may write: the format, the widths and precisions, the arguments."""
    values = list(args.values()) if isinstance(args, Mapping) else args
    values = list(values) if isinstance(values, tuple) else [values]
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    star = max((abs(n) for n in numbers), default=0)
    total = len(fmt) + sum(budget.size(v) for v in values)
    for match in _PRINTF_SPEC.finditer(fmt):
        for width in match.groups():
            if width == "*":
                total += star
            elif width:
                total += int(width)
    return total


def _check_format_spec(spec: str) -> None:
    for digits in _DIGITS.findall(spec):
        if len(digits) > 7 or int(digits) > MAX_VALUE_SIZE:
            raise _too_large(f"a field formatted with {spec!r}", int(digits[:30]))


class _BoundedFields(Formatter):
    """`str.format` with field widths and each field's text counted against the budget."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = current_budget()
        _check_format_spec(format_spec)
        budget.limit(budget.size(value), "a formatted field")
        return budget.check(super().format_field(value, format_spec), "a formatted field")


class _BoundedFormatter(_BoundedFields, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    pass


def _width(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_text_method(
    budget: RenderBudget, text: str | bytes, name: str, args: tuple[Any, ...], kwargs: Any
) -> None:
    """Size what a str/bytes method would build before it builds it."""
    what = f"{name}()"
    if name in ("center", "ljust", "rjust", "zfill"):
        width = _width(args[0] if args else kwargs.get("width"))
        budget.limit(max(width, len(text)), what)
    elif name == "expandtabs":
        tabsize = _width(args[0] if args else kwargs.get("tabsize", 8))
        tab: Any = "\t" if isinstance(text, str) else b"\t"
        budget.limit(len(text) + text.count(tab) * max(tabsize, 0), what)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = _width(args[2]) if len(args) > 2 else -1
        if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)):
            hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
            hits = hits if count < 0 else min(hits, count)
            budget.limit(len(text) + hits * max(len(new) - len(old), 0), what)
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple, dict, str)):
            parts = budget.size(items) + len(text) * len(items)
            budget.limit(parts, what)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((budget.size(v) for v in args[0].values()), default=1)
        budget.limit(len(text) * max(longest, 1), what)


# ---------------------------------------------------------------- filters


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    offset = 1 if hasattr(original, "jinja_pass_arg") else 0
    stringifies = name in _STRINGIFYING_FILTERS

    @functools.wraps(original)
    def bounded_filter(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        value = args[offset] if len(args) > offset else None
        rest = args[offset + 1 :]
        if stringifies:
            budget.limit(budget.size(value), f"the input of |{name}")
        _check_filter_arguments(budget, name, value, rest, kwargs)
        result = original(*args, **kwargs)
        if isinstance(result, (str, bytes, list, tuple, dict)):
            budget.check(result, f"|{name}")
        return result

    return bounded_filter


def _check_filter_arguments(
    budget: RenderBudget, name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    def argument(index: int, key: str, default: Any = None) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    text = value if isinstance(value, str) else ""
    lines = text.count("\n") + 1
    if name == "center":
        budget.limit(_width(argument(0, "width", 80)), "|center")
    elif name == "indent":
        width = argument(0, "width", 4)
        per_line = len(width) if isinstance(width, str) else _width(width)
        budget.limit(len(text) + lines * per_line, "|indent")
    elif name == "wordwrap":
        wrap = argument(3, "wrapstring") or "\n"
        breaks = text.count(" ") + lines + len(text) // max(_width(argument(0, "width", 79)), 1)
        budget.limit(len(text) + breaks * len(str(wrap)), "|wordwrap")
    elif name == "format":
        budget.limit(_printf_size(budget, text, dict(kwargs) or tuple(args)), "|format")
    elif name == "join":
        separator = argument(0, "d", "")
        count = len(value) if isinstance(value, (list, tuple, dict, str)) else 0
        budget.limit(budget.size(value) + count * len(str(separator)), "|join")
    elif name == "replace":
        old, new = argument(0, "old", ""), argument(1, "new", "")
        count = argument(2, "count")
        hits = text.count(str(old)) if old else len(text) + 1
        hits = hits if count is None else min(hits, _width(count))
        budget.limit(len(text) + hits * max(len(str(new)) - len(str(old)), 0), "|replace")
    elif name == "tojson":
        indent = argument(0, "indent")
        depth_cost = _width(indent) if not isinstance(indent, str) else len(indent)
        if depth_cost > 64:
            raise TemplateLimitError("template limit: |tojson indents by at most 64")
    elif name in ("batch", "slice"):
        count = _width(argument(0, "linecount" if name == "batch" else "slices", 1))
        if count > MAX_VALUE_SIZE:
            raise _too_large(f"|{name}({count})", count)
    elif name == "truncate":
        budget.limit(len(str(argument(2, "end", "..."))), "|truncate")


# ---------------------------------------------------------------- the environment


class _BoundedCodeGenerator(CodeGenerator):
    """Routes what Jinja compiles to plain Python through the budget: each loop's iterable,
    `~`, and list/tuple/dict literals."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("counted"), [node.iter], [], None, None, lineno=node.lineno
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.joined((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _built(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.built(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._built(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._built(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._built(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, every built value and all work counted (module docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, output: Callable[[Any], Any] | None = None, **options: Any):
        """`output` post-processes each `{{ }}` value (e.g. shell quoting), after its check."""
        super().__init__(**options)
        self.globals.clear()  # range, lipsum, cycler, joiner, namespace, dict: none reachable
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.concat = self._concat  # type: ignore[method-assign]
        post = output or (lambda value: value)

        def finalize(value: Any) -> Any:
            return post(current_budget().check(value, "a {{ }} value"))

        self.finalize = finalize

    def add_filter(self, name: str, function: Callable[..., Any]) -> None:
        """Register a filter of our own, bounded like the built-in ones."""
        self.filters[name] = _bounded_filter(name, function)

    # The generated code calls these.

    def counted(self, iterable: Any) -> Iterator[Any]:
        budget = current_budget()
        for item in iterable:
            budget.tick()
            yield item

    def joined(self, parts: tuple[Any, ...]) -> str:
        budget = current_budget()
        budget.limit(sum(budget.size(part) for part in parts), "a ~ concatenation")
        text = "".join(str(part) for part in parts)
        budget.add(len(text), "a ~ concatenation")
        return text

    def built(self, value: Any) -> Any:
        return current_budget().check(value, "a literal")

    def _concat(self, parts: Iterable[str]) -> str:
        """Joins rendered output (the whole template, macro bodies, set blocks)."""
        budget = current_budget()
        collected: list[str] = []
        total = 0
        for part in parts:
            total += len(part)
            if total > MAX_VALUE_SIZE:
                raise _too_large("the rendered text", total)
            collected.append(part)
        budget.add(total, "the rendered text")
        return "".join(collected)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        if operator == "*":
            _check_repeat(budget, left, right)
            _check_repeat(budget, right, left)
            _check_int_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, (str, bytes, list, tuple)) and type(left) is type(right):
                budget.limit(budget.size(left) + budget.size(right), "a + concatenation")
        elif operator == "%" and isinstance(left, str):
            budget.limit(_printf_size(budget, left, right), "a % format")
        result = self.binop_table[operator](left, right)
        if isinstance(result, (str, bytes, list, tuple)):
            budget.check(result, f"a {operator} result")
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(owner, (str, bytes)):
            for argument in (*args, *kwargs.values()):
                budget.size(argument)  # sized once, remembered for the checks below
            _check_text_method(budget, owner, __obj.__name__, args, kwargs)
        elif (
            isinstance(__obj, types.BuiltinMethodType)
            and isinstance(owner, int)
            and __obj.__name__ == "to_bytes"
        ):
            budget.limit(_width(args[0] if args else kwargs.get("length", 1)), "to_bytes()")
        result = super().call(__context, __obj, *args, **kwargs)
        if not isinstance(__obj, Macro) and isinstance(result, (str, bytes, list, tuple, dict)):
            budget.check(result, "a call's result")
        return result

    def getitem(self, obj: Any, argument: Any) -> Any:
        result = super().getitem(obj, argument)
        if isinstance(argument, slice) and isinstance(result, (str, bytes, list, tuple)):
            current_budget().check(result, "a slice")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map` through the bounded formatter."""
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        formatter: SandboxedFormatter = (
            _BoundedEscapeFormatter(self, escape=text.escape)
            if isinstance(text, Markup)
            else _BoundedFormatter(self)
        )
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                return type(text)(formatter.vformat(text, (), args[0]))
            return type(text)(formatter.vformat(text, args, kwargs))

        return bounded_format


__all__ = [
    "MAX_BUILT_SIZE",
    "MAX_INT_BITS",
    "MAX_RENDER_SECONDS",
    "MAX_VALUE_SIZE",
    "MAX_WORK",
    "BoundedSandbox",
    "RenderBudget",
    "TemplateLimitError",
    "bounded",
    "current_budget",
    "render_limits",
]
