"""A signal at any moment of a build: nothing left behind, no tag moved.

Each case waits for a line of ``--debug`` output that marks a moment of the
build (a command starting, a step beginning), then sends SIGINT or SIGTERM.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.engine.helpers import (build_images, has_traceback, in_wheel_volume,
                                  leftover_containers, remove_volume, run_image, work_tags)

pytestmark = pytest.mark.engine

NAME = "pgtool-irq"
VOLUME = "pbrx-images-wheels-" + NAME

NO_CACHE = ("--no-cache",)
# What an earlier build of this project resolved would be reused: no pip run to catch.
REFRESH = ("--refresh",)

# What is done before the build that is signalled:
NOTHING = ""
FRESH = "fresh"  # the wheel volume removed: wheels compile
BUILT = "built"  # a complete build with the same options: its images are on the engine

# (id, line pattern, which occurrence, signal, extra options, what is done before)
POINTS = [
    ("inspecting-base", r"^==> Inspect base image", 1, signal.SIGINT, (), NOTHING),
    ("builder-packages", r"\$ apt-get update", 1, signal.SIGTERM, NO_CACHE, NOTHING),
    ("builder-pip", r"\$ python3 -m venv /opt/pbrx-images-builder", 1, signal.SIGINT, NO_CACHE,
     NOTHING),
    ("project-wheel", r"build_wheel\.py ", 1, signal.SIGTERM, NO_CACHE, NOTHING),
    ("resolving", r"install --dry-run", 1, signal.SIGINT, REFRESH, NOTHING),
    ("compiling", r"Building wheel for psycopg2", 1, signal.SIGTERM, (), FRESH),
    ("publishing", r"wheel_cache.py publish", 1, signal.SIGINT, REFRESH, NOTHING),
    # made alongside the builder image: its output is shown later, so the builder's marks it
    ("runtime-packages", r"\$ apt-get update", 1, signal.SIGINT, NO_CACHE, NOTHING),
    ("base-image-resolve", r"--dry-run --quiet --report", 1, signal.SIGINT, REFRESH, NOTHING),
    ("base-image-load", r"^\d+ layers?: ", 1, signal.SIGTERM, (), NOTHING),
    # the engine finishes a load whose client went away: its tag must still go
    ("script-image-load", r"new layers already on the engine$", 2, signal.SIGINT,
     ("--tag", "irq-load", "--refresh"), BUILT),
    ("script-extra-resolve", r"--dry-run --quiet --report", 2, signal.SIGTERM, REFRESH,
     NOTHING),
    ("script-image", r"^==> Image pgtool-version", 1, signal.SIGINT, (), NOTHING),
    ("tagging", r"^==> Tag images", 1, signal.SIGTERM, (), NOTHING),
    ("cleaning-up", r"\$ rm -rf /run/pbrx-images/wheels/runs/", 1, signal.SIGTERM, (),
     NOTHING),
]


@pytest.fixture
def irq_project(example_project):
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"', 'name = "%s"' % NAME))
    return example_project


@pytest.mark.parametrize("pattern, occurrence, signum, options, before",
                         [point[1:] for point in POINTS], ids=[point[0] for point in POINTS])
def test_signal_at(irq_project, tmp_path, docker_client, base_image, pattern, occurrence,
                   signum, options, before):
    if before == FRESH:
        remove_volume(docker_client, VOLUME)
    if before == BUILT:
        assert build_images(str(irq_project), "--base-image", base_image, *options).exit_code == 0
    docker_client.images.get(base_image).tag(NAME + "-base", "before")
    docker_client.images.get(base_image).tag(NAME + "-base", "latest")
    old_id = docker_client.images.get(NAME + "-base:latest").id
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    args = [sys.executable, "-m", "pbrx_images.cli", str(irq_project), "--base-image",
            base_image, "--debug", *options]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               env=dict(os.environ, TMPDIR=str(host_tmp)))
    seen, lines = 0, []
    for raw in process.stdout:
        lines.append(raw.decode("utf-8", "replace"))
        if re.search(pattern, lines[-1].strip()):
            seen += 1
            if seen == occurrence:
                break
    else:
        process.wait()
        pytest.fail("the build ended (exit %s) before %r; its last lines:\n%s"
                    % (process.returncode, pattern, "".join(lines[-60:])))
    cleaning_up = "rm -rf /run" in pattern  # the last command: no time to lose
    at_once = "==> " in pattern or cleaning_up or "layers" in pattern  # a load: short
    time.sleep(0 if at_once else 0.3)  # at once, or into the command
    process.send_signal(signum)
    signalled = time.monotonic()
    rest = process.communicate(timeout=120)[0].decode("utf-8", "replace")
    output = "".join(lines) + rest
    elapsed = time.monotonic() - signalled
    print(output)
    expected = {130 if signum == signal.SIGINT else 143}
    if cleaning_up:
        expected.add(0)  # the signal may come after the process has finished
    assert process.returncode in expected
    assert elapsed < 30
    assert not has_traceback(output)
    assert [c for c in leftover_containers(docker_client) if NAME in c] == []
    assert [t for t in work_tags(docker_client) if NAME in t] == []
    # A tag moves only if the signal came after every image was built and tagged.
    tagged = re.search(r"==> Tag images\n    done in", output) is not None
    assert (docker_client.images.get(NAME + "-base:latest").id == old_id) != tagged
    assert list(host_tmp.iterdir()) == []
    runs = in_wheel_volume(docker_client, base_image, VOLUME,
                           "ls /w/runs /w/.incoming 2>/dev/null | grep -v : | wc -w").strip()
    assert runs == "0"


def test_wheel_cache_usable_after_interrupts(irq_project, docker_client, base_image):
    run = build_images(str(irq_project), "--base-image", base_image, "--tag", "after")
    assert run.exit_code == 0
    code, output = run_image(docker_client, "pgtool-report:after")
    assert code == 0 and "psycopg2" in output
