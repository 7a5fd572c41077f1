"""A bounded pool of daemon worker threads, each with its own asyncio event loop.

Daemon threads, because a step stuck in a blocking call must not keep the run's process alive
once the run has ended (a ThreadPoolExecutor joins its threads at interpreter exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import queue
import threading
from collections.abc import Callable

Work = Callable[[asyncio.AbstractEventLoop], None]


class WorkerPool:
    """Up to `size` threads, started when work arrives and no thread is free to take it."""

    def __init__(self, size: int, name: str = "maestro-step") -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._waiting = 0  # threads blocked on the queue
        self._unclaimed = 0  # work items no thread has taken yet

    def submit(self, work: Work) -> None:
        with self._lock:
            self._unclaimed += 1
            if self._unclaimed > self._waiting and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._loop, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._work.put(work)

    def _loop(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while True:
                with self._lock:
                    self._waiting += 1
                work = self._work.get()
                with self._lock:
                    self._waiting -= 1
                    if work is not None:
                        self._unclaimed -= 1
                if work is None:
                    return
                with contextlib.suppress(BaseException):  # work reports its own errors
                    work(loop)
        finally:
            loop.close()

    def shutdown(self) -> None:
        """Let every thread exit once it is idle (a stuck one dies with the process)."""
        for _ in self._threads:
            self._work.put(None)


def raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> bool:
    """Raise `exception` in another thread at its next bytecode (None: withdraw one not yet
    raised). CPython delivers it only between bytecodes, so not inside a blocking C call."""
    target = ctypes.py_object(exception) if exception is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)
    return changed == 1
