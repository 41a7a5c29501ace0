"""What a user sees of a build on a real terminal (a pseudo-terminal) and in a pipe."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.engine.helpers import (build_images, has_traceback, leftover_containers,
                                  work_tags, write_python_project)
from tests.terminal import SGR, screen

pytestmark = pytest.mark.engine

NAME = "progresstty"
COLUMNS = 120
#: a live line being redrawn: back to the start, erase, the step and its elapsed time
LIVE_LINE = re.compile(r"\r\x1b\[K(?:\x1b\[[0-9;]*m)*==>(?:\x1b\[[0-9;]*m)* (?:\x1b\[[0-9;]*m)*"
                       r"(?P<title>[^\r\n]*?)(?:\x1b\[[0-9;]*m)*  (?P<clock>\d+:\d\d)")


@dataclass
class TerminalRun:
    exit_code: int
    raw: str  #: exactly what the command wrote to the terminal

    @property
    def rows(self) -> list[str]:
        return screen(self.raw)


def run_in_terminal(*args: str, env: dict | None = None,
                    until: Callable[[str], bool] | None = None, signum: int = signal.SIGINT,
                    timeout: float = 1800) -> TerminalRun:
    """Run build-images with a pseudo-terminal as its stdout and stderr.

    With ``until``, ``signum`` is sent once ``until(output so far)`` is true.
    """
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    attributes = termios.tcgetattr(secondary)
    attributes[1] &= ~termios.OPOST  # bytes as written: no \n -> \r\n translation
    termios.tcsetattr(secondary, termios.TCSANOW, attributes)
    environment = dict(os.environ if env is None else env, TERM="xterm")
    environment.pop("NO_COLOR", None)
    environment.pop("COLUMNS", None)
    process = subprocess.Popen([sys.executable, "-m", "pbrx_images.cli", *args],
                               stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
                               env=environment, close_fds=True)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    signalled = False
    try:
        while True:
            assert time.monotonic() < deadline, b"".join(chunks).decode("utf-8", "replace")
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    data = b""
                if not data:
                    break
                chunks.append(data)
                if until is not None and not signalled and until(
                        b"".join(chunks).decode("utf-8", "replace")):
                    process.send_signal(signum)
                    signalled = True
            elif process.poll() is not None:
                break
        exit_code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    raw = b"".join(chunks).decode("utf-8", "replace")
    sys.stdout.write(raw)  # shown by pytest when a test fails
    return TerminalRun(exit_code, raw)


@pytest.fixture
def small_project(tmp_path) -> Path:
    """A pure-Python project with one dependency and one console script."""
    return write_python_project(
        tmp_path / NAME, NAME,
        {NAME + "/__init__.py": "def main():\n    import six\n    print('hello', six.__name__)\n"},
        dependencies=["six"], scripts={NAME + "-hello": NAME + ":main"})


def test_live_display_quiet_and_verbose_on_a_terminal(small_project, docker_client,
                                                      base_image):
    common = (str(small_project), "--base-image", base_image, "--tag", "tty",
              "--refresh")  # real builds, not the no-op fast path
    run = run_in_terminal(*common)
    assert run.exit_code == 0, run.raw
    assert not has_traceback(run.raw)
    # The live lines: redrawn in place with the time the step has been running.
    live = [match.group("title") for match in LIVE_LINE.finditer(run.raw)]
    assert "Wheels of the project and its dependencies" in live, run.raw
    assert all(re.fullmatch(r"\d+:\d\d", match.group("clock"))
               for match in LIVE_LINE.finditer(run.raw))
    rows = run.rows
    # Each step ends as one line with its time (or, after a message printed during
    # the step, its title, the messages, then the time).
    wheels = [index for index, row in enumerate(rows)
              if row.startswith("==> Wheels of the project and its dependencies")]
    assert len(wheels) == 1, rows
    row = rows[wheels[0]]
    if not re.search(r"  done in \d+\.\ds$", row):
        assert any(re.fullmatch(r"    done in \d+\.\ds", later) for later in rows[wheels[0]:])
    assert any(row.startswith("==> Tag images  done in ") for row in rows), rows
    assert not [row for row in rows if row.lstrip().startswith("$ ")]  # no commands
    redrawn = re.findall(r"\r\x1b\[K([^\r\n]*)(?=\r)", run.raw)  # later drawn over
    assert redrawn and all(len(SGR.sub("", line)) < COLUMNS for line in redrawn), \
        "a live line as wide as the terminal would wrap and could not be redrawn"
    assert rows[-3].split() == ["IMAGE", "SIZE", "ID"]
    assert {row.split()[0] for row in rows[-2:]} == {"%s-base:tty" % NAME,
                                                     "%s-hello:tty" % NAME}
    assert run.raw.endswith("\n")

    quiet = run_in_terminal(*common, "-q")
    assert quiet.exit_code == 0, quiet.raw
    assert "\r" not in quiet.raw and "==>" not in quiet.raw
    others = [row for row in quiet.rows if not row.startswith("    note: ")]
    assert len(others) == 3 and others[0].split() == ["IMAGE", "SIZE", "ID"], quiet.rows
    assert {row.split()[0] for row in others[1:]} == {"%s-base:tty" % NAME,
                                                      "%s-hello:tty" % NAME}

    verbose = run_in_terminal(*common, "-v")
    assert verbose.exit_code == 0, verbose.raw
    assert "\x1b[K" not in verbose.raw  # no live line: the output scrolls
    commands = [row.strip() for row in verbose.rows if row.startswith("    $ ")]
    assert any("pip" in command for command in commands), verbose.rows
    assert any(row.startswith("==> Wheels of the project and its dependencies")
               for row in verbose.rows)
    assert any(re.fullmatch(r"    done in \d+\.\ds", row) for row in verbose.rows)


def test_plain_step_lines_in_a_pipe(small_project, docker_client, base_image):
    run = build_images(str(small_project), "--base-image", base_image, "--tag", "pipe")
    assert run.exit_code == 0
    assert "\r" not in run.output and "\x1b" not in run.output
    lines = run.output.splitlines()
    start = lines.index("==> Wheels of the project and its dependencies")
    assert any(re.fullmatch(r"    done in \d+\.\ds", line) for line in lines[start + 1:])
    assert not [line for line in lines if line.lstrip().startswith("$ ")]


@pytest.mark.parametrize("signum, expected_exit", [(signal.SIGINT, 130),
                                                   (signal.SIGTERM, 143)])
def test_live_line_ends_cleanly_when_interrupted(small_project, docker_client, base_image,
                                                 signum, expected_exit):
    def in_wheel_step(output: str) -> bool:
        return any(match.group("title") == "Wheels of the project and its dependencies"
                   for match in LIVE_LINE.finditer(output))

    run = run_in_terminal(str(small_project), "--base-image", base_image, "--tag", "stopped",
                          until=in_wheel_step, signum=signum)
    assert run.exit_code == expected_exit, run.raw
    assert not has_traceback(run.raw)
    rows = run.rows
    stopped = [row for row in rows if " after " in row]
    assert len(stopped) == 1, rows
    assert re.fullmatch(r"(==> Wheels of the project and its dependencies |   )"
                        r" interrupted after \d+\.\ds", stopped[0]), rows
    assert rows[-1].startswith("build-images: interrupted;"), rows
    assert run.raw.endswith("\n")
    # (only this project's: other builds may run on the same engine)
    assert not [name for name in leftover_containers(docker_client) if NAME in name]
    assert not [tag for tag in work_tags(docker_client) if NAME in tag]
