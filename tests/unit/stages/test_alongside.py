"""stages.alongside.Alongside: work on a thread, its output and errors where its step is."""
from __future__ import annotations

import io
import threading

import pytest

from pbrx_images.engine import Engine
from pbrx_images.errors import BuildError
from pbrx_images.stages.alongside import Alongside
from pbrx_images.ui.output import Reporter

CLIENT = object()  # the work below never calls the engine


def test_the_result_and_the_output_come_when_taken():
    started = threading.Event()
    go_on = threading.Event()

    def work(engine, reporter):
        assert engine.client is CLIENT and engine.reporter is reporter
        reporter.say("    said on the thread")
        started.set()
        go_on.wait(10)
        return "pbrx-images-cache/runtime:1"

    stream = io.StringIO()
    shown = Reporter(stream=stream)
    alongside = Alongside(Engine(CLIENT, shown), work)
    started.wait(10)
    assert stream.getvalue() == ""  # nothing shown while the other steps run
    go_on.set()
    assert alongside.result(shown) == "pbrx-images-cache/runtime:1"
    assert "said on the thread" in stream.getvalue()


def test_an_error_is_raised_where_the_result_is_taken_after_the_output():
    def work(engine, reporter):
        reporter.say("    before failing")
        raise BuildError("The distribution has no package 'libfoo'.")

    stream = io.StringIO()
    alongside = Alongside(Engine(CLIENT, Reporter(stream=stream)), work)
    with pytest.raises(BuildError, match="libfoo"):
        alongside.result(Reporter(stream=stream))
    assert "before failing" in stream.getvalue()


def test_stop_refuses_new_containers_and_waits():
    release = threading.Event()
    seen = []

    def work(engine, reporter):
        release.wait(10)
        seen.append(engine.closed)
        with engine.container("image", "name"):
            pass  # never reached: the engine is closed
        return "never"

    alongside = Alongside(Engine(CLIENT, Reporter(stream=io.StringIO())), work)
    threading.Timer(0.2, release.set).start()
    alongside.stop()
    assert seen == [True]
    with pytest.raises(Exception, match="No new container"):
        alongside.result(Reporter(stream=io.StringIO()))
