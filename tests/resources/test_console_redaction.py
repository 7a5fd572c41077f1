"""What steps print passes their own redactor, line by line, also when they run at once."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from resources.console_redaction import HELD_LIMIT, HELD_TAIL, redacted_console


def _hide(secret: str) -> Callable[[str], str]:
    return lambda text: text.replace(secret, "***")


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """Point sys.stdout at a buffer, from inside the test (pytest's capture resets it between
    a fixture's set-up and the test)."""

    def capture() -> io.StringIO:
        captured = io.StringIO()
        monkeypatch.setattr(sys, "stdout", captured)
        return captured

    yield capture


def test_two_steps_at_once_each_hide_their_own_secret_even_printed_in_pieces(
    console: Callable[[], io.StringIO],
) -> None:
    captured = console()
    both_inside = threading.Barrier(2)

    def step(secret: str, name: str) -> None:
        with redacted_console(_hide(secret)):
            both_inside.wait()
            for _ in range(50):
                sys.stdout.write(f"{name} ")
                sys.stdout.write(secret[:4])
                sys.stdout.flush()  # a flush mid-value does not let the first half out
                sys.stdout.write(secret[4:] + "\n")

    threads = [
        threading.Thread(target=step, args=("alpha-secret-1", "a")),
        threading.Thread(target=step, args=("bravo-secret-2", "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = captured.getvalue().splitlines()
    assert sorted(set(lines)) == ["a ***", "b ***"] and len(lines) == 100
    assert sys.stdout is captured  # put back once the last step is done


def test_code_outside_a_step_writes_through_untouched(console: Callable[[], io.StringIO]) -> None:
    captured = console()
    inside = threading.Event()
    done = threading.Event()

    def step() -> None:
        with redacted_console(_hide("hidden-value")):
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=step)
    thread.start()
    inside.wait(10)
    sys.stdout.write("hidden-value from elsewhere, no newline")
    done.set()
    thread.join()
    assert captured.getvalue() == "hidden-value from elsewhere, no newline"


def test_the_unfinished_line_is_written_at_the_end_and_a_long_one_is_not_held_for_ever(
    console: Callable[[], io.StringIO],
) -> None:
    captured = console()
    with redacted_console(_hide("s3cr3t")):
        sys.stdout.write("progress s3cr3t")
        assert captured.getvalue() == ""  # held: the value may go on in the next write
    assert captured.getvalue() == "progress ***"
    captured.truncate(0)
    captured.seek(0)
    with redacted_console(_hide("s3cr3t")):
        sys.stdout.write("x" * (HELD_LIMIT + 10))
        assert captured.getvalue() == "x" * (HELD_LIMIT + 10 - HELD_TAIL)
    assert captured.getvalue() == "x" * (HELD_LIMIT + 10)


def test_a_thread_the_step_left_running_still_writes_redacted(
    console: Callable[[], io.StringIO],
) -> None:
    captured = console()
    go, wrote = threading.Event(), threading.Event()

    def leftover() -> None:
        go.wait(10)
        print("late leftover-secret")
        wrote.set()

    with redacted_console(_hide("leftover-secret")):
        import contextvars

        threading.Thread(target=contextvars.copy_context().run, args=(leftover,)).start()
        with redacted_console(_hide("other")):  # another step keeps the wrappers installed
            go.set()
            assert wrote.wait(10)
    assert captured.getvalue() == "late ***\n"


def test_nothing_is_wrapped_without_a_secret(console: Callable[[], io.StringIO]) -> None:
    captured = console()
    with redacted_console(None):
        assert sys.stdout is captured


class _LoggingOnFirstWrite(io.StringIO):
    """As the threads executor's step stream is: its first write opens the step's log files
    and logs that event, which writes to sys.stdout again, from inside this write."""

    def __init__(self) -> None:
        super().__init__()
        self.first = True

    def write(self, text: str) -> int:
        if self.first:
            self.first = False
            sys.stdout.write("opened the step's log files\n")
        return super().write(text)


def test_a_write_that_writes_again_does_not_deadlock(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = _LoggingOnFirstWrite()
    monkeypatch.setattr(sys, "stdout", inner)

    def step() -> None:
        with redacted_console(_hide("s3cr3t")):
            print("first line s3cr3t")

    thread = threading.Thread(target=step, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert inner.getvalue() == "opened the step's log files\nfirst line ***\n"
