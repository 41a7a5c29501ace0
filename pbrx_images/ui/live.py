"""The status line of a running step on a terminal, and what decides to draw one.

A terminal gets one line per step, redrawn in place: the step, how long it has
been running and the last line of output, shortened to the terminal's width so
that the line never wraps (a wrapped line cannot be redrawn with a carriage
return).  Anything that is not a terminal, or a terminal that says it is dumb,
gets plain lines and no escape codes at all.
"""
from __future__ import annotations

import os
import re
import threading
import unicodedata
from typing import IO, Callable, Mapping

#: Back to the start of the line and erase it.
CLEAR = "\r\x1b[K"
#: How often the elapsed time is redrawn when no output arrives (seconds).
TICK = 1.0

BOLD = "1"
BLUE = "1;34"
GREEN = "32"
RED = "1;31"
YELLOW = "33"
DIM = "2"

_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def is_terminal(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """True if ``stream`` is a terminal that understands carriage returns and escape codes."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return bool(tty) and environ.get("TERM", "") != "dumb"


def wants_color(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Colours on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    return is_terminal(stream, environ) and not environ.get("NO_COLOR")


def paint(text: str, style: str | None, color: bool) -> str:
    """``text`` in the SGR ``style`` (e.g. ``"1;31"``) when colours are wanted."""
    return "\x1b[%sm%s\x1b[0m" % (style, text) if color and style and text else text


def elapsed_text(seconds: float) -> str:
    """``0:42``, ``12:03``, ``1:02:03``: a clock that fits a status line."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%d:%02d:%02d" % (hours, minutes, secs)
    return "%d:%02d" % (minutes, secs)


def visible(text: str) -> str:
    """What a line of output shows once redrawn: its last ``\\r`` segment, no escapes."""
    segments = [segment for segment in text.split("\r") if segment.strip()]
    text = segments[-1] if segments else ""
    text = _ESCAPE.sub("", text).replace("\t", " ")
    return _CONTROL.sub("", text).strip()


def char_cells(char: str) -> int:
    """Terminal cells one character takes: 0 for combining marks and format
    characters (a zero-width joiner), 2 for East Asian wide and fullwidth ones
    (CJK, most emoji), else 1.

    Python's own Unicode database decides, so no dependency is needed for
    what a status line shows; a wcwidth-style table would also know the
    emoji sequences a variation selector widens, which only cost a line
    cut a cell early or late.
    """
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal cells ``text`` takes (:func:`char_cells`), not ``len()``."""
    if text.isascii():
        return len(text)
    return sum(char_cells(char) for char in text)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal cells, ending with ``...`` when cut."""
    if width <= 0:
        return ""
    if cells(text) <= width:
        return text
    limit = width - 3 if width > 3 else width
    if text.isascii():
        kept = text[:limit]
    else:
        used, end = 0, 0
        for end, char in enumerate(text):
            used += char_cells(char)
            if used > limit:
                break
        kept = text[:end]
    return kept + "..." if width > 3 else kept


def status_line(title: str | None, elapsed: float, last: str, width: int,
                color: bool = False) -> str:
    """The line of a running step, at most ``width - 1`` terminal cells wide.

    ``title`` None means the step's title is already on a line above (a note or
    message was printed during the step), so the line is indented instead.
    """
    room = max(width - 1, 10)
    clock = elapsed_text(elapsed)
    lead = "==> " if title is not None else "    "
    name = title or ""
    fixed = len(lead) + (cells(name) + 2 if name else 0) + len(clock)
    if fixed > room and name:  # keep the clock visible: shorten the title
        name = shorten(name, max(room - len(lead) - 2 - len(clock), 4))
        fixed = len(lead) + cells(name) + 2 + len(clock)
    rest = room - fixed - 2
    last = shorten(last, rest) if rest >= 8 else ""
    parts = [paint("==>", BLUE, color) + " " if title is not None else lead]
    if name:
        parts.append(paint(name, BOLD, color) + "  ")
    parts.append(clock)
    if last:
        parts.append("  " + paint(last, DIM, color))
    return "".join(parts)


def terminal_width(stream: IO[str], environ: Mapping[str, str]) -> int:
    """Columns of the terminal behind ``stream`` (``$COLUMNS`` or 80 when unknown)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        try:
            return int(environ.get("COLUMNS", "")) or 80
        except ValueError:
            return 80


class Ticker:
    """Calls a function every :data:`TICK` seconds on a daemon thread, until stopped."""

    def __init__(self, interval: float = TICK) -> None:
        self.interval = interval
        self._stopped: threading.Event | None = None

    def start(self, tick: Callable[[], None]) -> None:
        self.stop()
        stopped = self._stopped = threading.Event()

        def loop() -> None:
            while not stopped.wait(self.interval):
                tick()

        threading.Thread(target=loop, name="pbrx-images-ticker", daemon=True).start()

    def stop(self) -> None:
        """Stop ticking (without waiting: a tick under way finds the step ended)."""
        if self._stopped is not None:
            self._stopped.set()
            self._stopped = None
