"""Ctrl-C and SIGTERM during a build, without leaving anything behind.

Under :func:`watched` (the command's), SIGINT raises KeyboardInterrupt and
SIGTERM :class:`Interrupted` wherever the main thread is, so that clean-up
runs.
:func:`deferred` holds them off while a step that must not be cut short runs
(tagging, clean-up); they act as soon as it ends.
:func:`temporary_directory` is :class:`tempfile.TemporaryDirectory` without
its gap: a signal that arrives just after the directory is made, before its
removal is arranged, would otherwise leave it behind.

Python may run a signal handler inside a finalizer (say, of an HTTP
response the garbage collector frees), where the exception it raises is
dropped without a word: the signal would be lost.  So the interruption
raised is kept until the block ends, and :func:`checkpoint` (at the start of
every step) and the end of a :func:`deferred` block raise it again, unless
it is already on its way out.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import threading
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGTERM, raised where the program is so that clean-up runs."""


#: The interruption raised under :func:`watched`, until the block ends.
_pending: list[BaseException] = []
#: How many :func:`deferred` blocks the main thread is in.
_depth = 0


def _interrupt(error: BaseException) -> None:
    _pending[:] = [error]
    raise error


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """The command's SIGINT handler: KeyboardInterrupt, kept for :func:`checkpoint`."""
    _interrupt(KeyboardInterrupt())


def raise_interrupted(signum: int, frame: object) -> None:
    """The command's SIGTERM handler: :class:`Interrupted`, kept for :func:`checkpoint`."""
    _interrupt(Interrupted())


@contextlib.contextmanager
def watched() -> Iterator[None]:
    """SIGINT and SIGTERM raise, and what they raise is kept until the block ends."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, raise_keyboard_interrupt),
                signal.SIGTERM: signal.signal(signal.SIGTERM, raise_interrupted)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _pending.clear()


def checkpoint() -> None:
    """Raise again the interruption a finalizer swallowed, if any.

    Nothing in a :func:`deferred` block (the outermost raises it at its
    end), nor while that interruption is on its way out (clean-up).
    """
    if _pending and _depth == 0 and threading.current_thread() is threading.main_thread() \
            and sys.exc_info()[1] is not _pending[0]:
        raise _pending[0]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Let the block finish: SIGINT and SIGTERM that arrive meanwhile act after it.

    Outside the main thread (where Python runs signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _depth
    received: list[int] = []
    previous: dict[int, Any] = {}
    failing = False
    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    _depth += 1
    try:
        yield
    except BaseException:
        failing = True
        raise
    finally:
        _depth -= 1
        for number, handler in previous.items():
            signal.signal(number, handler)
        handler = previous[received[0]] if received else None
        if not failing:  # (a failure on its way out goes on as it is)
            if callable(handler):
                handler(received[0], None)  # delivered now
            checkpoint()


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
