"""What the user sees while a build runs, and the full log behind it.

Three ways to show a build, chosen by :class:`Reporter`'s arguments and its
stream:

* live (the default on a terminal): one line per step, redrawn in place with
  the time it has been running and the last line of output, then replaced by
  the step's result;
* plain (the default elsewhere, e.g. CI logs): a line when a step starts and
  one with its duration when it ends, no carriage returns or escape codes;
* verbose (``-v``, or ``--debug``): plain lines plus every command run in a
  container and its output as it comes.

Quiet (``-q``) shows only notes, errors and the final summary.  Commands and
their output always go to the log file, and the last lines of output are kept
so a failing step can show them.
"""
from __future__ import annotations

import codecs
import collections
import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator, Mapping, Sequence

from pbrx_images import interrupts
from pbrx_images.cache.files import logs_dir
from pbrx_images.ui import live

TAIL_LINES = 25
#: The live line is redrawn for new output at most this often (seconds).
REDRAW = 0.1


@dataclass
class _Running:
    """The step the live line shows."""

    title: str
    started: float
    header_shown: bool = False  #: its title is on a line of its own above the live line
    last_draw: float = float("-inf")


class Reporter:
    """Prints steps and keeps the build log.

    ``debug`` (or ``verbose``) shows commands and their output; ``quiet`` only
    notes, errors and tables.  ``environ`` (for ``TERM`` and ``NO_COLOR``),
    ``ticker`` (what redraws the live line while nothing else happens) and
    ``clock`` (``time.monotonic`` by default) are there for tests.
    """

    def __init__(self, stream: IO[str] | None = None, debug: bool = False,
                 log_path: Path | None = None, *, verbose: bool = False, quiet: bool = False,
                 environ: Mapping[str, str] | None = None, ticker: live.Ticker | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        environ = os.environ if environ is None else environ
        self.verbose = verbose or debug
        self.quiet = quiet and not self.verbose
        #: one line per step, redrawn in place
        self.live = live.is_terminal(self.stream, environ) and not (self.verbose or self.quiet)
        self.color = live.wants_color(self.stream, environ)
        self.log_path = log_path
        self._environ = environ
        self._ticker = ticker if ticker is not None else live.Ticker()
        self._clock = clock
        self._lock = threading.RLock()
        self._running: _Running | None = None
        self._log: IO[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.timings: list[tuple[str, float]] = []

    def open_log(self, log_path: Path) -> None:
        """Start writing the full log to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8", errors="replace")

    def close(self) -> None:
        """End a live line still on the screen (a step cut short) and close the log."""
        self._ticker.stop()
        with self._lock:
            if self._running is not None:
                self._running = None
                with contextlib.suppress(OSError, ValueError):
                    self._write(live.CLEAR)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write_log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(text)
            self._log.flush()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def _show(self, line: str) -> None:
        """Print a whole line; during a live step, above the live line."""
        with self._lock:
            running = self._running
            if running is None:
                self._write(line + "\n")
                return
            text = live.CLEAR
            if not running.header_shown:
                running.header_shown = True
                text += "%s %s\n" % (self._paint("==>", live.BLUE), running.title)
            self._write(text + line + "\n")
            self._draw()

    def _paint(self, text: str, style: str) -> str:
        return live.paint(text, style, self.color)

    def say(self, message: str) -> None:
        """A line for the user (and the log); not shown when quiet."""
        self._write_log(message + "\n")
        if not self.quiet:
            self._show(message)

    def detail(self, message: str) -> None:
        """A line for the log, shown only when verbose: the whole of what :meth:`say`
        gave in short (every layer of an image)."""
        self._write_log(message + "\n")
        if self.verbose:
            self._show(message)

    def note(self, message: str) -> None:
        """A remark that does not stop the build (shown even when quiet)."""
        self._write_log("    note: " + message + "\n")
        self._show("    %s %s" % (self._paint("note:", live.YELLOW), message))

    def error(self, message: str) -> None:
        """A line about a failure, shown even when quiet."""
        self._write_log(message + "\n")
        self._show(message)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Announce a step, then report how long it took (or that it failed).

        An interruption a finalizer swallowed since the last step is raised
        first (:func:`pbrx_images.interrupts.checkpoint`).
        """
        interrupts.checkpoint()
        self._write_log("==> " + title + "\n")
        self._tail.clear()
        self._partial = ""
        self._decoder.reset()
        started = self._now()
        try:  # (a signal may come at any moment: the live line must end in any case)
            if self.live:
                with self._lock:
                    self._running = _Running(title, started)
                    self._draw()
                self._ticker.start(self._tick)
            elif not self.quiet:
                self._show("%s %s" % (self._paint("==>", live.BLUE), title))
            yield
        except BaseException as error:
            # KeyboardInterrupt, or the SIGTERM the command turns into an exception
            word = "failed" if isinstance(error, Exception) else "interrupted"
            self._finish(title, "%s after %.1fs" % (word, self._now() - started), live.RED)
            raise
        elapsed = self._now() - started
        self.timings.append((title, elapsed))
        self._finish(title, "done in %.1fs" % elapsed, live.GREEN)

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Time work that is not a step of its own (nothing is shown); kept in
        :attr:`timings` (the JSON report) under ``(what)``."""
        started = self._now()
        yield
        self.timings.append(("(%s)" % what, self._now() - started))

    def _finish(self, title: str, result: str, style: str) -> None:
        """End a step's lines with ``result`` (e.g. ``done in 1.2s``)."""
        self._ticker.stop()
        self._write_log("    " + result + "\n")
        painted = self._paint(result, style)
        with self._lock:
            running, self._running = self._running, None
            if self.live:  # (a signal may have cut in before or while it was drawn)
                if running is not None and running.header_shown:
                    self._write(live.CLEAR + "    " + painted + "\n")
                else:
                    self._write("%s%s %s  %s\n" % (live.CLEAR, self._paint("==>", live.BLUE),
                                                   title, painted))
            elif not self.quiet:
                self._write("    " + painted + "\n")
            elif style == live.RED:  # quiet: which step failed belongs to the error
                self._write("==> %s  %s\n" % (title, painted))

    def _draw(self) -> None:
        """(Re)draw the live line of the running step; the lock is held."""
        running = self._running
        if running is None:
            return
        now = self._now()
        line = live.status_line(None if running.header_shown else running.title,
                                now - running.started, self._last_output(),
                                live.terminal_width(self.stream, self._environ), self.color)
        self._write(live.CLEAR + line)
        running.last_draw = now

    def _tick(self) -> None:
        """Redraw the live line so its clock moves (called by the ticker's thread)."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._draw()

    def _last_output(self) -> str:
        for line in reversed([*self._tail, self._partial]):
            shown = live.visible(line)
            if shown:
                return shown
        return ""

    def command(self, argv: Sequence[str] | str) -> None:
        """Record a command about to run (shown when verbose)."""
        text = argv if isinstance(argv, str) else " ".join(argv)
        self._write_log("$ " + text + "\n")
        if self.verbose:
            self._write("    $ " + text + "\n")

    def output(self, data: bytes | str) -> None:
        """Record output of a running command (shown when verbose)."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        self._write_log(text)
        if self.verbose:
            self._write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self._tail.extend(line.rstrip("\r") for line in lines)
        if self._running is not None:
            with self._lock:
                running = self._running
                if running is not None and self._now() - running.last_draw >= REDRAW:
                    self._draw()

    def tail(self) -> list[str]:
        """The last lines of output since the current step began."""
        lines = list(self._tail)
        if self._partial:
            lines.append(self._partial)
        return lines

    def table(self, rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
        """Print an aligned table (shown even when quiet: it is the summary)."""
        widths = [max(len(str(row[i])) for row in [header, *rows])
                  for i in range(len(header))]
        for row in [header, *rows]:
            cells = (str(cell).ljust(width) for cell, width in zip(row, widths))
            line = "  ".join(cells).rstrip()
            self._write_log(line + "\n")
            self._show(line)


class Recorder(Reporter):
    """A reporter for work done alongside the current step: keeps what it is told.

    :meth:`replay` tells it to a real reporter later, inside the step the
    work belongs to, so that lines of two steps never mix.
    """

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.told: list[tuple[str, tuple[object, ...]]] = []

    def say(self, message: str) -> None:
        self.told.append(("say", (message,)))

    def detail(self, message: str) -> None:
        self.told.append(("detail", (message,)))

    def note(self, message: str) -> None:
        self.told.append(("note", (message,)))

    def error(self, message: str) -> None:
        self.told.append(("error", (message,)))

    def command(self, argv: Sequence[str] | str) -> None:
        self.told.append(("command", (argv,)))

    def output(self, data: bytes | str) -> None:
        self.told.append(("output", (data,)))

    def replay(self, reporter: Reporter) -> None:
        """Tell ``reporter`` everything, in order (once)."""
        told, self.told = self.told, []
        for method, arguments in told:
            getattr(reporter, method)(*arguments)


@contextlib.contextmanager
def logged(reporter: Reporter, stem: str) -> Iterator[None]:
    """The reporter writes a log file of its own while the block runs.

    ``$XDG_CACHE_HOME/pbrx-images/logs/{time}-{stem}.log``; one that cannot
    be written is a note, not a failure.
    """
    log_path = logs_dir() / ("%s-%s.log" % (time.strftime("%Y%m%d-%H%M%S"), stem))
    try:
        reporter.open_log(log_path)
    except OSError:
        reporter.note("cannot write a log file under %s" % log_path.parent)
    try:
        yield
    finally:
        reporter.close()
