"""YAML loading that remembers where every key and value came from.

libyaml composes the node tree (fast, in C); we build plain Python values from it and record
the line/column of every field path, so later stages can report `file:line:col`.

Loading is bounded, so a hostile file costs little before it is refused: the document's size
(`MAX_DOCUMENT_BYTES`, before parsing), the values built from it (`MAX_VALUES`; of them
`MAX_ALIAS_VALUES` through aliases and `<<` merges, counted as often as they are expanded: a
"billion laughs" stops there), its nesting
(`MAX_NESTING`), and only the standard JSON-like tags (no `!!python/...`, `!!binary`, `!!set`
or custom `!tags`). Every refusal is a positioned diagnostic.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yaml_compiler.diagnostics import Diagnostic, FieldPath, WorkflowCompileError, format_path

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_TAG = "tag:yaml.org,2002:"
_TIMESTAMP_TAG = _YAML_TAG + "timestamp"
_MERGE_TAG = _YAML_TAG + "merge"
_BOOL_TAG = _YAML_TAG + "bool"
_INT_TAG = _YAML_TAG + "int"
_FLOAT_TAG = _YAML_TAG + "float"
_STR_TAG = _YAML_TAG + "str"
_SCALAR_TAGS = frozenset(
    _YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_MAP_TAG = _YAML_TAG + "map"
_SEQ_TAG = _YAML_TAG + "seq"

MAX_DOCUMENT_BYTES = 512 * 1024
"""A workflow file's size limit: three times a generated 1,000-step workflow (bench/compile.py,
167 KB). Parsing is linear but not free (~3 µs a node): the cap keeps a refusal fast."""
MAX_VALUES = 100_000
"""Values (mappings, lists, scalars, merged pairs) built from one document, every alias
expansion counted: a 1,000-step workflow builds ~8,000."""
MAX_ALIAS_VALUES = 20_000
"""Of those, values built again through aliases and `<<` merges: a 5-key anchor merged into
each of 1,000 steps is 5,000; a "billion laughs" file stops here, in a few hundredths of a
second."""
MAX_NESTING = 50
"""Levels of mappings and lists inside each other (libyaml itself stops at 1,000)."""


@dataclass
class SourceDocument:
    """A parsed YAML document plus the (line, col) of each field path, 1-based."""

    filename: str
    value: Any
    positions: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)

    @functools.cached_property
    def folder(self) -> Path:
        """The workflow file's folder (plugins find files beside it, e.g. prompt templates)."""
        return Path(self.filename).resolve().parent

    def position(self, path: FieldPath) -> tuple[int, int]:
        """The position of `path`, or of its closest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return (1, 1)

    def diagnostic(self, path: FieldPath, message: str) -> Diagnostic:
        line, col = self.position(path)
        return Diagnostic(self.filename, line, col, format_path(path), message)


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character `offset` in `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def size_limit_line(text: str, limit: int) -> int:
    """The line on which a document crosses `limit` characters (or bytes)."""
    return text.count("\n", 0, limit) + 1


def _root_error(filename: str, line: int, col: int, message: str) -> WorkflowCompileError:
    return WorkflowCompileError([Diagnostic(filename, line, col, "<root>", message)])


def load_yaml(text: str, filename: str) -> SourceDocument:
    """Parse one YAML document; syntax errors, duplicate keys and the bounds above become
    diagnostics."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _root_error(
            filename,
            size_limit_line(text, MAX_DOCUMENT_BYTES),
            1,
            f"the document is {len(text):,} characters long; the limit is "
            f"{MAX_DOCUMENT_BYTES // 1024} KiB",
        )
    root = _compose(text, filename)
    doc = SourceDocument(filename=filename, value=None)
    if root is None:
        raise _root_error(filename, 1, 1, "the file is empty")
    builder = _Builder(doc, _Loader(""), _marks_for(text))
    try:
        doc.value = builder.build(root, (), frozenset())
    except _Refused as refused:
        builder.problems.append(refused.diagnostic)
    if builder.problems:
        raise WorkflowCompileError(builder.problems)
    return doc


