"""What the user sees while a build runs, and the full log behind it.

Every step prints one line when it starts and one with its duration when it
ends.  Commands and their output always go to the log file; with ``debug``
they are also shown as they happen.  The last lines of output are kept so a
failing step can show them.
"""
from __future__ import annotations

import codecs
import collections
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import IO, Iterator, Sequence

TAIL_LINES = 25


def default_log_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/logs`` (never inside the project)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "pbrx-images" / "logs"


class Reporter:
    """Prints steps and keeps the build log."""

    def __init__(self, stream: IO[str] | None = None, debug: bool = False,
                 log_path: Path | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.debug = debug
        self.log_path = log_path
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
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write_log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(text)
            self._log.flush()

    def say(self, message: str) -> None:
        """A line for the user (and the log)."""
        print(message, file=self.stream, flush=True)
        self._write_log(message + "\n")

    def note(self, message: str) -> None:
        """A remark that does not stop the build."""
        self.say("    note: " + message)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Announce a step, then report how long it took (or that it failed)."""
        self.say("==> " + title)
        self._tail.clear()
        self._partial = ""
        self._decoder.reset()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.say("    failed after %.1fs" % (time.monotonic() - started))
            raise
        elapsed = time.monotonic() - started
        self.timings.append((title, elapsed))
        self.say("    done in %.1fs" % elapsed)

    def command(self, argv: Sequence[str] | str) -> None:
        """Record a command about to run."""
        text = argv if isinstance(argv, str) else " ".join(argv)
        self._write_log("$ " + text + "\n")
        if self.debug:
            print("    $ " + text, file=self.stream, flush=True)

    def output(self, data: bytes | str) -> None:
        """Record output of a running command."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        self._write_log(text)
        if self.debug:
            self.stream.write(text)
            self.stream.flush()
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self._tail.extend(line.rstrip("\r") for line in lines)

    def tail(self) -> list[str]:
        """The last lines of output since the current step began."""
        lines = list(self._tail)
        if self._partial:
            lines.append(self._partial)
        return lines

    def table(self, rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
        """Print an aligned table."""
        widths = [max(len(str(row[i])) for row in [header, *rows])
                  for i in range(len(header))]
        for row in [header, *rows]:
            cells = (str(cell).ljust(width) for cell, width in zip(row, widths))
            self.say("  ".join(cells).rstrip())
