"""Tests for pbrx_images.ui.output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbrx_images.ui import output
from pbrx_images.ui.output import TAIL_LINES, Reporter


class Clock:
    """A time.monotonic replacement that advances by ``step`` at each call."""

    def __init__(self, step: float) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def reporter(stream) -> Reporter:
    return Reporter(stream)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# --------------------------------------------------------------------------
# Steps


def test_step_prints_start_and_duration(reporter, stream, monkeypatch):
    monkeypatch.setattr(output.time, "monotonic", Clock(2.5))
    with reporter.step("Building the wheels"):
        assert lines(stream) == ["==> Building the wheels"]
    assert lines(stream) == ["==> Building the wheels", "    done in 2.5s"]
    assert reporter.timings == [("Building the wheels", 2.5)]


def test_steps_are_timed_in_order(reporter, monkeypatch):
    monkeypatch.setattr(output.time, "monotonic", Clock(1.0))
    with reporter.step("one"):
        pass
    with reporter.step("two"):
        pass
    assert [title for title, _ in reporter.timings] == ["one", "two"]


def test_timed_work_is_kept_in_the_timings_and_shows_nothing(reporter, stream, monkeypatch):
    monkeypatch.setattr(output.time, "monotonic", Clock(0.25))
    with reporter.timed("the up-to-date check"):
        pass
    assert stream.getvalue() == ""
    assert reporter.timings == [("(the up-to-date check)", 0.25)]


def test_failing_step_prints_failed_after_and_reraises(reporter, stream, monkeypatch):
    monkeypatch.setattr(output.time, "monotonic", Clock(1.5))
    error = RuntimeError("boom")
    with pytest.raises(RuntimeError) as info:
        with reporter.step("Installing"):
            raise error
    assert info.value is error
    assert lines(stream) == ["==> Installing", "    failed after 1.5s"]
    assert "done in" not in stream.getvalue()
    assert reporter.timings == []


def test_interrupted_step_reported_as_interrupted(reporter, stream):
    with pytest.raises(KeyboardInterrupt):
        with reporter.step("Waiting"):
            raise KeyboardInterrupt
    assert "interrupted after" in lines(stream)[-1]


def test_say_and_note(reporter, stream):
    reporter.say("hello")
    reporter.note("something to know")
    assert lines(stream) == ["hello", "    note: something to know"]


def test_a_detail_is_logged_and_shown_only_when_verbose(tmp_path, stream):
    for verbose in (False, True):
        out = io.StringIO()
        reporter = Reporter(out, verbose=verbose)
        reporter.open_log(tmp_path / ("%s.log" % verbose))
        reporter.say("    3 layers in short")
        reporter.detail("    every layer")
        reporter.close()
        assert lines(out) == (["    3 layers in short", "    every layer"] if verbose
                              else ["    3 layers in short"])
        assert (tmp_path / ("%s.log" % verbose)).read_text().splitlines() == [
            "    3 layers in short", "    every layer"]
    recorder = output.Recorder()
    recorder.detail("recorded")
    shown = Reporter(stream, verbose=True)
    recorder.replay(shown)
    assert lines(stream) == ["recorded"]


# --------------------------------------------------------------------------
# Output and its tail


def test_output_not_shown_without_debug(reporter, stream):
    reporter.command(["pip", "install", "six"])
    reporter.output(b"Collecting six\n")
    assert stream.getvalue() == ""


def test_debug_mode_echoes_commands_and_output(stream):
    reporter = Reporter(stream, debug=True)
    reporter.command(["pip", "install", "six"])
    reporter.command("apt-get update")
    reporter.output(b"Collecting six\n")
    reporter.output("Installed\n")
    assert lines(stream) == ["    $ pip install six", "    $ apt-get update",
                             "Collecting six", "Installed"]


def test_tail_keeps_lines_across_chunk_boundaries(reporter):
    reporter.output(b"first li")
    assert reporter.tail() == ["first li"]
    reporter.output(b"ne\nsecond\nthi")
    assert reporter.tail() == ["first line", "second", "thi"]
    reporter.output(b"rd\n")
    assert reporter.tail() == ["first line", "second", "third"]


def test_tail_strips_carriage_returns(reporter):
    reporter.output(b"one\r\ntwo\r")
    reporter.output(b"\n")
    assert reporter.tail() == ["one", "two"]


def test_tail_keeps_only_the_last_lines(reporter):
    reporter.output("".join("line %d\n" % n for n in range(100)))
    assert reporter.tail() == ["line %d" % n for n in range(100 - TAIL_LINES, 100)]


def test_tail_keeps_the_last_lines_of_many_chunks(reporter):
    for n in range(60):
        reporter.output("line ")
        reporter.output("%d\n" % n)
    assert reporter.tail() == ["line %d" % n for n in range(60 - TAIL_LINES, 60)]


def test_invalid_utf8_replaced(reporter):
    reporter.output(b"bad \xff byte\n")
    assert reporter.tail() == ["bad \ufffd byte"]


def test_new_step_starts_a_new_tail(reporter):
    with reporter.step("one"):
        reporter.output("from step one\n")
    with reporter.step("two"):
        reporter.output("from step two\n")
        assert reporter.tail() == ["from step two"]


def test_new_step_drops_the_partial_line_of_the_previous_one(reporter):
    with reporter.step("one"):
        reporter.output("progress 50%")
    with reporter.step("two"):
        reporter.output("fresh\n")
        assert reporter.tail() == ["fresh"]


def test_utf8_character_split_across_chunks(reporter):
    data = "caf\u00e9 \u2713\n".encode()
    for index in range(len(data)):
        reporter.output(data[index:index + 1])
    assert reporter.tail() == ["caf\u00e9 \u2713"]


# --------------------------------------------------------------------------
# Log file


def test_log_file_receives_commands_output_and_messages(tmp_path, stream, monkeypatch):
    monkeypatch.setattr(output.time, "monotonic", Clock(3.0))
    log = tmp_path / "logs" / "nested" / "build.log"
    reporter = Reporter(stream)
    reporter.open_log(log)
    assert reporter.log_path == log
    with reporter.step("Resolving"):
        reporter.command(["pip", "install", "--dry-run", "six"])
        reporter.output(b"Would install six-1.16.0\n")
    reporter.note("careful")
    reporter.close()
    text = log.read_text(encoding="utf-8")
    assert text == ("==> Resolving\n"
                    "$ pip install --dry-run six\n"
                    "Would install six-1.16.0\n"
                    "    done in 3.0s\n"
                    "    note: careful\n")
    assert "$ pip" not in stream.getvalue()
    assert "Would install" not in stream.getvalue()


def test_log_file_is_written_as_it_goes(tmp_path, reporter):
    log = tmp_path / "build.log"
    reporter.open_log(log)
    reporter.command("make")
    reporter.output("partial")
    assert log.read_text() == "$ make\npartial"
    reporter.close()
    reporter.close()  # closing twice is harmless
    reporter.say("after close")
    assert log.read_text() == "$ make\npartial"


def test_no_log_file_by_default(reporter):
    reporter.command("true")
    reporter.output(b"x\n")
    assert reporter.log_path is None


# --------------------------------------------------------------------------
# Tables


def test_table_aligns_columns(reporter, stream):
    reporter.table([("foo-base:latest", "95 MB", "a"), ("foo-api:latest", "1.2 GB", "bb")],
                   ("IMAGE", "SIZE", "ID"))
    rows = lines(stream)
    assert rows == [
        "IMAGE            SIZE    ID",
        "foo-base:latest  95 MB   a",
        "foo-api:latest   1.2 GB  bb",
    ]
    starts = {row.index(cell) for row, cell in zip(rows, ("SIZE", "95 MB", "1.2 GB"))}
    assert len(starts) == 1


def test_table_header_wider_than_cells(reporter, stream):
    reporter.table([("a", "1")], ("NAME", "VALUE"))
    assert lines(stream) == ["NAME  VALUE", "a     1"]


def test_table_without_rows(reporter, stream):
    reporter.table([], ("IMAGE", "SIZE"))
    assert lines(stream) == ["IMAGE  SIZE"]


def test_table_goes_to_the_log(tmp_path, reporter):
    log = tmp_path / "build.log"
    reporter.open_log(log)
    reporter.table([("x", "1")], ("A", "B"))
    reporter.close()
    assert Path(log).read_text() == "A  B\nx  1\n"


def test_a_recorder_shows_nothing_and_replays_in_order(stream):
    recorder = output.Recorder()
    recorder.say("    reusing an image")
    recorder.command("apt-get update")
    recorder.output(b"Get:1 http://deb.debian.org\n")
    recorder.note("a note")
    shown = Reporter(stream=stream, debug=True)
    with shown.step("Runtime packages image"):
        recorder.replay(shown)
    text = stream.getvalue()
    assert text.index("reusing an image") < text.index("$ apt-get update") < \
        text.index("Get:1") < text.index("a note") < text.index("done in")
    assert shown.tail() == ["Get:1 http://deb.debian.org"]
    recorder.replay(shown)  # once
    assert stream.getvalue() == text
