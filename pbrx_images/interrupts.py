"""Ctrl-C and SIGTERM during a build, without leaving anything behind.

:func:`deferred` holds SIGINT and SIGTERM off while a step that must not be
cut short runs (tagging, clean-up); they act as soon as it ends.
:func:`temporary_directory` is :class:`tempfile.TemporaryDirectory` without
its gap: a signal that arrives just after the directory is made, before its
removal is arranged, would otherwise leave it behind.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import threading
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Let the block finish: SIGINT and SIGTERM that arrive meanwhile act after it.

    Outside the main thread (where Python runs signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        handler = previous[received[0]] if received else None
        if callable(handler) and sys.exc_info()[0] is None:
            handler(received[0], None)  # delivered now (when not already failing)


@contextlib.contextmanager
def temporary_directory(prefix: str) -> Iterator[str]:
    """A new directory under the temporary directory, removed at the end, signal or not."""
    with contextlib.ExitStack() as removal:
        with deferred():
            path = tempfile.mkdtemp(prefix=prefix)
            removal.callback(_remove, path)
        yield path


def _remove(path: str) -> None:
    with deferred():
        shutil.rmtree(path, ignore_errors=True)
