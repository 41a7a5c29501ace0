"""Signals during a build: deferred past critical blocks, no temporary directory left."""
from __future__ import annotations

import os
import signal
import tempfile

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
