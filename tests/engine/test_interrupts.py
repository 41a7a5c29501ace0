"""Ctrl-C and SIGTERM in the middle of a build leave nothing behind."""
from __future__ import annotations

import io
import signal
import subprocess
import sys
import time

import pytest

from pbrx_images.engine import Engine
from pbrx_images.ui.output import Reporter
from tests.engine.helpers import (has_traceback, in_wheel_volume, leftover_containers,
                                  remove_volume, work_tags)

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("signum, expected_exit", [(signal.SIGTERM, 143),
                                                   (signal.SIGINT, 130)])
def test_interrupt_while_wheels_compile(example_project, docker_client, base_image,
                                        signum, expected_exit):
    name = "pgtool-interrupt-%d" % signum
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"', 'name = "%s"' % name))
    volume = "pbrx-images-wheels-" + name
    # an empty wheel cache: psycopg2 has to compile when the signal comes
    remove_volume(docker_client, volume)
    # A tag that exists before the build must point at the same image afterwards.
    docker_client.images.get(base_image).tag(name + "-base", "latest")
    old_id = docker_client.images.get(name + "-base:latest").id

    process = subprocess.Popen(
        [sys.executable, "-m", "pbrx_images.cli", str(example_project),
         "--base-image", base_image],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    deadline = time.monotonic() + 600
    for raw in process.stdout:
        lines.append(raw.decode())
        if lines[-1].startswith("==> Wheels"):
            break
        assert time.monotonic() < deadline, "".join(lines)
    time.sleep(3)  # inside the wheel build
    process.send_signal(signum)
    signalled = time.monotonic()
    rest, _ = process.communicate(timeout=60)
    output = "".join(lines) + rest.decode()
    print(output)
    assert process.returncode == expected_exit
    assert time.monotonic() - signalled < 30
    assert not has_traceback(output)
    assert leftover_containers(docker_client) == []
    assert work_tags(docker_client) == []
    assert docker_client.images.get(name + "-base:latest").id == old_id
    runs = in_wheel_volume(docker_client, base_image, volume,
                           "ls /w/runs 2>/dev/null | wc -l").strip()
    assert runs == "0"


def test_killed_client_leaves_no_running_container(example_project, docker_client, base_image):
    """SIGKILL gives no chance to clean up: the containers must stop by themselves.

    Each holds its standard input from the client; when the client dies, the
    input closes and the idle command ends.  The next build's sweep removes
    the exited containers and the work tags of runs with no container left.
    """
    name = "pgtool-killed"
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"', 'name = "%s"' % name))
    process = subprocess.Popen(
        [sys.executable, "-m", "pbrx_images.cli", str(example_project),
         "--base-image", base_image, "--debug"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    deadline = time.monotonic() + 600
    for raw in process.stdout:
        lines.append(raw.decode())
        if "wheel_cache.py start" in lines[-1]:
            break
        assert time.monotonic() < deadline, "".join(lines)
    else:
        pytest.fail("the build ended before its wheel step:\n" + "".join(lines))

    def running() -> list[str]:
        return [c.name for c in docker_client.containers.list(filters={"status": "running"})
                if name in c.name]

    try:
        assert running(), "".join(lines)  # the wheel container, at least
        process.kill()
        process.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while running() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert running() == []
        engine = Engine(docker_client, Reporter(stream=io.StringIO()))
        engine.remove_dead_containers()
        engine.remove_dead_work_tags()
        assert [c for c in leftover_containers(docker_client) if name in c] == []
        assert [t for t in work_tags(docker_client) if name in t] == []
    finally:  # what a failure left must not fail the tests after this one
        process.kill()
        for container in docker_client.containers.list(all=True):
            if name in container.name:
                container.remove(force=True)
        remove_volume(docker_client, "pbrx-images-wheels-" + name)


def test_a_container_a_killed_client_never_started_is_removed(docker_client, base_image):
    """A client killed between creating a container and starting it leaves it created.

    The sweep removes it once it is older than a live run would leave one,
    and then the run's work tags, which it kept alive.
    """
    run_id = "0123456789ab"
    name = "pbrx-images-neverstarted-wheels-%s-1" % run_id
    tag = "pbrx-images-work/neverstarted-base:%s" % run_id
    docker_client.api.create_container(base_image, name=name, command=["true"])
    docker_client.images.get(base_image).tag(tag)
    engine = Engine(docker_client, Reporter(stream=io.StringIO()))
    try:
        engine.remove_dead_containers()  # created just now: maybe a live run's
        engine.remove_dead_work_tags()
        assert name in leftover_containers(docker_client)
        assert tag in work_tags(docker_client)
        engine.remove_dead_containers(never_started_after=0)
        assert name not in leftover_containers(docker_client)
        assert engine.remove_dead_work_tags() == [tag]
    finally:
        for container in docker_client.containers.list(all=True):
            if container.name == name:
                container.remove(force=True)
        if tag in work_tags(docker_client):
            docker_client.images.remove(tag)
