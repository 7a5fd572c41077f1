"""Compile errors that point at a file, a line and a field, so users can fix them in one pass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathSegment = str | int
FieldPath = tuple[PathSegment, ...]


def format_path(path: Sequence[PathSegment]) -> str:
    """Render `("stages", 1, "steps", 0, "with")` as `stages[1].steps[0].with`."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else str(segment)
    return text or "<root>"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one workflow file."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"


class WorkflowCompileError(Exception):
    """Raised with every problem found in a workflow, not only the first one."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: list[Diagnostic] = sorted(set(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics))
