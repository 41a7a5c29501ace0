"""Signals during a build: deferred past critical blocks, no temporary directory left."""
from __future__ import annotations

import os
import signal
import tempfile
import time

import pytest

from pbrx_images import interrupts


class Terminated(BaseException):
    pass


@pytest.fixture
def sigterm_raises():
    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_acts_after_the_deferred_block(sigterm_raises):
    done = []
    with pytest.raises(Terminated):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("rest of the block")
    assert done == ["rest of the block"]


def test_a_signal_in_a_failing_block_does_not_hide_the_failure(sigterm_raises):
    with pytest.raises(ValueError):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            raise ValueError("the block's own failure")


def test_handlers_are_restored(sigterm_raises):
    before = {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS}
    with interrupts.deferred():
        pass
    assert {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS} == before


def test_temporary_directory_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with interrupts.temporary_directory("pbrx-test-") as path:
        assert os.path.isdir(path) and os.path.dirname(path) == str(tmp_path)
        open(os.path.join(path, "file"), "w").close()
    assert list(tmp_path.iterdir()) == []


def test_a_signal_just_after_mkdir_leaves_nothing(tmp_path, monkeypatch, sigterm_raises):
    """The gap tempfile.TemporaryDirectory has: the signal comes as mkdtemp returns."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_then_signal(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp_then_signal)
    entered = []
    with pytest.raises(Terminated):
        with interrupts.temporary_directory("pbrx-test-"):
            entered.append(True)
    assert entered == []
    assert list(tmp_path.iterdir()) == []


def test_a_signal_in_the_block_leaves_nothing(tmp_path, monkeypatch, sigterm_raises):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(Terminated):
        with interrupts.temporary_directory("pbrx-test-"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


def test_a_deferred_block_in_an_except_clause_still_delivers(sigterm_raises):
    """Handling another exception around the block is not failing in it."""
    done = []
    with pytest.raises(Terminated):
        try:
            raise KeyError("handled")
        except KeyError:
            with interrupts.deferred():  # as a retry in an except clause does
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("rest of the block")
    assert done == ["rest of the block"]


class _Finalized:
    """Runs a signal handler in its finalizer, as Python may; what it raises is dropped."""

    def __init__(self, handler) -> None:
        self.handler = handler

    def __del__(self) -> None:
        self.handler(signal.SIGTERM, None)


@pytest.fixture
def quiet_unraisable(monkeypatch):
    """(A Python __del__ reports what it drops; the io finalizers Python runs do not.)"""
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: None)


def test_the_command_s_handlers_raise_and_are_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupts.watched():
        with pytest.raises(interrupts.Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # (the handler runs at once)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_interruption_a_finalizer_swallowed_is_raised_at_the_next_checkpoint(
        quiet_unraisable):
    with interrupts.watched():
        _Finalized(interrupts.raise_interrupted)  # dropped at once: __del__ runs, raises
        with pytest.raises(interrupts.Interrupted):
            interrupts.checkpoint()
    interrupts.checkpoint()  # forgotten once the command's block ends


def test_a_swallowed_interruption_is_raised_at_the_end_of_the_outermost_deferred_block(
        quiet_unraisable):
    done = []
    with interrupts.watched():
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                with interrupts.deferred():
                    _Finalized(interrupts.raise_keyboard_interrupt)
                    interrupts.checkpoint()  # held: in a deferred block
                    done.append("inner")
                done.append("outer")
    assert done == ["inner", "outer"]


def test_clean_up_on_the_way_out_of_an_interruption_is_not_cut_short():
    done = []
    with interrupts.watched():
        with pytest.raises(interrupts.Interrupted):
            try:
                interrupts.raise_interrupted(signal.SIGTERM, None)
            finally:
                interrupts.checkpoint()
                with interrupts.deferred():  # as the pipeline's clean-up is
                    done.append("clean-up")
                done.append("after")
    assert done == ["clean-up", "after"]


def test_a_step_starts_with_a_checkpoint(quiet_unraisable):
    import io

    from pbrx_images.ui.output import Reporter

    reporter = Reporter(stream=io.StringIO())
    with interrupts.watched():
        _Finalized(interrupts.raise_interrupted)
        with pytest.raises(interrupts.Interrupted):
            with reporter.step("next step"):
                pytest.fail("the step ran")
