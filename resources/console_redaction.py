"""What a step's own code prints (`print`, `sys.stdout.write`) passes its redactor first.

A shell step's output is redacted line by line as the plugin reads it; a `python` step's
function, or any plugin, writes to `sys.stdout`/`sys.stderr` straight into the compute log (and
under the threads executor into the step's own file). While `redacted_console(redact)` is open,
those two streams are wrappers that hold what the step's context writes until a line is
complete, then write it redacted (a secret printed in pieces is still one value on its line).
The redactor lives in a context variable, so steps running at once in threads each use their
own and code outside a step writes through untouched.

Not covered: writes to the underlying descriptors (`os.write(1, ...)`, C extensions, child
processes that inherit them; shell steps redact their children's pipes themselves) and
`sys.stdout.buffer`.
"""

from __future__ import annotations

import contextvars
import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

HELD_LIMIT = 64 * 1024
"""Text without a newline is held up to this size, then written out but for its last
HELD_TAIL characters (a progress bar that never ends its line must still show)."""
HELD_TAIL = 4096


class _StepConsole:
    """One step's redactor and the unfinished line of each stream."""

    def __init__(self, redact: Callable[[str], str]):
        self.redact = redact
        self.held = ["", ""]
        self.closed = False
        self.lock = threading.Lock()

    def write(self, stream: IO[str], which: int, text: str) -> None:
        with self.lock:  # only the buffer: writing below may log, and come back here
            if self.closed:  # a thread the step left running: no more holding back
                ready = text
            else:
                self.held[which] += text
                ready = self._take(which, everything=False)
        if ready:
            stream.write(self.redact(ready))

    def _take(self, which: int, everything: bool) -> str:
        """The complete lines held for the stream (or everything), no longer held."""
        held = self.held[which]
        cut = len(held) if everything else held.rfind("\n") + 1
        if len(held) - cut > HELD_LIMIT:
            cut = len(held) - HELD_TAIL
        self.held[which] = held[cut:]
        return held[:cut]

    def finish(self, streams: tuple[IO[str], IO[str]]) -> None:
        with self.lock:
            rest = [self._take(which, everything=True) for which in (0, 1)]
            self.closed = True
        for stream, text in zip(streams, rest, strict=True):
            if text:
                stream.write(self.redact(text))


_console: contextvars.ContextVar[_StepConsole | None] = contextvars.ContextVar(
    "maestro_step_console", default=None
)
_lock = threading.Lock()
_users = 0
_originals: tuple[IO[str], IO[str]] | None = None


class RedactingStream(io.TextIOBase):
    """A `sys.stdout`/`sys.stderr` stand-in: a step's writes go redacted, line by line, to the
    stream it replaced; anything else goes there as it is."""

    def __init__(self, inner: IO[str], which: int):
        self.inner = inner
        self._which = which

    def write(self, text: str) -> int:
        console = _console.get()
        if console is None:
            return self.inner.write(text)
        console.write(self.inner, self._which, text)
        return len(text)

    def flush(self) -> None:  # what is held waits for its line's end, or the step's
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _install() -> None:
    global _users, _originals
    with _lock:
        if _users == 0:
            _originals = sys.stdout, sys.stderr
            sys.stdout = RedactingStream(_originals[0], 0)
            sys.stderr = RedactingStream(_originals[1], 1)
        _users += 1


def _uninstall() -> None:
    global _users, _originals
    with _lock:
        _users -= 1
        if _users == 0 and _originals is not None:
            if isinstance(sys.stdout, RedactingStream):
                sys.stdout = _originals[0]
            if isinstance(sys.stderr, RedactingStream):
                sys.stderr = _originals[1]
            _originals = None


@contextmanager
def redacted_console(redact: Callable[[str], str] | None) -> Iterator[None]:
    """Redact what this context (a step, and the threads it starts with its context) prints;
    nothing changes when `redact` is None (no secret to hide)."""
    if redact is None:
        yield
        return
    _install()
    console = _StepConsole(redact)
    token = _console.set(console)
    try:
        yield
    finally:
        streams = sys.stdout, sys.stderr
        inner = tuple(s.inner if isinstance(s, RedactingStream) else s for s in streams)
        console.finish((inner[0], inner[1]))
        _console.reset(token)
        _uninstall()
