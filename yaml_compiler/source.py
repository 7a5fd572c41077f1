"""YAML loading that remembers where every key and value came from.

libyaml composes the node tree (fast, in C); we build plain Python values from it and record
the line/column of every field path, so later stages can report `file:line:col`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yaml_compiler.diagnostics import Diagnostic, FieldPath, WorkflowCompileError, format_path

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


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


def load_yaml(text: str, filename: str) -> SourceDocument:
    """Parse one YAML document; syntax errors and duplicate keys become diagnostics."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        raise WorkflowCompileError(
            [Diagnostic(filename, line, col, "<root>", f"invalid YAML: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise WorkflowCompileError(
            [Diagnostic(filename, 1, 1, "<root>", f"invalid YAML: {exc}")]
        ) from None
    finally:
        loader.dispose()
    doc = SourceDocument(filename=filename, value=None)
    if root is None:
        raise WorkflowCompileError([Diagnostic(filename, 1, 1, "<root>", "the file is empty")])
    problems: list[Diagnostic] = []
    doc.value = _build(root, (), doc, loader, problems)
    if problems:
        raise WorkflowCompileError(problems)
    return doc


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    node: yaml.Node,
    path: FieldPath,
    doc: SourceDocument,
    loader: yaml.SafeLoader,
    problems: list[Diagnostic],
    ancestors: frozenset[int] = frozenset(),
) -> Any:
    doc.positions.setdefault(path, _mark(node))
    if id(node) in ancestors:
        line, col = _mark(node)
        problems.append(
            Diagnostic(doc.filename, line, col, format_path(path), "an alias refers to itself")
        )
        return None
    ancestors = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        inherited: set[Any] = set()  # keys from `<<: *anchor`; the mapping's own keys override them
        for key_node, value_node, own in _merged_pairs(node, path, doc, problems):
            key = _build_key(key_node, loader) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or isinstance(key, (list, dict)):
                line, col = _mark(key_node)
                problems.append(
                    Diagnostic(doc.filename, line, col, format_path(path), "keys must be scalars")
                )
                continue
            child = (*path, key)
            if key in result and own and key not in inherited:
                line, col = _mark(key_node)
                problems.append(
                    Diagnostic(
                        doc.filename, line, col, format_path(child), "duplicate key in mapping"
                    )
                )
                continue
            if own:
                inherited.discard(key)
            else:
                inherited.add(key)
            doc.positions[child] = _mark(key_node)
            result[key] = _build(value_node, child, doc, loader, problems, ancestors)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, index), doc, loader, problems, ancestors)
            for index, item in enumerate(node.value)
        ]
    return _build_scalar(node, loader)


def _merged_pairs(
    node: yaml.MappingNode,
    path: FieldPath,
    doc: SourceDocument,
    problems: list[Diagnostic],
    active: frozenset[int] = frozenset(),
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
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in reversed(sources):  # the first source takes precedence, so it comes last
            if isinstance(source, yaml.MappingNode) and id(source) not in active | {id(node)}:
                pairs = _merged_pairs(source, path, doc, problems, active | {id(node)})
                inherited.extend((key, value, False) for key, value, _ in pairs)
            else:
                line, col = _mark(source)
                problems.append(
                    Diagnostic(
                        doc.filename,
                        line,
                        col,
                        format_path(path),
                        "<< merges a mapping (not itself) or a list of mappings",
                    )
                )
    return inherited + own


def _build_key(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """Keys are text as written: `on:` is not `True`, `200:` is not `200` (outputs are JSON,
    whose keys are strings). A null key stays None and is reported by the caller."""
    if node.tag in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG):
        return node.value
    return _build_scalar(node, loader)


def _build_scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    # Dates stay strings: the DSL has no date type, and a datetime would not survive JSON.
    if node.tag == _TIMESTAMP_TAG:
        return node.value
    return loader.construct_object(node, deep=True)
