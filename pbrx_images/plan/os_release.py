"""Parse the content of an ``/etc/os-release`` file.

The format is described in os-release(5)
(https://www.freedesktop.org/software/systemd/man/latest/os-release.html):
one ``KEY=value`` assignment per line; values containing spaces or shell
special characters are enclosed in single or double quotes, and inside double
quotes (or unquoted) a backslash escapes the next character.  Lines starting
with ``#`` are comments; blank lines are ignored.  The specification asks
readers to ignore lines they cannot parse, so malformed lines are skipped
rather than reported.  A trailing ``# comment`` after a value is allowed,
as in shell.
"""

from __future__ import annotations

import re

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")

# Characters that, unquoted and unescaped, make a value malformed in shell.
_SHELL_SPECIAL = frozenset(";&|<>()`$")

# Inside double quotes a backslash escapes only these characters.
_DOUBLE_QUOTE_ESCAPABLE = frozenset('"\\$`')


def parse_os_release(text: str) -> dict[str, str]:
    """Return the assignments in *text* (an os-release file) as a dict.

    Keys keep their case (``ID``, ``VERSION_ID``, ...).  When a key is
    assigned more than once the last assignment wins, as it would in shell.
    """
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            continue
        value = _unquote(match.group(2))
        if value is not None:
            result[match.group(1)] = value
    return result


def _unquote(raw: str) -> str | None:
    """Return the shell value of *raw*, or None if it is not a single word.

    Handles unquoted text, '...' and "..." parts, and their concatenation
    (``"a"'b'c`` is ``abc``), as a POSIX shell would for an assignment.
    """
    value: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "'":
            end = raw.find("'", i + 1)
            if end == -1:
                return None
            value.append(raw[i + 1:end])
            i = end + 1
        elif char == '"':
            i += 1
            while True:
                if i >= len(raw):
                    return None
                char = raw[i]
                if char == '"':
                    i += 1
                    break
                if (char == "\\" and i + 1 < len(raw)
                        and raw[i + 1] in _DOUBLE_QUOTE_ESCAPABLE):
                    value.append(raw[i + 1])
                    i += 2
                else:
                    value.append(char)
                    i += 1
        elif char == "\\":
            if i + 1 >= len(raw):
                return None
            value.append(raw[i + 1])
            i += 2
        elif char in " \t":
            # Only a trailing comment may follow unquoted whitespace.
            rest = raw[i:].lstrip(" \t")
            if rest and not rest.startswith("#"):
                return None
            break
        elif char in _SHELL_SPECIAL:
            return None
        else:
            value.append(char)
            i += 1
    return "".join(value)
