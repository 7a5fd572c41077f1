"""Templated values in `shell: true` scripts, safe wherever they land.

Quoting a value (`shlex.quote`) only holds where the shell reads quotes: inside an unquoted
heredoc body `'$(...)'` still runs, a line break in a value ends a `#` comment or a heredoc,
and inside `'...'` or `"..."` the added quotes cancel out. So values are not pasted into the
script at all: each `{{ }}` becomes a placeholder while the template renders, the rendered
script is then read like the shell reads it (quotes, `$( )`, `${ }`, comments, heredocs), and
each placeholder is replaced by a reference to a shell variable that holds the value, written
the way its context needs:

| where the value lands        | written as       |
|------------------------------|------------------|
| a plain word                 | `"${__maestro_N}"` |
| inside `"..."`, `${...}`     | `${__maestro_N}` |
| inside `'...'`               | `'"${__maestro_N}"'` |
| an unquoted heredoc body     | `${__maestro_N}` (expanded, never re-read as code) |
| a quoted heredoc body        | the value itself (nothing expands there) |

(in a quoted heredoc, a value with a line that would end the heredoc is refused).

The variables are assigned, each value `shlex.quote`d, on the script's first lines, the only
place a value is read as shell text, in the one context where quoting is exact. Places where
no reference is safe are refused: `#` comments, backticks, `$(( ))` arithmetic (bash evaluates
a variable's text there as an expression, which can run commands), heredoc delimiters.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_BLOCK = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_WORD_BREAK = " \t\n;&|()<>"
_DELIMITER_END = " \t\n;&|()<>"

REFUSED = {
    "comment": "{{ }} cannot be used in a # comment: a line break in the value would end "
    "the comment and run the rest as commands (move it out of the comment)",
    "backtick": "{{ }} cannot be used inside backticks: write $( ) instead",
    "arith": "{{ }} cannot be used inside $(( )): the shell would evaluate the value as an "
    "expression (compute it in the template, or pass it through env)",
    "delimiter": "{{ }} cannot be a heredoc delimiter",
}


class ShellScriptError(ValueError):
    """The script cannot take a templated value where it has one."""


@dataclass(frozen=True)
class Heredoc:
    delimiter: str
    strip_tabs: bool
    literal: bool  # the delimiter was quoted: nothing expands in the body
    body_start: int = 0
    body_end: int = 0  # the start of the closing delimiter's line


@dataclass(frozen=True)
class Slot:
    """One placeholder in the rendered script and the context it sits in."""

    start: int
    end: int
    index: int
    context: str  # word, double, single, heredoc, literal, or a key of REFUSED
    heredoc: Heredoc | None = None


def placeholder_pattern(nonce: str) -> re.Pattern[str]:
    return re.compile(rf"__maestro_{re.escape(nonce)}_(\d+)__")


def placeholder(nonce: str, index: int) -> str:
    """Word characters only: inert in every shell context, so the reader sees plain text."""
    return f"__maestro_{nonce}_{index}__"


class _Reader:
    """A small reader of POSIX sh syntax: enough to know where each placeholder sits."""

    def __init__(self, script: str, pattern: re.Pattern[str]) -> None:
        self.text = script
        self.pattern = pattern
        self.slots: list[Slot] = []
        self.pending: list[Heredoc] = []
        self.heredocs: list[Heredoc] = []

    def read(self) -> list[Slot]:
        end = self._normal(0, closer=None)
        if end < len(self.text):
            raise ShellScriptError(f"unexpected {self.text[end]!r} in the script")
        if self.pending:
            raise ShellScriptError(f"heredoc <<{self.pending[0].delimiter} is not closed")
        return self.slots

    def _slot(self, index: int, context: str, heredoc: Heredoc | None = None) -> int | None:
        match = self.pattern.match(self.text, index)
        if match is None:
            return None
        self.slots.append(Slot(index, match.end(), int(match.group(1)), context, heredoc))
        return match.end()

    def _at_word_start(self, index: int) -> bool:
        return index == 0 or self.text[index - 1] in _WORD_BREAK

    def _normal(self, i: int, closer: str | None) -> int:
        """Plain shell text up to `closer` (`)` of `$(`, `}` of `${`); returns past it."""
        text, depth = self.text, 0
        while i < len(text):
            after = self._slot(i, "word")
            if after is not None:
                i = after
                continue
            char = text[i]
            if char == "\\":
                i += 2
            elif char == "'":
                i = self._single(i + 1)
            elif char == '"':
                i = self._double(i + 1)
            elif char == "`":
                i = self._backtick(i + 1)
            elif text.startswith("$((", i):
                i = self._arith(i + 3)
            elif text.startswith("$(", i):
                i = self._normal(i + 2, ")")
            elif text.startswith("${", i):
                i = self._normal(i + 2, "}")
            elif char == "#" and self._at_word_start(i) and closer != "}":
                i = self._comment(i)
            elif text.startswith("<<", i) and not text.startswith("<<<", i) and closer != "}":
                i = self._heredoc_operator(i + 2)
            elif char == "\n":
                i = self._heredoc_bodies(i + 1)
            elif closer == ")" and char == "(":
                depth += 1
                i += 1
            elif char == closer and (closer == "}" or depth == 0):
                return i + 1
            else:
                if closer == ")" and char == ")":
                    depth -= 1
                i += 1
        if closer is not None:
            raise ShellScriptError(f"the script has an unclosed {'$(' if closer == ')' else '${'}")
        return i

    def _single(self, i: int) -> int:
        while i < len(self.text):
            after = self._slot(i, "single")
            if after is not None:
                i = after
            elif self.text[i] == "'":
                return i + 1
            else:
                i += 1
        raise ShellScriptError("the script has an unclosed ' quote")

    def _double(self, i: int) -> int:
        text = self.text
        while i < len(text):
            after = self._slot(i, "double")
            if after is not None:
                i = after
            elif text[i] == "\\":
                i += 2
            elif text[i] == '"':
                return i + 1
            elif text[i] == "`":
                i = self._backtick(i + 1)
            elif text.startswith("$((", i):
                i = self._arith(i + 3)
            elif text.startswith("$(", i):
                i = self._normal(i + 2, ")")
            elif text.startswith("${", i):
                i = self._parameter_in_double(i + 2)
            else:
                i += 1
        raise ShellScriptError('the script has an unclosed " quote')

    def _parameter_in_double(self, i: int) -> int:
        text = self.text
        while i < len(text):
            after = self._slot(i, "double")
            if after is not None:
                i = after
            elif text[i] == "\\":
                i += 2
            elif text[i] == "}":
                return i + 1
            elif text[i] == '"':
                i = self._double(i + 1)
            elif text[i] == "'":
                i += 1  # literal inside "${...}"
            else:
                i += 1
        raise ShellScriptError("the script has an unclosed ${")

    def _backtick(self, i: int) -> int:
        while i < len(self.text):
            after = self._slot(i, "backtick")
            if after is not None:
                i = after
            elif self.text[i] == "\\":
                i += 2
            elif self.text[i] == "`":
                return i + 1
            else:
                i += 1
        raise ShellScriptError("the script has an unclosed ` quote")

    def _arith(self, i: int) -> int:
        depth = 0
        while i < len(self.text):
            after = self._slot(i, "arith")
            if after is not None:
                i = after
            elif self.text[i] == "(":
                depth += 1
                i += 1
            elif self.text[i] == ")":
                if depth == 0 and self.text.startswith("))", i):
                    return i + 2
                depth -= 1
                i += 1
            else:
                i += 1
        raise ShellScriptError("the script has an unclosed $((")

    def _comment(self, i: int) -> int:
        while i < len(self.text) and self.text[i] != "\n":
            after = self._slot(i, "comment")
            i = after if after is not None else i + 1
        return i

    def _heredoc_operator(self, i: int) -> int:
        text = self.text
        strip_tabs = text.startswith("-", i)
        i += 1 if strip_tabs else 0
        while i < len(text) and text[i] in " \t":
            i += 1
        start, literal, quote = i, False, None
        while i < len(text):
            if self.pattern.match(text, i):
                self._slot(i, "delimiter")
                raise ShellScriptError(REFUSED["delimiter"])
            char = text[i]
            if quote is not None:
                if char == quote:
                    quote = None
                i += 1
            elif char in "'\"":
                quote, literal = char, True
                i += 1
            elif char == "\\":
                literal = True
                i += 2
            elif char in _DELIMITER_END:
                break
            else:
                i += 1
        word = text[start:i]
        delimiter = re.sub(r"\\(.)", r"\1", word.replace("'", "").replace('"', ""))
        if not delimiter:
            raise ShellScriptError("a heredoc (<<) has no delimiter")
        self.pending.append(Heredoc(delimiter, strip_tabs, literal))
        return i

    def _heredoc_bodies(self, i: int) -> int:
        """After a line break: the bodies of the heredocs opened on that line, in order."""
        pending, self.pending = self.pending, []
        for opened in pending:
            start = i
            while True:
                if i >= len(self.text):
                    raise ShellScriptError(f"heredoc <<{opened.delimiter} is not closed")
                line_end = self.text.find("\n", i)
                line_end = len(self.text) if line_end < 0 else line_end
                line = self.text[i:line_end]
                if (line.lstrip("\t") if opened.strip_tabs else line) == opened.delimiter:
                    heredoc = Heredoc(opened.delimiter, opened.strip_tabs, opened.literal, start, i)
                    self._body_slots(start, i, heredoc)
                    i = line_end + 1
                    break
                i = line_end + 1
        return i

    def _body_slots(self, start: int, end: int, heredoc: Heredoc) -> None:
        context = "literal" if heredoc.literal else "heredoc"
        for match in self.pattern.finditer(self.text, start, end):
            self.slots.append(
                Slot(match.start(), match.end(), int(match.group(1)), context, heredoc)
            )


def locate(script: str, pattern: re.Pattern[str]) -> list[Slot]:
    """Every placeholder of `pattern` in `script`, with its context; refused ones raise."""
    slots = _Reader(script, pattern).read()
    for slot in slots:
        if slot.context in REFUSED:
            raise ShellScriptError(REFUSED[slot.context])
    return slots


def check_source(source: str) -> None:
    """Compile time: refuse a `shell: true` command whose `{{ }}` sit where no value is safe.

    `{% %}` blocks are dropped for this check (what they repeat is checked again, rendered,
    at run time)."""
    if "{{" not in source:
        return
    nonce = "check"
    counter = iter(range(1 << 30))
    text = _TEMPLATE.sub(lambda _: placeholder(nonce, next(counter)), source)
    locate(_BLOCK.sub("", text), placeholder_pattern(nonce))


def variable(index: int) -> str:
    return f"__maestro_{index}"


def bind(script: str, nonce: str, values: list[str]) -> str:
    """The final script: placeholders replaced by variable references (module docstring)."""
    pattern = placeholder_pattern(nonce)
    resolved: list[str] = []
    for value in values:  # a macro's or set block's output holds earlier placeholders
        resolved.append(pattern.sub(lambda m: resolved[int(m.group(1))], value))
    if not resolved:
        return script
    if any("\x00" in value for value in resolved):
        raise ShellScriptError("a templated value contains a NUL byte, which a shell cannot take")
    slots = locate(script, pattern)
    pieces: list[str] = []
    last = 0
    used: set[int] = set()
    literal_bodies: dict[Heredoc, None] = {}
    for slot in slots:
        pieces.append(script[last : slot.start])
        ref = "${" + variable(slot.index) + "}"
        if slot.context == "word":
            pieces.append(f'"{ref}"')
        elif slot.context == "single":
            pieces.append(f"'\"{ref}\"'")
        elif slot.context == "literal":
            pieces.append(resolved[slot.index])
            assert slot.heredoc is not None
            literal_bodies[slot.heredoc] = None
        else:  # double, heredoc
            pieces.append(ref)
        if slot.context != "literal":
            used.add(slot.index)
        last = slot.end
    pieces.append(script[last:])
    for heredoc in literal_bodies:
        _check_literal_body(script, pattern, resolved, heredoc)
    preamble = "".join(
        f"{variable(index)}={shlex.quote(resolved[index])}\n" for index in sorted(used)
    )
    return preamble + "".join(pieces)


def _check_literal_body(
    script: str, pattern: re.Pattern[str], values: list[str], heredoc: Heredoc
) -> None:
    """In a quoted heredoc the value is the text itself: none of its lines may end it."""
    text = script[heredoc.body_start : heredoc.body_end]
    body = pattern.sub(lambda m: values[int(m.group(1))], text)
    for line in body.split("\n"):
        if (line.lstrip("\t") if heredoc.strip_tabs else line) == heredoc.delimiter:
            raise ShellScriptError(
                f"a templated value in the heredoc <<'{heredoc.delimiter}' has a line "
                f"{heredoc.delimiter!r}, which would end it early"
            )
