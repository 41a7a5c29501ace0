"""What a terminal shows: enough of one to check the live progress display."""
from __future__ import annotations

import re

#: Colours and the other SGR escape codes (they take no room on the screen).
SGR = re.compile(r"\x1b\[[0-9;]*m")


def screen(text: str) -> list[str]:
    """The rows a terminal shows after ``text``: \\r, erase-line and newlines applied.

    Only what the live display writes is understood: carriage return, line
    feed, ``ESC [ K`` (erase to the end of the line) and colours (ignored).
    """
    rows = [""]
    column = 0
    for token in re.split(r"(\r|\n|\x1b\[K|\x1b\[[0-9;]*m)", text):
        if token == "\r":
            column = 0
        elif token == "\n":
            rows.append("")
            column = 0
        elif token == "\x1b[K":
            rows[-1] = rows[-1][:column]
        elif token.startswith("\x1b["):
            continue
        elif token:
            row = rows[-1]
            rows[-1] = row[:column] + token + row[column + len(token):]
            column += len(token)
    if rows[-1] == "":
        rows.pop()
    return rows
