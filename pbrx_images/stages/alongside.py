"""Work on a thread of its own while the build goes on, its output shown in its step.

The base image's install container is started this way while the wheels
are built (the engine does the work, so the client's thread mostly waits).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

from pbrx_images.engine import Engine
from pbrx_images.ui.output import Recorder, Reporter

T = TypeVar("T")


class Alongside(Generic[T]):
    """Work on a thread of its own while the build goes on (Docker does the work).

    It gets an engine of its own, whose output is recorded and shown when
    :meth:`result` is taken, in the step the work belongs to.
    """

    def __init__(self, engine: Engine, work: Callable[[Engine, Reporter], T]) -> None:
        self._recorder = Recorder()
        self._engine = Engine(engine.connection, self._recorder, engine.network, engine.platform)
        self._result: T | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0  #: how long the work took
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                        name="pbrx-images-alongside")
        self._thread.start()

    def _run(self, work: Callable[[Engine, Reporter], T]) -> None:
        started = time.monotonic()
        try:
            self._result = work(self._engine, self._recorder)
        except BaseException as error:  # raised where the result is taken
            self._error = error
        self.seconds = time.monotonic() - started

    def result(self, reporter: Reporter) -> T:
        """Wait for the work; tell ``reporter`` what it said; its result or its error."""
        self._thread.join()
        self._recorder.replay(reporter)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self) -> None:
        """Start no more containers, and wait for the work to end (its result dropped)."""
        self._engine.closed = True
        self._thread.join()