def _compose(text: str, filename: str) -> yaml.Node | None:
    try:
        loader = _Loader(text)
    except UnicodeError as exc:  # a lone surrogate cannot be handed to libyaml
        start = getattr(exc, "start", 0)
        line, col = line_and_column(text, start)
        raise _root_error(
            filename, line, col, f"invalid text: character {text[start]!r} is not valid Unicode"
        ) from None
    try:
        return loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # a control character: libyaml gives a byte offset
        prefix = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "replace")
        line, col = line_and_column(prefix, len(prefix))
        raise _root_error(filename, line, col, f"invalid YAML: {_character_problem(exc)}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if mark is not None and any(br in text for br in _OTHER_LINE_BREAKS):
            line, col = line_and_column(text, mark.index)
        problem = exc.problem or str(exc)
        if mark is not None and _character_at(text, mark.line, mark.column) == "\t":
            problem += " (a tab: YAML is indented with spaces)"
        raise _root_error(filename, line, col, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise _root_error(filename, 1, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _character_problem(exc: yaml.reader.ReaderError) -> str:
    character = exc.character
    code = character if isinstance(character, int) else ord(character)
    name = "a NUL byte" if code == 0 else f"control character U+{code:04X}"
    return f"{name} is not allowed in a YAML file"


def _character_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based libyaml mark, or "" past the end."""
    start = 0
    for _ in range(line):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    return text[start + column : start + column + 1]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_OTHER_LINE_BREAKS = ("\x85", "\u2028", "\u2029")
"""YAML 1.1 line breaks that editors do not start a new line at: libyaml's line numbers
count them, so marks are recomputed from their character index when a text holds one."""


def _marks_for(text: str) -> Callable[[yaml.Node], tuple[int, int]]:
    if not any(br in text for br in _OTHER_LINE_BREAKS):
        return _mark
    starts = [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]

    def mark(node: yaml.Node) -> tuple[int, int]:
        index = node.start_mark.index
        line = bisect.bisect_right(starts, index)
        return (line, index - starts[line - 1] + 1)

    return mark


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


class _Refused(Exception):
    """A bound was crossed: building stops at once (a bomb must not keep running)."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


class _Builder:
    """Builds plain values from composed nodes, counting what it builds."""

    __slots__ = (
        "alias_budget", "budget", "built", "doc", "expanding", "loader", "mark", "problems",
    )  # fmt: skip

    def __init__(
        self,
        doc: SourceDocument,
        loader: yaml.SafeLoader,
        mark: Callable[[yaml.Node], tuple[int, int]] = _mark,
    ):
        self.doc = doc
        self.mark = mark
        self.loader = loader
        self.problems: list[Diagnostic] = []
        self.budget = MAX_VALUES
        self.alias_budget = MAX_ALIAS_VALUES
        self.built: set[int] = set()  # mappings and lists built once: again means an alias
        self.expanding = False

    def problem(self, node: yaml.Node, path: FieldPath, message: str) -> None:
        line, col = self.mark(node)
        self.problems.append(Diagnostic(self.doc.filename, line, col, format_path(path), message))

    def refuse(self, node: yaml.Node, path: FieldPath, message: str) -> _Refused:
        line, col = self.mark(node)
        return _Refused(Diagnostic(self.doc.filename, line, col, format_path(path), message))

    def spend(self, count: int, node: yaml.Node, path: FieldPath, expanding: bool) -> None:
        self.budget -= count
        if self.budget < 0:
            raise self.refuse(
                node,
                path,
                f"the document expands to more than {MAX_VALUES:,} values (aliases and << "
                "merges count each time they are used): too large for a workflow",
            )
        if expanding:
            self.alias_budget -= count
            if self.alias_budget < 0:
                raise self.refuse(
                    node,
                    path,
                    f"aliases and << merges expand to more than {MAX_ALIAS_VALUES:,} values "
                    "(each counted every time it is used): too large for a workflow",
                )

    def build(self, node: yaml.Node, path: FieldPath, ancestors: frozenset[int]) -> Any:
        positions = self.doc.positions
        if path not in positions:
            positions[path] = self.mark(node)
        self.spend(1, node, path, self.expanding)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in ancestors:
            self.problem(node, path, "an alias refers to itself")
            return None
        if len(path) >= MAX_NESTING:
            raise self.refuse(
                node, path, f"nested more than {MAX_NESTING} levels deep: too deep for a workflow"
            )
        if self.expanding or id(node) not in self.built:
            self.built.add(id(node))
            return self.collection(node, path, ancestors)
        self.expanding = True  # this node was built before: an alias, expanded again
        try:
            return self.collection(node, path, ancestors)
        finally:
            self.expanding = False

    def collection(self, node: yaml.Node, path: FieldPath, ancestors: frozenset[int]) -> Any:
        ancestors = ancestors | {id(node)}
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                self.problem(node, path, _tag_message(node.tag, "a mapping"))
                return None
            return self.mapping(node, path, ancestors)
        if node.tag != _SEQ_TAG:
            self.problem(node, path, _tag_message(node.tag, "a list"))
            return None
        return [
            self.build(item, (*path, index), ancestors) for index, item in enumerate(node.value)
        ]

    def mapping(self, node: yaml.MappingNode, path: FieldPath, ancestors: frozenset[int]) -> Any:
        result: dict[Any, Any] = {}
        inherited: set[Any] = set()  # keys from `<<: *anchor`; the mapping's own keys override them
        for key_node, value_node, own in self.merged_pairs(node, path):
            key = self.key(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or isinstance(key, (list, dict)):
                self.problem(key_node, path, "keys must be scalars")
                continue
            child = (*path, key)
            if key in result and own and key not in inherited:
                self.problem(key_node, child, "duplicate key in mapping")
                continue
            if own:
                inherited.discard(key)
            else:
                inherited.add(key)
            self.doc.positions[child] = self.mark(key_node)
            result[key] = self.build(value_node, child, ancestors)
        return result

    def merged_pairs(
        self, node: yaml.MappingNode, path: FieldPath, active: frozenset[int] = frozenset()
    ) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """(key, value, own) pairs with `<<` merges resolved, inherited pairs first.

        Unlike the loader's flatten_mapping this leaves the node as written, so a mapping built
        again through an alias still tells its own keys (which override) from inherited ones.
        """
        inherited: list[tuple[yaml.Node, yaml.Node, bool]] = []
        own: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node, True))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in reversed(sources):  # the first source takes precedence, so it comes last
                if isinstance(source, yaml.MappingNode) and id(source) not in active | {id(node)}:
                    pairs = self.merged_pairs(source, path, active | {id(node)})
                    self.spend(len(pairs), source, path, expanding=True)
                    inherited.extend((key, value, False) for key, value, _ in pairs)
                else:
                    self.problem(
                        source, path, "<< merges a mapping (not itself) or a list of mappings"
                    )
        return inherited + own

    def key(self, node: yaml.ScalarNode, path: FieldPath) -> Any:
        """Keys are text as written: `on:` is not `True`, `200:` is not `200` (outputs are JSON,
        whose keys are strings). A null key stays None and is reported by the caller."""
        if node.tag in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG):
            return node.value
        return self.scalar(node, path)

    def scalar(self, node: yaml.ScalarNode, path: FieldPath) -> Any:
        tag = node.tag
        # Dates stay strings: the DSL has no date type, and a datetime would not survive JSON.
        if tag == _TIMESTAMP_TAG:
            return node.value
        if tag == _STR_TAG:
            value: Any = node.value
        elif tag not in _SCALAR_TAGS:
            self.problem(node, path, _tag_message(tag, "a value"))
            return None
        else:
            try:
                value = self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError, KeyError, OverflowError):
                self.problem(node, path, f"{node.value!r} is not a valid {_tag_name(tag)}")
                return None
        if isinstance(value, str) and "\x00" in value:
            self.problem(node, path, "a NUL character (\\0) is not allowed in a value")
            return None
        return value


def _tag_message(tag: str, what: str) -> str:
    return (
        f"YAML tag {_tag_name(tag)!r} on {what} is not allowed; use only the standard tags "
        "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"
    )
