"""What went wrong on the wire, said plainly: LLM clients (openai, litellm, ollama, httpx) wrap
a cut connection or a non-JSON answer in generic errors ("Connection error.", "Expecting
value: line 1 column 1"); the step's error should name the cause and its kind."""

from __future__ import annotations

import json

_CUT = ("RemoteProtocolError", "ReadError", "WriteError", "IncompleteRead", "ConnectionResetError")
_REFUSED = ("ConnectError", "ConnectionRefusedError")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def wire_fault(error: BaseException) -> tuple[str, str] | None:
    """(error kind, plain cause) when `error` comes from a broken exchange with the server,
    else None. Looks through the exception's causes, where the clients keep the real error."""
    for cause in _chain(error):
        name = type(cause).__name__
        if isinstance(cause, json.JSONDecodeError):
            return (
                "server_error",
                f"the server's answer is not JSON ({cause.msg} at char {cause.pos})",
            )
        if name in _CUT:
            return (
                "connection",
                f"the server closed the connection before its answer was complete ({cause})",
            )
        if name in _REFUSED:
            return "connection", f"the server cannot be reached ({cause})"
    return None


def describe(error: BaseException, message: str) -> tuple[str | None, str]:
    """(kind or None, `message` with the plain cause in front when there is one)."""
    fault = wire_fault(error)
    if fault is None:
        return None, message
    kind, cause = fault
    return kind, f"{cause}: {message}"
