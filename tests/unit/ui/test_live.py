"""The live status line, quiet and verbose modes of pbrx_images.ui.output.Reporter."""
from __future__ import annotations

import io
import re
import threading

import pytest

from pbrx_images.ui import live
from pbrx_images.ui.output import REDRAW, Reporter
from tests.terminal import screen

TERMINAL = {"TERM": "xterm", "COLUMNS": "100"}
ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (and has no file descriptor)."""

    def isatty(self) -> bool:
        return True


class ManualTicker(live.Ticker):
    """A ticker the test drives: ``fire()`` is one tick."""

    def __init__(self) -> None:
        super().__init__()
        self.tick = None
        self.starts = 0

    def start(self, tick) -> None:
        self.tick = tick
        self.starts += 1

    def stop(self) -> None:
        self.tick = None

    def fire(self) -> None:
        assert self.tick is not None, "the ticker is not running"
        self.tick()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ticker() -> ManualTicker:
    return ManualTicker()


@pytest.fixture
def terminal() -> FakeTerminal:
    return FakeTerminal()


def live_reporter(stream, clock, ticker, environ=None, **options) -> Reporter:
    return Reporter(stream, environ=TERMINAL if environ is None else environ, ticker=ticker,
                    clock=clock, **options)


# --------------------------------------------------------------------------
# Pieces of the status line


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00"), (0.9, "0:00"), (42.7, "0:42"), (60, "1:00"), (723, "12:03"),
    (3723, "1:02:03"), (-1, "0:00")])
def test_elapsed_text(seconds, text):
    assert live.elapsed_text(seconds) == text


@pytest.mark.parametrize("raw, shown", [
    ("Collecting six", "Collecting six"),
    ("  indented\t tab ", "indented  tab"),
    ("Downloading 10%\rDownloading 60%", "Downloading 60%"),
    ("progress 99%\r   \r", "progress 99%"),
    ("\x1b[1;31mERROR:\x1b[0m no", "ERROR: no"),
    ("\x1b]0;title\x07text", "text"),
    ("bell\x07 and \x08backspace", "bell and backspace"),
    ("", ""),
])
def test_visible_part_of_an_output_line(raw, shown):
    assert live.visible(raw) == shown


def test_shorten():
    assert live.shorten("abcdef", 10) == "abcdef"
    assert live.shorten("abcdefghijkl", 8) == "abcde..."
    assert live.shorten("abcdef", 2) == "ab"
    assert live.shorten("abcdef", 0) == ""


@pytest.mark.parametrize("text, width", [
    ("abc", 3), ("日本語", 6), ("e\u0301", 1), ("👍ok", 4), ("a\u200db", 2), ("ｆｕｌｌ", 8),
])
def test_cells_counts_terminal_cells(text, width):
    assert live.cells(text) == width


def test_shorten_cuts_wide_characters_by_cells():
    shortened = live.shorten("構築中のホイール: psycopg2 を作っています", 12)
    assert shortened == "構築中の..." and live.cells(shortened) == 11
    assert live.cells(live.shorten("日本語テキスト", 8)) <= 8
    assert live.shorten("e\u0301" * 10, 5) == "e\u0301e\u0301..."  # marks stay with letters


def test_a_status_line_of_wide_characters_fits_the_terminal():
    for width in (20, 40, 70):
        line = live.status_line("ビルダーイメージ", 5, "パッケージをインストール中 " * 10, width)
        assert live.cells(line) <= width - 1, (width, line)


def test_status_line_fits_the_width_and_keeps_the_clock():
    line = live.status_line("Wheels of the project and its dependencies", 42, "x" * 200, 70)
    assert line.startswith("==> Wheels of the project and its dependencies  0:42  xxx")
    assert line.endswith("...") and len(line) == 69
    assert live.status_line("Wheels of the project and its dependencies", 42, "x" * 200, 60) \
        == "==> Wheels of the project and its dependencies  0:42"  # no room for output
    long_title = live.status_line("Builder image (" + "libfoo-dev " * 20 + ")", 5, "out", 40)
    assert len(long_title) <= 39 and long_title.endswith("...  0:05")
    continued = live.status_line(None, 61, "Building wheel for psycopg2", 80)
    assert continued == "    1:01  Building wheel for psycopg2"


def test_status_line_without_output_and_in_colour():
    assert live.status_line("Tag images", 3, "", 80) == "==> Tag images  0:03"
    coloured = live.status_line("Tag images", 3, "done?", 80, color=True)
    assert "\x1b[1;34m==>\x1b[0m" in coloured and "\x1b[2mdone?\x1b[0m" in coloured
    assert ESCAPE.sub("", coloured) == "==> Tag images  0:03  done?"


@pytest.mark.parametrize("environ, tty, terminal, color", [
    ({"TERM": "xterm"}, True, True, True),
    ({"TERM": "xterm", "NO_COLOR": "1"}, True, True, False),
    ({"TERM": "xterm", "NO_COLOR": ""}, True, True, True),  # empty means unset
    ({"TERM": "dumb"}, True, False, False),
    ({"TERM": "xterm"}, False, False, False),
])
def test_terminal_and_colour_detection(environ, tty, terminal, color):
    stream = FakeTerminal() if tty else io.StringIO()
    assert live.is_terminal(stream, environ) is terminal
    assert live.wants_color(stream, environ) is color


def test_closed_stream_is_not_a_terminal():
    stream = io.StringIO()
    stream.close()
    assert not live.is_terminal(stream, {})


def test_terminal_width_falls_back_to_columns_then_80():
    assert live.terminal_width(io.StringIO(), {"COLUMNS": "132"}) == 132
    assert live.terminal_width(io.StringIO(), {"COLUMNS": "wide"}) == 80
    assert live.terminal_width(io.StringIO(), {}) == 80


def test_thread_ticker_ticks_until_stopped():
    ticks = []
    ticked = threading.Event()

    def tick():
        ticks.append(1)
        if len(ticks) >= 3:
            ticked.set()

    ticker = live.Ticker(interval=0.001)
    ticker.start(tick)
    assert ticked.wait(30), "the ticker never ticked three times"
    ticker.stop()
    stopped_at = len(ticks)
    threading.Event().wait(0.05)
    assert len(ticks) <= stopped_at + 1  # at most a tick that was under way


# --------------------------------------------------------------------------
# The live display


def test_live_step_is_one_line_redrawn_in_place(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    assert reporter.live
    with reporter.step("Wheels of the project and its dependencies"):
        assert screen(terminal.getvalue()) == [
            "==> Wheels of the project and its dependencies  0:00"]
        assert ticker.starts == 1
        clock.now += 42
        ticker.fire()
        assert screen(terminal.getvalue()) == [
            "==> Wheels of the project and its dependencies  0:42"]
        clock.now += 1
        reporter.output(b"Collecting six\nBuilding wheel for psycopg2 (setup.py) ... ")
        assert screen(terminal.getvalue()) == [
            "==> Wheels of the project and its dependencies  0:43  Building wheel for psycopg2 "
            "(setup.py) ..."]
        assert "\n" not in terminal.getvalue()
        clock.now += 17
    assert ticker.tick is None  # stopped
    assert terminal.getvalue().endswith("\n")
    assert screen(terminal.getvalue()) == [
        "==> Wheels of the project and its dependencies  done in 60.0s"]
    assert "\r" in terminal.getvalue() and "\x1b[K" in terminal.getvalue()


def test_live_output_redraws_at_most_every_redraw_interval(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    with reporter.step("Build"):
        clock.now += REDRAW
        reporter.output("first\n")
        drawn = terminal.getvalue()
        reporter.output("second\n")  # no time passed: not redrawn yet
        assert terminal.getvalue() == drawn
        ticker.fire()
        assert screen(terminal.getvalue()) == ["==> Build  0:00  second"]


def test_live_line_shows_the_last_visible_output(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    with reporter.step("Runtime"):
        reporter.output("Get:1 http://deb.debian.org bookworm InRelease\n\x1b[33m  \x1b[0m\n")
        ticker.fire()
        assert screen(terminal.getvalue()) == [
            "==> Runtime  0:00  Get:1 http://deb.debian.org bookworm InRelease"]
        reporter.output("Downloading 10%\rDownloading 90%")
        ticker.fire()
        assert screen(terminal.getvalue()) == ["==> Runtime  0:00  Downloading 90%"]


def test_live_line_never_wider_than_the_terminal(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker, environ={"TERM": "xterm", "COLUMNS": "40"})
    with reporter.step("A step with a rather long title indeed, longer than forty"):
        reporter.output("y" * 300 + "\n")
        ticker.fire()
        for drawn in terminal.getvalue().split("\r"):
            assert len(ESCAPE.sub("", drawn)) <= 39, drawn


def test_note_mid_step_goes_above_the_live_line(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    with reporter.step("Wheels"):
        clock.now += 3
        reporter.output("Collecting six\n")
        reporter.note("pip.conf sets an index")
        assert screen(terminal.getvalue()) == [
            "==> Wheels", "    note: pip.conf sets an index", "    0:03  Collecting six"]
        reporter.say("    psycopg2 2.9")
        reporter.note("another")
        assert screen(terminal.getvalue()) == [
            "==> Wheels", "    note: pip.conf sets an index", "    psycopg2 2.9",
            "    note: another", "    0:03  Collecting six"]
    assert screen(terminal.getvalue()) == [
        "==> Wheels", "    note: pip.conf sets an index", "    psycopg2 2.9",
        "    note: another", "    done in 3.0s"]


def test_lines_outside_steps_are_plain(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    reporter.say("Building images of demo")
    with reporter.step("One"):
        clock.now += 1
    reporter.table([("demo-base:latest", "1 MB")], ("IMAGE", "SIZE"))
    assert screen(terminal.getvalue()) == [
        "Building images of demo", "==> One  done in 1.0s", "IMAGE             SIZE",
        "demo-base:latest  1 MB"]


@pytest.mark.parametrize("exception, word", [
    (RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_live_line_ends_cleanly_on_failure(terminal, clock, ticker, exception, word):
    reporter = live_reporter(terminal, clock, ticker)
    with pytest.raises(type(exception)):
        with reporter.step("Image demo-base"):
            reporter.output("installing\n")
            clock.now += 2.5
            raise exception
    assert ticker.tick is None
    assert terminal.getvalue().endswith("\n")
    assert screen(terminal.getvalue()) == ["==> Image demo-base  %s after 2.5s" % word]
    reporter.error("build-images: error: it broke")
    assert screen(terminal.getvalue())[-1] == "build-images: error: it broke"


def test_sigterm_like_exception_counts_as_interrupted(terminal, clock, ticker):
    class Interrupted(BaseException):
        pass

    reporter = live_reporter(terminal, clock, ticker)
    with pytest.raises(Interrupted):
        with reporter.step("Tag images"):
            raise Interrupted()
    assert screen(terminal.getvalue()) == ["==> Tag images  interrupted after 0.0s"]


def test_signal_as_the_step_starts_still_ends_the_line(terminal, clock, ticker):
    def interrupted(tick):
        raise KeyboardInterrupt  # as if Ctrl-C came right after the first draw

    ticker.start = interrupted
    reporter = live_reporter(terminal, clock, ticker)
    with pytest.raises(KeyboardInterrupt):
        with reporter.step("Wheels"):
            pass
    assert screen(terminal.getvalue()) == ["==> Wheels  interrupted after 0.0s"]
    reporter.say("Build failed; no image was tagged.")
    assert screen(terminal.getvalue())[-1] == "Build failed; no image was tagged."


def test_close_erases_a_live_line_left_behind(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    step = reporter.step("Wheels")
    step.__enter__()  # never left, as if the step's frame were gone
    reporter.close()
    assert screen(terminal.getvalue()) == []
    assert ticker.tick is None
    reporter.say("after")
    assert screen(terminal.getvalue()) == ["after"]


def test_tick_after_the_step_draws_nothing(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker)
    with reporter.step("One"):
        tick = ticker.tick
    before = terminal.getvalue()
    tick()
    assert terminal.getvalue() == before


def test_live_display_is_coloured_unless_no_color(clock, ticker):
    coloured, plain = FakeTerminal(), FakeTerminal()
    for stream, environ in ((coloured, TERMINAL), (plain, dict(TERMINAL, NO_COLOR="1"))):
        reporter = live_reporter(stream, clock, ticker, environ=environ)
        with reporter.step("One"):
            reporter.note("careful")
    assert "\x1b[1;34m==>" in coloured.getvalue() and "\x1b[33mnote:" in coloured.getvalue()
    assert "\x1b[32mdone in" in coloured.getvalue()
    assert not re.search(r"\x1b\[[0-9;]*m", plain.getvalue())
    assert "\r\x1b[K" in plain.getvalue()  # still redrawn in place
    assert screen(plain.getvalue()) == screen(coloured.getvalue())


@pytest.mark.parametrize("stream, environ", [
    (FakeTerminal(), {"TERM": "dumb"}), (io.StringIO(), {"TERM": "xterm"})])
def test_plain_lines_without_a_terminal(stream, environ, clock, ticker):
    reporter = live_reporter(stream, clock, ticker, environ=environ)
    assert not reporter.live
    with reporter.step("Wheels"):
        reporter.command("pip wheel .")
        reporter.output("Collecting six\n")
        clock.now += 4
        reporter.note("careful")
    assert stream.getvalue() == "==> Wheels\n    note: careful\n    done in 4.0s\n"
    assert ticker.starts == 0


# --------------------------------------------------------------------------
# Quiet and verbose


def test_quiet_shows_only_notes_errors_and_tables(terminal, clock, ticker):
    reporter = live_reporter(terminal, clock, ticker, quiet=True)
    assert not reporter.live
    reporter.say("Building images of demo")
    with reporter.step("Wheels"):
        reporter.command("pip wheel .")
        reporter.output("Collecting six\n")
        reporter.say("    demo 1.0, 1 dependencies")
        reporter.note("careful")
    reporter.table([("demo-base:latest",)], ("IMAGE",))
    reporter.error("build-images: error: nothing, really")
    assert terminal.getvalue() == ("    \x1b[33mnote:\x1b[0m careful\n"
                                   "IMAGE\ndemo-base:latest\n"
                                   "build-images: error: nothing, really\n")
    assert ticker.starts == 0


def test_quiet_names_the_step_that_failed(clock, ticker):
    stream = io.StringIO()
    reporter = live_reporter(stream, clock, ticker, quiet=True)
    with reporter.step("Fine"):
        pass
    with pytest.raises(RuntimeError):
        with reporter.step("Image demo-base"):
            clock.now += 1
            raise RuntimeError
    assert stream.getvalue() == "==> Image demo-base  failed after 1.0s\n"


def test_quiet_still_keeps_the_tail_and_the_log(tmp_path, clock, ticker):
    stream = io.StringIO()
    reporter = live_reporter(stream, clock, ticker, quiet=True)
    reporter.open_log(tmp_path / "build.log")
    with reporter.step("Wheels"):
        reporter.command("pip wheel .")
        reporter.output("error: it broke\n")
        assert reporter.tail() == ["error: it broke"]
    reporter.say("summary line")
    reporter.close()
    assert (tmp_path / "build.log").read_text() == (
        "==> Wheels\n$ pip wheel .\nerror: it broke\n    done in 0.0s\nsummary line\n")
    assert stream.getvalue() == ""


@pytest.mark.parametrize("options", [{"verbose": True}, {"debug": True},
                                     {"debug": True, "quiet": True}])
def test_verbose_streams_commands_and_output_even_on_a_terminal(clock, ticker, options):
    stream = FakeTerminal()
    reporter = live_reporter(stream, clock, ticker, environ=dict(TERMINAL, NO_COLOR="1"),
                             **options)
    assert reporter.verbose and not reporter.live and not reporter.quiet
    with reporter.step("Wheels"):
        reporter.command("pip wheel .")
        reporter.output(b"Building wheel for psycopg2\n")
        clock.now += 2
    assert stream.getvalue() == ("==> Wheels\n    $ pip wheel .\nBuilding wheel for psycopg2\n"
                                 "    done in 2.0s\n")
    assert ticker.starts == 0


def test_verbose_without_a_terminal_has_no_escape_codes(clock, ticker):
    stream = io.StringIO()
    reporter = live_reporter(stream, clock, ticker, verbose=True)
    with reporter.step("Wheels"):
        reporter.command("pip wheel .")
        reporter.note("careful")
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()
